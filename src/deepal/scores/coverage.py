"""Ball graphs and greedy maximum coverage (ProbCover; the robust core set).

A point *covers* every point within Euclidean distance ``radius`` of it. :func:`ball_graph`
lists those pairs as sparse edges, a block of rows at a time (never an ``N x N`` matrix:
memory is the number of edges), and :func:`max_coverage` greedily adds the point that covers
the most still-uncovered points, updating the counts only where something changed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse
import torch

from deepal.errors import DeepALError
from deepal.scores.distances import DEFAULT_CHUNK_SIZE, pairwise_sq_dists
from deepal.scores.neighbours import as_points

#: Default cap on the edges of a ball graph (12 bytes each, about 240 MB): a radius that
#: makes the graph denser than this is almost surely too large for the pool.
MAX_EDGES = 20_000_000

#: How far, relatively, :func:`purity_radius` stays below the distance that bounds it: far
#: above the rounding of a float32 distance (about 1e-7), far below any gap that matters.
RADIUS_MARGIN = 1e-5


class BallGraph(NamedTuple):
    """Symmetric sparse graph in CSR form: the neighbours of ``i`` (itself included) are
    ``indices[indptr[i]:indptr[i + 1]]``, at squared distances ``sq_dists[...]``."""

    indptr: np.ndarray
    indices: np.ndarray
    sq_dists: np.ndarray

    @property
    def n_points(self) -> int:
        return len(self.indptr) - 1

    def within(self, radius: float) -> BallGraph:
        """The sub-graph of the edges no longer than ``radius`` (no distance recomputed)."""
        keep = self.sq_dists <= radius * radius
        row = np.repeat(np.arange(self.n_points), np.diff(self.indptr))
        counts = np.bincount(row[keep], minlength=self.n_points)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(self.indptr.dtype)
        return BallGraph(indptr, self.indices[keep], self.sq_dists[keep])

    def adjacency(self) -> scipy.sparse.csr_matrix:
        """The 0/1 adjacency matrix (float32, sharing the index arrays)."""
        n = self.n_points
        ones = np.ones(len(self.indices), dtype=np.float32)
        return scipy.sparse.csr_matrix((ones, self.indices, self.indptr), shape=(n, n))


def ball_graph(
    points: torch.Tensor | np.ndarray,
    radius: float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_edges: int = MAX_EDGES,
) -> BallGraph:
    """Every pair of points at Euclidean distance ``<= radius``, each point with itself.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    radius:
        Ball radius ``delta >= 0``.
    chunk_size:
        Rows per block: time ``O(N^2 d / 2)``, memory ``O(chunk_size * N)`` plus the edges
        (12 bytes each, about 30 while the graph is assembled).
    max_edges:
        Raise :class:`~deepal.errors.DeepALError` beyond this many edges.
    """
    x = as_points(points)
    if not radius >= 0:
        raise DeepALError(f"the ball radius must be >= 0, got {radius!r}")
    r2 = float(radius) ** 2
    n = len(x)
    heads: list[np.ndarray] = []
    tails: list[np.ndarray] = []
    dists: list[np.ndarray] = []
    n_edges = n  # every point covers itself
    for start in range(0, n, chunk_size):
        # Only pairs i < j are decided, once each, so the graph is exactly symmetric (and
        # half the distances are computed).
        d = pairwise_sq_dists(x[start : start + chunk_size], x[start:])
        r, c = torch.nonzero(d <= r2, as_tuple=True)
        upper = c > r
        r, c = r[upper], c[upper]
        n_edges += 2 * len(r)
        if n_edges > max_edges:
            raise DeepALError(
                f"the ball graph of radius {radius:.4g} has more than {max_edges} edges on "
                f"{n} points: choose a smaller radius, or fewer points (max_candidates)"
            )
        heads.append((r + start).numpy().astype(np.int32))
        tails.append((c + start).numpy().astype(np.int32))
        dists.append(d[r, c].float().numpy())
    # 32-bit indices while they fit (scipy needs indptr and indices of one type).
    index_type = np.int32 if n_edges < 2**31 - 1 else np.int64
    self_loops = np.arange(n, dtype=index_type)
    head = np.concatenate([*heads, *tails, self_loops]).astype(index_type, copy=False)
    tail = np.concatenate([*tails, *heads, self_loops]).astype(index_type, copy=False)
    sq = np.concatenate([*dists, *dists, np.zeros(n, np.float32)])
    order = np.lexsort((tail, head))  # CSR order: by row, then by column
    counts = np.bincount(head, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index_type)
    return BallGraph(indptr, tail[order], sq[order])


def degree_radius(
    points: torch.Tensor | np.ndarray,
    degree: int,
    sample: int = 1000,
    rng: np.random.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """A radius whose balls hold about ``degree`` points: the median, over ``sample`` random
    points, of the distance to their ``degree``-th nearest point (themselves included).

    Used to keep a ball graph within a number of edges (about ``N * degree``); ``inf`` when
    ``degree >= N``. Costs ``O(sample * N * d)``.
    """
    x = as_points(points)
    if degree >= len(x):
        return float("inf")
    rng = rng or np.random.default_rng(0)
    chosen = np.arange(len(x)) if len(x) <= sample else rng.choice(len(x), sample, replace=False)
    kth = []
    for start in range(0, len(chosen), chunk_size):
        d = pairwise_sq_dists(x[torch.as_tensor(chosen[start : start + chunk_size])], x)
        kth.append(d.kthvalue(max(1, degree), dim=1).values.double().sqrt().numpy())
    return float(np.median(np.concatenate(kth)))


def capped_ball_graph(
    points: torch.Tensor | np.ndarray,
    radius: float,
    max_edges: int = MAX_EDGES,
    rng: np.random.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[BallGraph, float]:
    """:func:`ball_graph` at ``radius``, or at a smaller radius that fits ``max_edges``.

    The radius is first lowered to :func:`degree_radius` for half the allowed mean degree,
    then, if the graph still has too many edges, by a factor 0.7 until it fits.

    Returns
    -------
    tuple
        The graph and the radius used.
    """
    x = as_points(points)
    radius = min(radius, degree_radius(x, max(1, max_edges // (2 * max(len(x), 1))), rng=rng,
                                       chunk_size=chunk_size))
    for _ in range(30):
        try:
            return ball_graph(x, radius, chunk_size, max_edges), radius
        except DeepALError:
            radius *= 0.7
    return ball_graph(x, 0.0, chunk_size, max_edges), 0.0  # only duplicates: fits or raises


def max_coverage(
    graph: BallGraph, covered: np.ndarray, allowed: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedily pick up to ``n`` allowed points, each the one covering most uncovered points.

    Ties go to the lowest index. Stops early when no allowed point covers anything new.

    Parameters
    ----------
    graph:
        Symmetric ball graph (:func:`ball_graph`).
    covered:
        Shape ``(N,)`` booleans: points already covered (e.g. near a labeled point).
    allowed:
        Shape ``(N,)`` booleans: points that may be picked.
    n:
        Most picks.

    Returns
    -------
    tuple of numpy.ndarray
        The picks in order (int64, at most ``n``) and the coverage after them.
    """
    covered = np.array(covered, dtype=bool)
    available = np.array(allowed, dtype=bool)
    adjacency = graph.adjacency()
    # gain[i]: uncovered points i would cover. Each point becomes covered once, and then only
    # its neighbours' gains drop: the total update work is the number of edges.
    gain = adjacency @ (~covered).astype(np.float64)
    picks: list[int] = []
    while len(picks) < n:
        scores = np.where(available, gain, -1.0)
        pick = int(scores.argmax())
        if scores[pick] <= 0:
            break
        picks.append(pick)
        available[pick] = False
        neighbours = graph.indices[graph.indptr[pick] : graph.indptr[pick + 1]]
        newly = neighbours[~covered[neighbours]]
        covered[newly] = True
        gain -= np.asarray(adjacency[newly].sum(axis=0)).reshape(-1)
    return np.asarray(picks, dtype=np.int64), covered


def covered_by(graph: BallGraph, centres: np.ndarray) -> np.ndarray:
    """Shape ``(N,)`` booleans: the points within the radius of a centre (``centres`` is a
    boolean mask or a list of positions)."""
    mask = np.zeros(graph.n_points, dtype=bool)
    mask[centres] = True
    return (graph.adjacency() @ mask.astype(np.float64)) > 0


def purity_radius(
    points: torch.Tensor | np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.95,
    sample: int = 2000,
    rng: np.random.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """The largest radius at which about ``alpha`` of the balls are *pure* (ProbCover's rule),
    less a relative :data:`RADIUS_MARGIN`.

    A ball around ``x`` is pure when every point in it has ``x``'s (pseudo-)label, that is
    when the radius is below ``x``'s distance to the nearest differently labeled point. So the
    purity at radius ``delta`` is the fraction of those distances above ``delta``, and the
    answer is just below their ``1 - alpha`` quantile: the largest radius at which at least
    ``alpha`` of the balls are pure. It is estimated on ``sample`` random points (against
    all points), which costs ``O(sample * N * d)``.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    labels:
        Shape ``(N,)``: pseudo-labels (Yehuda et al. use k-means clusters, ``k`` = classes).
    alpha:
        Purity to keep, in ``(0, 1]``.
    sample:
        Points whose nearest other-label distance is measured (all when fewer).
    rng:
        Draws the sample.
    """
    x = as_points(points)
    label = torch.as_tensor(np.asarray(labels))
    if not 0 < alpha <= 1:
        raise DeepALError(f"alpha must be in (0, 1], got {alpha!r}")
    if len(torch.unique(label)) < 2:
        return float("inf")  # every ball is pure
    rng = rng or np.random.default_rng(0)
    chosen = np.arange(len(x)) if len(x) <= sample else np.sort(
        rng.choice(len(x), size=sample, replace=False))
    nearest_other = np.empty(len(chosen))
    for start in range(0, len(chosen), chunk_size):
        block = torch.as_tensor(chosen[start : start + chunk_size])
        d = pairwise_sq_dists(x[block], x)
        d[label[block][:, None] == label[None, :]] = float("inf")
        nearest_other[start : start + len(block)] = d.min(dim=1).values.double().sqrt().numpy()
    # Balls up to radius r are pure for the points with nearest_other > r: allowing
    # j = floor((1 - alpha) m) impure balls, r is just below the (j + 1)-th smallest distance:
    # a relative RADIUS_MARGIN below, since the ball graph measures that distance again, in
    # other blocks, and float32 rounding must not decide whether the pair is an edge.
    j = int(np.floor((1.0 - alpha) * len(nearest_other) + 1e-9))
    return float(np.sort(nearest_other)[j] * (1.0 - RADIUS_MARGIN))
