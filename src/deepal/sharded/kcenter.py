"""Greedy k-center over shards: a distributed running minimum, one round trip per pick.

Each shard keeps, for each of its points, the squared distance to the nearest centre so far
(a :class:`~deepal.scores.kcenter.FarthestFirst`) and reports its farthest unlabeled point;
the driver takes the global farthest by :func:`~deepal.scores.kcenter.pick_farthest` and
sends it to every shard as the next centre, which answers with its new farthest point.
These are the picks of :func:`deepal.scores.kcenter.k_center_greedy`, exactly: the same
first pick at a cold start, and near-ties decided on distances computed from each pair
alone, never on values that depend on how the pool was split. ``len(shards)`` messages per
pick, each carrying one row.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.kcenter import pick_farthest
from deepal.sharded.group import Shards


def nearest_to_mean(shards: Shards) -> int:
    """Global position of the point nearest the mean of all points (ties: lowest)."""
    moments = shards.call("moments")
    count = sum(m.size for m in moments)
    mean = torch.stack([m.total for m in moments]).sum(dim=0) / count
    answers = shards.call("nearest", mean)  # each shard rounds it to its dtype
    return min(answers, key=lambda a: (a[0], a[1]))[1]


def sharded_k_center_greedy(
    shards: Shards, n: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Greedy k-center selection of ``n`` unlabeled points over sharded embeddings.

    Parameters
    ----------
    shards:
        :class:`~deepal.sharded.shard.EmbeddingShard` objects (or workers holding them),
        in order of their global positions.
    n:
        Number of points to pick, at most the number of unlabeled points.
    rng:
        Draws the first pick at a cold start (no labeled point), as the single-process
        version does; ``None`` starts from the point nearest the mean instead.

    Returns
    -------
    numpy.ndarray
        ``n`` global positions (int64), in the order picked.

    Examples
    --------
    >>> from deepal.sharded.group import LocalShards
    >>> from deepal.sharded.shard import EmbeddingShard
    >>> x = torch.tensor([[0.0], [1.0], [5.0], [9.0]])
    >>> shards = LocalShards([EmbeddingShard(x[:2], np.array([True, False]), 0),
    ...                       EmbeddingShard(x[2:], np.array([False, False]), 2)])
    >>> sharded_k_center_greedy(shards, 2).tolist()
    [3, 2]
    """
    counts = shards.call("counts")
    n_points, n_unlabeled = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if not 0 <= n <= n_unlabeled:
        raise ValueError(f"cannot pick {n} of {n_unlabeled} unlabeled points")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # Every centre's row (in the embeddings' dtype), for the exact comparison of near-ties.
    centres: list[torch.Tensor] = shards.call("labeled_points")
    reports = shards.call("start", torch.cat(centres))
    picks: list[int] = []
    if n_points == n_unlabeled:  # cold start: the first pick as the single-process rule
        first = int(rng.integers(n_points)) if rng is not None else nearest_to_mean(shards)
        row = shards.call_one(_owner(counts, first), "rows", np.array([first]))[0]
        picks.append(first)
        centres.append(row[None])
        reports = shards.call("step", row, first)
    while len(picks) < n:
        best = pick_farthest(reports, centres)
        picks.append(best.position)
        centres.append(best.row[None])
        if len(picks) < n:
            reports = shards.call("step", best.row, best.position)
    return np.asarray(picks, dtype=np.int64)


def _owner(counts: list[tuple[int, int]], position: int) -> int:
    """Index of the shard holding global ``position``."""
    ends = np.cumsum([c[0] for c in counts])
    return int(np.searchsorted(ends, position, side="right"))
