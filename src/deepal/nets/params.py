"""A :class:`~deepal.Net`'s training parameters in DeepAL's dict form: the defaults, the
optimisers and the checks."""

from __future__ import annotations

from typing import Any

import torch

from deepal.errors import DeepALError

DEFAULT_PARAMS: dict[str, Any] = {
    "n_epoch": 10,
    "train_args": {"batch_size": 64},
    "test_args": {"batch_size": 1000},
    "optimizer": "SGD",
    "optimizer_args": {"lr": 0.01, "momentum": 0.5},
}

#: What early stopping can watch on the validation set.
MONITORS = ("loss", "accuracy")

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}


def merge_params(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; nested dicts are merged key by key, except
    ``optimizer_args``, which belong to one optimiser and are replaced whole (so SGD's
    momentum never leaks into Adam)."""
    merged = {key: (dict(value) if isinstance(value, dict) else value)
              for key, value in base.items()}
    for key, value in overrides.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        if nested and key != "optimizer_args":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def checked_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over :data:`DEFAULT_PARAMS`, checked."""
    merged = merge_params(DEFAULT_PARAMS, params)
    if merged["optimizer"] not in OPTIMIZERS:
        raise DeepALError(
            f"unknown optimizer {merged['optimizer']!r}: choose one of {sorted(OPTIMIZERS)}"
        )
    if int(merged["n_epoch"]) < 0:
        raise DeepALError(f"n_epoch must be >= 0, got {merged['n_epoch']}")
    if int(merged["train_args"]["batch_size"]) < 1 or int(merged["test_args"]["batch_size"]) < 1:
        raise DeepALError("train_args and test_args batch_size must be at least 1")
    if merged.get("monitor", "loss") not in MONITORS:
        raise DeepALError(f"monitor must be one of {', '.join(MONITORS)}, got "
                          f"{merged['monitor']!r}")
    epoch_samples = merged.get("epoch_samples")
    if epoch_samples is not None and (not isinstance(epoch_samples, int)
                                      or isinstance(epoch_samples, bool) or epoch_samples < 1):
        raise DeepALError(f"epoch_samples must be a positive integer or None, got "
                          f"{epoch_samples!r}")
    # DeepAL's params carry num_workers; tensors are sliced in-process, so it is ignored.
    return merged
