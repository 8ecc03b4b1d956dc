"""A :class:`~deepal.Net`'s training parameters in DeepAL's dict form: the defaults, merging
overrides into them, and the check, through :class:`deepal.config.training.NetParams`."""

from __future__ import annotations

from typing import Any

from deepal.config.base import validated
from deepal.config.training import MONITORS, OPTIMIZERS, NetParams

__all__ = ["DEFAULT_PARAMS", "MONITORS", "OPTIMIZERS", "checked_params", "merge_params"]

DEFAULT_PARAMS: dict[str, Any] = {
    "n_epoch": 10,
    "train_args": {"batch_size": 64},
    "test_args": {"batch_size": 1000},
    "optimizer": "SGD",
    "optimizer_args": {"lr": 0.01, "momentum": 0.5},
}


def merge_params(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; nested dicts are merged key by key, except
    ``optimizer_args``, which belong to one optimiser and are replaced whole (so SGD's
    momentum never leaks into Adam).

    Examples
    --------
    >>> merge_params(DEFAULT_PARAMS, {"optimizer": "Adam", "optimizer_args": {"lr": 1e-3},
    ...                               "train_args": {"batch_size": 8}})["optimizer_args"]
    {'lr': 0.001}
    """
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
    """``params`` over :data:`DEFAULT_PARAMS`, checked as :class:`NetParams` (unknown keys,
    types, bounds, and the optimiser's keywords against its signature).

    Raises
    ------
    deepal.config.ConfigError
        Naming the first bad key and what it must be.

    Examples
    --------
    >>> checked_params({"n_epoch": 0})["n_epoch"]
    0
    >>> checked_params({"optimizer": "Adam", "optimizer_args": {"momentum": 0.9}})
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: optimizer_args: Adam takes no keyword 'momentum': ...
    """
    merged = merge_params(DEFAULT_PARAMS, params)
    validated(NetParams, merged)
    return merged
