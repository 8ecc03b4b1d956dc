"""Iterating over a dataset in batches, fast for in-memory tensors and general for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def iter_batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
) -> Iterator[tuple[Any, ...]]:
    """Yield collated batches of ``dataset``: ``(x, y, index)`` or ``(x, index)``.

    A dataset with a ``get_batch(index_tensor)`` method (such as
    :class:`~deepal.data.TensorHandler`) is sliced directly, with no per-item Python work;
    any other dataset goes through a :class:`~torch.utils.data.DataLoader`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(dataset)  # type: ignore[arg-type]
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield get_batch(order[start : start + batch_size])
        return
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers,
    )
    yield from (tuple(batch) for batch in loader)
