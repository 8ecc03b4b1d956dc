"""A project's trained model on disk (``model.pt``): the weights beside what is needed to
use them anywhere, as plain data that ``torch.load(weights_only=True)`` reads.

Entries:

* ``state_dict`` - the network's weights;
* ``architecture`` and ``architecture_args`` - the module's class name (``SmallCNN`` or
  ``MLP`` of :mod:`deepal.nets`) and the arguments it was built with;
* ``classes`` - the class names, index = output;
* ``input_shape`` - one item's shape (``[channels, size, size]`` for images);
* ``input_dtype`` - ``uint8`` for images (divide by 255 first), ``float32`` otherwise;
* ``normalisation`` - ``{"mean": [...], "std": [...]}`` applied after that scaling (per
  channel for images, per feature for tables), or ``None``.

A project whose model is a scikit-learn classifier has no weights to keep as tensors, and
deepal pickles nothing: its file holds instead what fits the same model again, anywhere:

* ``architecture`` - ``"scikit-learn"``;
* ``estimator`` and ``seed`` - the name of :mod:`deepal.nets.sklearn_models` and its
  ``random_state``;
* ``train_inputs`` and ``train_labels`` - the labeled rows (before normalisation) and their
  class indices;
* ``classes``, ``input_shape``, ``input_dtype`` and ``normalisation`` as above.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from deepal.errors import DeepALError

#: The entries a model file holds.
KEYS = ("state_dict", "architecture", "architecture_args", "classes", "input_shape",
        "input_dtype", "normalisation")


def model_record(net: Any, classes: list[str], X: np.ndarray,
                 handler: Any) -> dict[str, Any]:
    """What ``model.pt`` holds for the trained ``net`` of a project whose pool is ``X``.

    Parameters
    ----------
    net:
        A trained :class:`~deepal.Net` (its ``clf`` holds the weights; its ``net`` is the
        module's constructor, a ``functools.partial`` for the default networks).
    classes:
        The class names.
    X:
        The project's pool (one item's shape and dtype are recorded).
    handler:
        The pool's handler (a ``partial`` carrying ``mean`` and ``std``), or ``None``.

    Returns
    -------
    dict
        Tensors, strings, numbers and lists only.

    Examples
    --------
    ``torch.save(model_record(net, ["cat", "dog"], X, handler), "model.pt")``
    """
    build = net.net
    args = dict(build.keywords) if isinstance(build, partial) else {}
    # In PyTorch's default layout, whatever layout the weights trained in (deepal.placement).
    weights = {name: value.contiguous() for name, value in net.clf.state_dict().items()}
    return {"state_dict": weights, "architecture": type(net.clf).__name__,
            "architecture_args": args, "classes": list(classes),
            **_input_entries(X, handler)}


def _input_entries(X: np.ndarray, handler: Any) -> dict[str, Any]:
    """``input_shape``, ``input_dtype`` and ``normalisation`` of a pool ``X`` read through
    ``handler`` (a ``partial`` carrying ``mean`` and ``std``, or ``None``)."""
    stats = getattr(handler, "keywords", None) or {}
    normalisation = None
    if stats.get("mean") is not None:
        normalisation = {"mean": [float(v) for v in stats["mean"]],
                         "std": [float(v) for v in stats["std"]]}
    return {"input_shape": [int(s) for s in X.shape[1:]],
            "input_dtype": "uint8" if X.dtype == np.uint8 else "float32",
            "normalisation": normalisation}


#: The ``architecture`` of a scikit-learn model's file.
SKLEARN = "scikit-learn"


def sklearn_record(estimator: str, seed: int, classes: list[str], X: np.ndarray,
                   items: list[int], labels: list[int]) -> dict[str, Any]:
    """What ``model.pt`` holds for a project whose model is the scikit-learn classifier
    ``estimator``: the labeled rows ``X[items]`` and their ``labels``, to fit it again.

    Examples
    --------
    >>> X = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> record = sklearn_record("naive_bayes", 1, ["a", "b"], X, [0, 2], [1, 0])
    >>> record["architecture"], record["train_inputs"].shape, record["normalisation"]["std"]
    ('scikit-learn', torch.Size([2, 2]), [1.632993221282959, 1.632993221282959])
    """
    import torch

    from deepal.labeling.sources import pool_handler

    index = np.asarray(items, dtype=np.int64)
    return {"architecture": SKLEARN, "estimator": estimator, "seed": int(seed),
            "classes": list(classes), **_input_entries(X, pool_handler(X)),
            "train_inputs": torch.from_numpy(np.ascontiguousarray(X[index])),
            "train_labels": torch.as_tensor(np.asarray(labels, dtype=np.int64))}


def save_model(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``path`` atomically (a reader never sees half a file)."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(record, tmp)
    os.replace(tmp, path)
    return path


def read_model(path: Path, classes: list[str]) -> dict[str, Any]:
    """The model file at ``path``, read as data (``weights_only=True``) and checked against
    the project's ``classes``.

    Raises
    ------
    DeepALError
        If there is no model yet, the file is not one deepal wrote, or it was trained for
        other classes.
    """
    import torch

    if not path.is_file():
        raise DeepALError(f"there is no trained model at {path} yet: label some items and run "
                          "`deepal export` (or pass --retrain)")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file: one message
        raise DeepALError(f"cannot read the model {path} ({type(error).__name__}): train it "
                          "again with --retrain") from None
    needed = ("train_inputs", "train_labels", "estimator", "seed") \
        if isinstance(record, dict) and record.get("architecture") == SKLEARN else ("state_dict",)
    if not isinstance(record, dict) or any(key not in record for key in needed):
        raise DeepALError(f"{path} is not a model deepal wrote: train it again with --retrain")
    if record.get("classes") != list(classes):
        raise DeepALError(f"the model {path} was trained for the classes "
                          f"{record.get('classes')}, not this project's {classes}: train it "
                          "again with --retrain")
    return dict(record)
