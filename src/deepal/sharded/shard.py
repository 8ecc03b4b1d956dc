"""What one shard keeps between the driver's messages: its embeddings and running state.

An :class:`EmbeddingShard` holds a contiguous block of the points being selected from
(global positions ``offset ... offset + len(points) - 1``) and answers the driver's small
questions: its farthest point for k-center greedy, its per-cluster sums for a Lloyd
iteration, its nearest points to given centres. Only those answers leave the shard.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from deepal.scores.clustering import lloyd_pass
from deepal.scores.distances import DEFAULT_CHUNK_SIZE, pairwise_sq_dists
from deepal.scores.kcenter import Farthest, FarthestFirst, nearest_to
from deepal.sharded.merge import ShardTop, shard_top_n


class Moments(NamedTuple):
    """Count, float64 sum and float64 sum of squared deviations from the shard's mean."""

    size: int
    total: torch.Tensor
    m2: torch.Tensor


class EmbeddingShard:
    """One shard's points, labeled mask and running minimum distances.

    Parameters
    ----------
    points:
        Shape ``(M, d)``, floating point (integers become float32).
    labeled:
        Shape ``(M,)`` booleans: the points that are centres from the start (k-center).
    offset:
        Global position of ``points[0]``.
    chunk_size:
        Block size of the distance computations.
    sync_every:
        Single-point refreshes of k-center bounds between two passes over the shard.

    Examples
    --------
    >>> shard = EmbeddingShard(torch.tensor([[0.0], [3.0]]), np.array([True, False]), offset=5)
    >>> shard.start(torch.tensor([[0.0]])).position
    6
    """

    def __init__(self, points: torch.Tensor, labeled: np.ndarray, offset: int,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, sync_every: int = 256) -> None:
        x = torch.as_tensor(points).detach()
        self.points = x if x.is_floating_point() else x.float()
        self.offset = int(offset)
        self.chunk_size = chunk_size
        self.farthest_first = FarthestFirst(self.points, labeled, self.offset, chunk_size,
                                            sync_every)  # checks the labeled flags
        self.labeled = self.farthest_first.labeled
        self.dists = torch.empty(0, dtype=self.points.dtype)

    def call(self, method: str, *args: Any) -> Any:
        """Run ``method(*args)`` (the interface :class:`~deepal.sharded.group.LocalShards`
        uses)."""
        return getattr(self, method)(*args)

    # -- sizes and rows ----------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """Number of points and of unlabeled points."""
        return len(self.points), int((~self.labeled).sum())

    def labeled_points(self) -> torch.Tensor:
        """The rows of the labeled points, shape ``(L, d)``."""
        return self.points[self.labeled]

    def rows(self, positions: np.ndarray) -> torch.Tensor:
        """The rows at global ``positions`` (all within this shard), in that order."""
        local = torch.as_tensor(np.asarray(positions, dtype=np.int64) - self.offset)
        return self.points[local]

    def moments(self) -> Moments:
        """Per-feature count, sum and squared deviations (for the global variance)."""
        x = self.points.double()
        mean = x.mean(dim=0) if len(x) else torch.zeros(x.shape[1], dtype=torch.float64)
        return Moments(len(x), x.sum(dim=0), ((x - mean) ** 2).sum(dim=0))

    def nearest(self, point: torch.Tensor) -> tuple[float, int]:
        """Exact squared distance to ``point`` of the nearest row and its global position
        (ties: lowest position); ``(inf, -1)`` for an empty shard."""
        dist, local = nearest_to(self.points, point.to(self.points.dtype))
        return dist, (self.offset + local if local >= 0 else -1)

    # -- k-center greedy: a running minimum per point ------------------------------------

    def start(self, centres: torch.Tensor) -> Farthest:
        """Set every unlabeled point's bound to its squared distance to the nearest of
        ``centres`` (``inf`` when there are none) and report the farthest point."""
        self.farthest_first.start(centres)
        return self.farthest_first.farthest()

    def step(self, centre: torch.Tensor, position: int) -> Farthest:
        """Add the point at global ``position`` (row ``centre``) as a centre, retire it if it
        is here, and report the new farthest point (as
        :meth:`~deepal.scores.kcenter.FarthestFirst.farthest` finds it)."""
        self.farthest_first.add(centre, position)
        return self.farthest_first.farthest()

    # -- k-means: Lloyd partials and nearest points -----------------------------------

    def partials(self, centres: torch.Tensor,
                 shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Assign every point, translated by ``shift`` (the pool's mean), to its nearest
        centre (given translated too), as single-process k-means does; return per-centre
        counts (int64) and float64 sums of the translated points. The distances are kept for
        :meth:`top_dists`."""
        centres = centres.to(self.points.dtype)
        labels, self.dists, sums = lloyd_pass(self.points, shift.to(self.points.dtype), centres,
                                              max(self.chunk_size, 1))
        return torch.bincount(labels, minlength=len(centres)), sums

    def top_dists(self, m: int) -> ShardTop:
        """The ``m`` points farthest from their centre at the last :meth:`partials`."""
        return shard_top_n(self.dists, m, self.offset)

    def nearest_lists(self, centres: torch.Tensor, m: int,
                      chunk_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """For every centre, the ``min(m, M)`` nearest points by float64 squared distance
        (ties: lowest position): distances ``(k, m)`` and global positions ``(k, m)``."""
        x = self.points.double()
        c = centres.double()
        m = min(m, len(x))
        dists = torch.empty((len(c), m), dtype=torch.float64)
        positions = torch.empty((len(c), m), dtype=torch.long)
        for start in range(0, len(c), chunk_size):
            block = pairwise_sq_dists(c[start : start + chunk_size], x)
            order = torch.sort(block, dim=1, stable=True).indices[:, :m]
            dists[start : start + chunk_size] = block.gather(1, order)
            positions[start : start + chunk_size] = order + self.offset
        return dists, positions

    def nearest_untaken(self, centre: torch.Tensor, taken: np.ndarray) -> tuple[float, int]:
        """The nearest point to ``centre`` whose global position is not in ``taken``."""
        row = pairwise_sq_dists(centre.double()[None], self.points.double())[0]
        row[torch.as_tensor(np.asarray(taken, dtype=np.int64) - self.offset)] = float("inf")
        local = int(row.argmin())
        return float(row[local]), self.offset + local
