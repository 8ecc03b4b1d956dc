"""Handlers turn arrays into :class:`torch.utils.data.Dataset` objects.

A handler is any callable ``handler(X, Y)`` that returns a dataset, as in DeepAL; ``Y`` may be
``None``, for the unlabeled view of a pool whose labels must stay hidden. Items are
``(x, y, index)`` with labels and ``(x, index)`` without: code that only needs inputs reads
``batch[0]`` and ``batch[-1]``, which works for both.

:class:`TensorHandler` is the default. It keeps the data as one tensor, decoded once, and serves
whole batches by indexing (``get_batch``) so training never goes through per-item Python calls
or PIL. Images stored as ``uint8`` are scaled to [0, 1] and normalised per batch, which is cheap
and keeps the pool at a quarter of the float size.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def as_tensor(array: Any) -> torch.Tensor:
    """Return ``array`` (numpy array, tensor or nested sequence) as a CPU tensor without copying
    where possible."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu()
    return torch.as_tensor(np.asarray(array))


class TensorHandler(Dataset):
    """A dataset over an in-memory tensor of inputs and optional integer labels.

    Parameters
    ----------
    X:
        Inputs, first axis = examples. ``uint8`` inputs are treated as images: divided by 255
        and then normalised with ``mean``/``std`` (per channel, channel axis 1).
    Y:
        Integer labels, or ``None`` for the unlabeled view (items are then ``(x, index)``).
    mean, std:
        Per-channel normalisation applied after scaling; ``None`` means none.

    Examples
    --------
    >>> handler = TensorHandler(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]))
    >>> x, y, index = handler[1]
    >>> len(handler), x.shape, int(y), index
    (4, torch.Size([3]), 1, 1)
    """

    def __init__(
        self,
        X: Any,
        Y: Any | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        self.X = as_tensor(X)
        self.Y = None if Y is None else as_tensor(Y).long()
        if self.Y is not None and len(self.Y) != len(self.X):
            raise ValueError(f"X has {len(self.X)} examples but Y has {len(self.Y)} labels")
        self.mean = None if mean is None else _channel_tensor(mean, self.X.dim())
        self.std = None if std is None else _channel_tensor(std, self.X.dim())

    def __len__(self) -> int:
        return len(self.X)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        elif not x.is_floating_point():
            x = x.float()
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x.float()

    def get_batch(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The items at ``index`` (a 1-d long tensor), collated: ``(x, y, index)`` or
        ``(x, index)``. This is the fast path the :class:`~deepal.Net` loops use."""
        x = self._prepare(self.X[index])
        if self.Y is None:
            return x, index
        return x, self.Y[index], index

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        x = self._prepare(self.X[i : i + 1])[0]
        if self.Y is None:
            return x, i
        return x, self.Y[i], i

    def input_bounds(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The valid input range after normalisation (for image data), else ``None``.

        Adversarial strategies clamp their perturbed inputs into this range."""
        if self.X.dtype != torch.uint8:
            return None
        low = torch.zeros(1)
        high = torch.ones(1)
        if self.mean is not None:
            low, high = low - self.mean, high - self.mean
        if self.std is not None:
            low, high = low / self.std, high / self.std
        return low, high


def _channel_tensor(values: Sequence[float], ndim: int) -> torch.Tensor:
    """Shape per-channel statistics to broadcast over a batch of ``ndim - 1``-d items."""
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    # A batch has shape (B, C, ...); the statistics broadcast as (C, 1, ...).
    return t.reshape(-1, *([1] * max(ndim - 2, 0)))


def image_handler(mean: Sequence[float], std: Sequence[float]) -> partial[TensorHandler]:
    """A handler for ``uint8`` images of shape ``(N, C, H, W)`` normalised with ``mean``/``std``.

    Parameters
    ----------
    mean, std:
        Per-channel mean and standard deviation, applied after scaling to [0, 1].

    Returns
    -------
    partial[TensorHandler]
        A handler: call it with ``(X, Y)``.

    Examples
    --------
    >>> handler = image_handler(mean=[0.5], std=[0.5])
    >>> images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    >>> x, y, index = handler(images, torch.tensor([0, 1]))[0]
    >>> float(x.min())
    -1.0
    """
    return partial(TensorHandler, mean=mean, std=std)
