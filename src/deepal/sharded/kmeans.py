"""K-means sampling over shards: distributed Lloyd iterations and nearest distinct points.

The driver does what :func:`deepal.scores.clustering.kmeans_centres` does, with the pool's
passes split over the shards: the seeding sample is gathered by the same random positions and
seeded by the same draw of ``rng``; each Lloyd iteration asks every shard for its per-cluster
counts and float64 sums (``k x d`` numbers, whatever the shard's size); an empty cluster moves
to the globally farthest point (a merged top-n). Then :func:`sharded_nearest_distinct` gives
:func:`deepal.scores.clustering.nearest_distinct`'s picks from per-shard nearest lists.

Both work on the points translated by the pool's mean and sum each cluster's points in
float64. The centres equal the single-process ones wherever that computation is exact (the
mean and the sums are added up in another order here, and the convergence threshold's variance
is combined from per-shard moments): on integer-valued embeddings they are identical; on
general float32 ones they agree to rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.clustering import kmeans_plusplus
from deepal.sharded.group import Shards
from deepal.sharded.merge import merge_top_n
from deepal.sharded.shard import Moments


def gather_rows(shards: Shards, sizes: list[int], positions: np.ndarray) -> torch.Tensor:
    """Rows at global ``positions``, in that order, fetched from the shards holding them."""
    positions = np.asarray(positions, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(starts[1:], positions, side="right")
    wanted = [s for s in range(len(sizes)) if (owner == s).any()]
    parts = [shards.call_one(s, "rows", positions[owner == s]) for s in wanted]
    out = torch.empty((len(positions), parts[0].shape[1]), dtype=parts[0].dtype)
    for s, part in zip(wanted, parts, strict=True):
        out[torch.as_tensor(np.flatnonzero(owner == s))] = part
    return out


def _mean_variance(moments: list[Moments]) -> float:
    """Mean over features of the unbiased variance of all points, from per-shard moments."""
    count = sum(m.size for m in moments)
    mean = torch.stack([m.total for m in moments]).sum(dim=0) / count
    m2 = torch.stack([m.m2 + m.size * (m.total / max(m.size, 1) - mean) ** 2 for m in moments])
    return float((m2.sum(dim=0) / (count - 1)).mean())


def sharded_kmeans_centres(
    shards: Shards,
    k: int,
    rng: np.random.Generator,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed_sample: int | None = None,
) -> torch.Tensor:
    """Centres of a k-means clustering of the sharded points, as ``kmeans_centres``.

    Parameters
    ----------
    shards:
        Shards holding :class:`~deepal.sharded.shard.EmbeddingShard` points.
    k, rng, max_iter, tol, seed_sample:
        As for :func:`deepal.scores.clustering.kmeans_centres`.

    Returns
    -------
    torch.Tensor
        Shape ``(k, d)``, float64 (as ``kmeans_centres``).

    Examples
    --------
    >>> from deepal.sharded.group import LocalShards
    >>> from deepal.sharded.shard import EmbeddingShard
    >>> x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    >>> none = np.zeros(2, dtype=bool)
    >>> shards = LocalShards([EmbeddingShard(x[:2], none, 0), EmbeddingShard(x[2:], none, 2)])
    >>> sorted(sharded_kmeans_centres(shards, 2, np.random.default_rng(0))[:, 0].tolist())
    [0.5, 10.5]
    """
    sizes = [c[0] for c in shards.call("counts")]
    n_points = sum(sizes)
    if not 1 <= k <= n_points:
        raise ValueError(f"k must be between 1 and the number of points ({n_points}), got {k}")
    if k == n_points:
        return gather_rows(shards, sizes, np.arange(n_points)).double()
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    sample_size = min(n_points, seed_sample or max(10_000, 20 * k))
    if sample_size == n_points:
        sample = gather_rows(shards, sizes, np.arange(n_points))
    else:
        chosen = torch.randperm(n_points, generator=generator)[:sample_size].numpy()
        sample = gather_rows(shards, sizes, chosen)
    moments = shards.call("moments")
    # The points are translated by their mean, in their own precision, as single-process.
    shift = (torch.stack([m.total for m in moments]).sum(dim=0) / n_points).to(sample.dtype)
    centres = kmeans_plusplus(sample - shift, k, generator)
    threshold = tol * _mean_variance(moments) if n_points > 1 else 0.0
    for _ in range(max_iter):
        parts = shards.call("partials", centres, shift)
        counts = torch.stack([p[0] for p in parts]).sum(dim=0)
        sums = torch.stack([p[1] for p in parts]).sum(dim=0)
        updated = (sums / counts.clamp_min(1)[:, None]).to(centres.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            farthest = merge_top_n(shards.call("top_dists", len(empty)), len(empty))
            updated[empty] = gather_rows(shards, sizes, farthest) - shift
        moved = float(((updated - centres) ** 2).sum())
        centres = updated
        if moved <= threshold:
            break
    return centres.double() + shift.double()


def sharded_nearest_distinct(shards: Shards, centres: torch.Tensor, m: int = 8) -> np.ndarray:
    """For each centre in order, the nearest point no earlier centre took (ties: lowest
    position), as :func:`deepal.scores.clustering.nearest_distinct` with its default
    squared Euclidean metric.

    Each shard sends its ``m`` nearest points to every centre once; a shard whose list for a
    centre is used up by earlier picks is asked again for that centre alone.

    Parameters
    ----------
    shards:
        Shards holding :class:`~deepal.sharded.shard.EmbeddingShard` points.
    centres:
        Shape ``(k, d)``, ``k`` at most the number of points.
    m:
        Nearest points each shard sends per centre.

    Returns
    -------
    numpy.ndarray
        ``k`` distinct global positions (int64), one per centre.
    """
    sizes = [c[0] for c in shards.call("counts")]
    if len(centres) > sum(sizes):
        raise ValueError(f"{len(centres)} centres need at least as many points, got {sum(sizes)}")
    lists = shards.call("nearest_lists", centres, m)
    taken: set[int] = set()
    picks: list[int] = []
    for j in range(len(centres)):
        best: tuple[float, int] | None = None
        for s, (dists, positions) in enumerate(lists):
            candidate = _first_untaken(dists[j], positions[j], taken)
            if candidate is None and positions.shape[1] < sizes[s]:
                mine = np.array(sorted(p for p in taken if _holds(sizes, s, p)), dtype=np.int64)
                candidate = shards.call_one(s, "nearest_untaken", centres[j], mine)
            if candidate is not None and (best is None or candidate < best):
                best = candidate
        assert best is not None  # k <= number of points: some point is untaken
        taken.add(best[1])
        picks.append(best[1])
    return np.asarray(picks, dtype=np.int64)


def _first_untaken(dists: torch.Tensor, positions: torch.Tensor,
                   taken: set[int]) -> tuple[float, int] | None:
    for d, p in zip(dists.tolist(), positions.tolist(), strict=True):
        if p not in taken:
            return d, p
    return None


def _holds(sizes: list[int], shard: int, position: int) -> bool:
    start = sum(sizes[:shard])
    return start <= position < start + sizes[shard]
