"""Fixed features for the embedding-based low-budget strategies (TypiClust, ProbCover).

Their papers embed the pool with a self-supervised model, computed once, before any label;
a strategy given such ``features`` uses them instead of the network's embedding, and can then
pick the very first batch (no trained network needed).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from deepal.data.pool import Data
from deepal.errors import DeepALError


def check_features(features: Any, dataset: Data) -> torch.Tensor | None:
    """``features`` as a float32 ``(n_pool, d)`` tensor (``None`` stays ``None``), or a
    :class:`~deepal.errors.DeepALError` naming the expected shape."""
    if features is None:
        return None
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if x.dim() != 2 or len(x) != dataset.n_pool:
        raise DeepALError(
            f"features must have one row per pool example, shape ({dataset.n_pool}, d), "
            f"got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise DeepALError("features contain NaN or infinite values")
    return x


def pool_features(strategy: Any, idxs: np.ndarray, features: torch.Tensor | None
                  ) -> torch.Tensor:
    """The rows ``idxs`` of ``features``, or the strategy's network embedding of them."""
    if features is None:
        return strategy.get_embeddings(strategy.dataset.get_inputs(idxs))
    return features[torch.as_tensor(idxs)]


def takes_features(cls: type) -> bool:
    """Whether a strategy class takes a ``features`` argument (its own pool embedding).

    >>> from deepal.strategies.typiclust import TypiClust
    >>> takes_features(TypiClust)
    True
    """
    return "features" in inspect.signature(cls).parameters


def feature_strategies() -> list[str]:
    """The registered strategies that take ``features``.

    >>> feature_strategies()
    ['TypiClust', 'ProbCover']
    """
    from deepal.strategies.registry import STRATEGIES, get_strategy

    return [name for name in STRATEGIES if takes_features(get_strategy(name))]
