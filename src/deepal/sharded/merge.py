"""Merging per-shard top-n lists into the global top-n, exactly as one process ranks them.

Every shard holds a contiguous block of the positions of the pool being ranked, so a shard's
local position plus its ``offset`` is the global position. :func:`~deepal.scores.selection.top_n`
orders by score (largest first), ties by lower position, NaN after everything; the global
top-n is contained in the union of every shard's top-n under that one total order, so merging
the shards' lists gives the single-process answer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ShardTop:
    """A shard's best scores: ``values`` (float64, NaN kept), their global ``positions``
    (int64) and the shard's count of NaN scores (for the one warning the merge gives)."""

    values: np.ndarray
    positions: np.ndarray
    n_nan: int


def _order(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Indices sorting by (NaN last, larger value first, lower position first)."""
    nan = np.isnan(values)
    keys = np.where(nan, -np.inf, values)
    return np.lexsort((positions, -keys, nan))


def shard_top_n(scores: np.ndarray | torch.Tensor, n: int, offset: int) -> ShardTop:
    """A shard's contribution to a global top-``n``: its ``min(n, len(scores))`` best scores.

    Parameters
    ----------
    scores:
        The shard's scores, shape ``(M,)``, higher = picked first.
    n:
        Size of the global batch.
    offset:
        Global position of the shard's first score.

    Returns
    -------
    ShardTop
        The best scores in rank order, with their global positions.

    Examples
    --------
    >>> top = shard_top_n(np.array([0.2, 0.9, 0.5]), 2, offset=10)
    >>> top.positions.tolist(), top.values.tolist()
    ([11, 12], [0.9, 0.5])
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    positions = np.arange(offset, offset + len(values), dtype=np.int64)
    keep = _order(values, positions)[: max(n, 0)]
    return ShardTop(values[keep], positions[keep], int(np.isnan(values).sum()))


def merge_top_n(tops: list[ShardTop], n: int) -> np.ndarray:
    """Global positions of the ``n`` best scores over all shards, best first.

    The same positions, in the same order, as :func:`deepal.scores.selection.top_n` over the
    concatenated scores (ties: lower position; NaN last, with the same warning).

    Parameters
    ----------
    tops:
        One :func:`shard_top_n` result per shard.
    n:
        Number of positions to return, at most the total number of scores.

    Returns
    -------
    numpy.ndarray
        ``n`` global positions (int64).

    Examples
    --------
    >>> a = shard_top_n(np.array([0.1, 0.9]), 2, offset=0)
    >>> b = shard_top_n(np.array([0.9, 0.5]), 2, offset=2)
    >>> merge_top_n([a, b], 3).tolist()
    [1, 2, 3]
    """
    total = sum(len(top.values) for top in tops)
    if not 0 <= n <= total:
        raise ValueError(f"cannot pick {n} of the {total} scores the shards reported")
    n_nan = sum(top.n_nan for top in tops)
    if n_nan:
        warnings.warn(f"{n_nan} scores are NaN; they are ranked last", RuntimeWarning,
                      stacklevel=2)
    values = np.concatenate([top.values for top in tops]) if tops else np.empty(0)
    positions = (np.concatenate([top.positions for top in tops]) if tops
                 else np.empty(0, dtype=np.int64))
    return positions[_order(values, positions)[:n]].astype(np.int64)
