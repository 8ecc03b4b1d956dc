"""Iterating over a dataset in batches, fast for in-memory tensors and general for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def epoch_order(n: int, generator: torch.Generator | None = None,
                epoch_samples: int | None = None) -> torch.Tensor:
    """The positions one training epoch visits, in random order.

    By default a shuffled pass over the ``n`` examples. With ``epoch_samples > n``, an epoch
    of ``epoch_samples`` positions in which every example appears ``epoch_samples // n`` or
    one more times, as the fixed-length epochs of Kirsch et al. (2019) do, so that a handful
    of labels still makes an epoch of many optimiser steps; with ``epoch_samples <= n``, the
    plain pass.
    """
    if epoch_samples is not None and epoch_samples > n > 0:
        return torch.randperm(epoch_samples, generator=generator) % n
    return torch.randperm(n, generator=generator)


def iter_batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    order: torch.Tensor | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Yield collated batches of ``dataset``: ``(x, y, index)`` or ``(x, index)``.

    The examples come in ``order`` (positions, repeats allowed) when it is given, else
    shuffled with ``generator`` when ``shuffle`` is set, else in order. A dataset with a
    ``get_batch(index_tensor)`` method (such as :class:`~deepal.data.TensorHandler`) is
    sliced directly, with no per-item Python work; any other dataset goes through a
    :class:`~torch.utils.data.DataLoader`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(dataset)  # type: ignore[arg-type]
    if order is None:
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        for start in range(0, len(order), batch_size):
            yield get_batch(order[start : start + batch_size])
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(),
                        num_workers=num_workers)
    yield from (tuple(batch) for batch in loader)
