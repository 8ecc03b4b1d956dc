"""deepal: deep active learning in Python.

The three classes of the DeepAL paper (:class:`Data`, :class:`Net`, :class:`Strategy`), its
query strategies by their class names (``deepal.MarginSampling``...), and the look-ups of its
demo (:func:`get_dataset`, :func:`get_net`, :func:`get_strategy`).
"""

from __future__ import annotations

from typing import Any

from deepal.data import UNKNOWN, Data, TensorHandler, image_handler
from deepal.data.registry import get_dataset
from deepal.data.sources.arrays import from_arrays, from_numpy_file, from_torch_dataset
from deepal.data.sources.images import from_image_folder
from deepal.data.sources.tables import from_table
from deepal.errors import DeepALError
from deepal.experiments.loop import RoundResult, run_loop
from deepal.nets import Net
from deepal.nets.defaults import default_net
from deepal.nets.registry import get_net
from deepal.nets.sklearn_net import SklearnNet
from deepal.pretraining import Pretrained, pretrain, pretrain_features
from deepal.seeding import seed_everything
from deepal.strategies.base import Strategy
from deepal.strategies.registry import STRATEGIES, get_strategy

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Strategy classes are imported on first use, so `import deepal` stays light.
    if name in STRATEGIES:
        return get_strategy(name)
    if name == "from_texts":  # pulls in the sentence-embedding model's libraries on use
        from deepal.data.sources.texts import from_texts

        return from_texts
    raise AttributeError(f"module 'deepal' has no attribute {name!r}")


__all__ = [
    "UNKNOWN", "Data", "DeepALError", "Net", "RoundResult", "SklearnNet", "Strategy",
    "TensorHandler",
    "__version__", "get_dataset", "get_net", "get_strategy", "image_handler", "run_loop",
    "seed_everything", *STRATEGIES,
    "default_net", "from_arrays", "from_image_folder", "from_numpy_file", "from_table",
    "from_texts", "from_torch_dataset", "Pretrained", "pretrain", "pretrain_features",
]
