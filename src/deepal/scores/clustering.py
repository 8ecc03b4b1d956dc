"""Clustering for diversity sampling: k-means and k-medians centres, and the points nearest them.

A clustering strategy finds ``n`` centres in embedding space and labels the pool example nearest
each one. :func:`nearest_distinct` guarantees ``n`` *different* examples even when centres share
a nearest point. Distances are computed in blocks, never as a full ``N x N`` matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.distances import DEFAULT_CHUNK_SIZE, pairwise_sq_dists
from deepal.scores.selection import top_n

METRICS = ("sqeuclidean", "l1")


def _dists(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """``(len(a), len(b))`` distances under ``metric``."""
    if metric == "sqeuclidean":
        return pairwise_sq_dists(a, b)
    # cdist with p=1 accumulates |a - b| directly, without an (M, P, d) intermediate.
    return torch.cdist(a, b, p=1.0)


def _float64(points: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    x = torch.as_tensor(points).detach().cpu().double()
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(x.shape)}")
    return x


def _check_k(k: int, n_points: int) -> None:
    if not 1 <= k <= n_points:
        raise ValueError(f"k must be between 1 and the number of points ({n_points}), got {k}")


def nearest_distinct(
    points: torch.Tensor | np.ndarray,
    centres: torch.Tensor | np.ndarray,
    metric: str = "sqeuclidean",
    chunk_size: int = 64,
) -> np.ndarray:
    """For each centre in order, the nearest point that no earlier centre has taken.

    A centre whose nearest point is already taken gets its next nearest, so the result holds
    ``len(centres)`` distinct points. Ties go to the lowest point index.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    centres:
        Shape ``(k, d)`` with ``k <= N``.
    metric:
        ``"sqeuclidean"`` (squared Euclidean) or ``"l1"`` (Manhattan).
    chunk_size:
        Number of centres whose distances are held at once: memory ``O(chunk_size * N)``.

    Returns
    -------
    numpy.ndarray
        ``k`` distinct positions into ``points`` (int64), one per centre.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: choose one of {METRICS}")
    x = _float64(points, "points")
    c = _float64(centres, "centres")
    if len(c) > len(x):
        raise ValueError(f"{len(c)} centres need at least as many points, got {len(x)}")
    taken = torch.zeros(len(x), dtype=torch.bool)
    picks: list[int] = []
    for start in range(0, len(c), chunk_size):
        for row in _dists(c[start : start + chunk_size], x, metric):
            pick = int(row.masked_fill(taken, float("inf")).argmin())  # first minimum
            taken[pick] = True
            picks.append(pick)
    return np.asarray(picks, dtype=np.int64)


def kmeans_plusplus(
    points: torch.Tensor, k: int, generator: torch.Generator, n_trials: int | None = None
) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, 2007): ``k`` rows of ``points``.

    The first centre is uniform; each next one is the best of ``n_trials`` candidates drawn
    with probability proportional to their squared distance to the nearest centre so far,
    "best" meaning the one that lowers the total of those distances most. Each step costs one
    ``(N, n_trials)`` matrix product: no ``N x N`` matrix.

    Parameters
    ----------
    points:
        Shape ``(N, d)``, floating point.
    k:
        Number of centres, ``1 <= k <= N``.
    generator:
        Source of the random draws.
    n_trials:
        Candidates per step; default ``2 + floor(ln k)``, the usual greedy choice.
    """
    _check_k(k, len(points))
    n_trials = n_trials or 2 + int(np.log(k))
    sq_norms = (points * points).sum(dim=1)
    chosen = [int(torch.randint(len(points), (1,), generator=generator))]
    closest = (sq_norms - 2.0 * (points @ points[chosen[0]]) + sq_norms[chosen[0]]).clamp_min(0)
    for _ in range(1, k):
        # float64 whatever the points' precision: a float32 running sum over many points
        # drifts, and a float64 draw makes the same choices for float32 and float64 points.
        cumulative = closest.double().cumsum(0)
        if cumulative[-1] > 0:
            draws = torch.rand(n_trials, generator=generator, dtype=torch.float64).to(
                closest.device)
            candidates = torch.searchsorted(cumulative, draws * cumulative[-1], right=True)
            candidates = candidates.clamp_max(len(points) - 1)
        else:  # every point sits on a centre already (duplicates): any point will do
            candidates = torch.randint(len(points), (n_trials,), generator=generator).to(
                points.device)
        dists = torch.addmm(sq_norms[:, None] + sq_norms[candidates][None, :],
                            points, points[candidates].T, alpha=-2.0).clamp_min_(0)
        torch.minimum(dists, closest[:, None], out=dists)
        best = int(dists.sum(dim=0).argmin())
        closest = dists[:, best].contiguous()
        chosen.append(int(candidates[best]))
    return points[chosen].clone()


def kmeans_centres(
    points: torch.Tensor | np.ndarray,
    k: int,
    rng: np.random.Generator,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed_sample: int | None = None,
    chunk_size: int = 8192,
) -> torch.Tensor:
    """Centres of a k-means clustering of ``points``: greedy k-means++ seeding, then Lloyd.

    The seeding, the costlier half of scikit-learn's ``KMeans`` at large ``k``, runs on a random
    subset of ``seed_sample`` points; the Lloyd iterations then run on every point, in blocks
    of ``chunk_size`` (memory ``O(chunk_size * k)``), until the centres move less than ``tol``
    (scikit-learn's criterion: the summed squared centre shift below ``tol`` times the mean
    per-feature variance) or ``max_iter`` iterations. A cluster left empty is moved to the
    point farthest from its own centre.

    Computation stays in the input's precision (float32 embeddings are not copied to
    float64), on points translated by their mean (computed in float64, a block at a time):
    distances and cluster sums of float32 points far from the origin would otherwise lose
    the digits that tell the points apart. For the same reason the centres are returned in
    float64, translated back. The seeding works on a translated copy of its sample (at
    most ``seed_sample`` points); the mean and the Lloyd passes read the points a block at
    a time, so memory-mapped points are never copied whole.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    k:
        Number of clusters, ``1 <= k <= N``. With ``k == N`` every point is its own centre.
    rng:
        Source of the clustering's seed.
    max_iter:
        Most Lloyd iterations. Fewer trade a slightly higher within-cluster distance for
        speed (see ``docs/performance.md``).
    tol:
        Relative convergence tolerance, as scikit-learn's.
    seed_sample:
        Points the seeding looks at; default ``max(10_000, 20 * k)`` (all when fewer).
    chunk_size:
        Points per block of the mean and of the assignment step.

    Returns
    -------
    torch.Tensor
        Shape ``(k, d)``, float64, on the device of ``points``.
    """
    x = torch.as_tensor(points).detach()  # stays on its device (a GPU runs it there)
    if x.dim() != 2:
        raise ValueError(f"points must have shape (N, d), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    _check_k(k, len(x))
    if k == len(x):
        return x.double()
    mean, variance = column_moments(x, chunk_size)
    shift = mean.to(x.dtype)  # points minus shift: near the origin, in their own precision
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    sample_size = min(len(x), seed_sample or max(10_000, 20 * k))
    sample = x if sample_size == len(x) else x[torch.randperm(len(x), generator=generator)[
        :sample_size].to(x.device)]
    centres = kmeans_plusplus(sample - shift, k, generator)
    threshold = tol * variance
    for _ in range(max_iter):
        labels, dists, sums = lloyd_pass(x, shift, centres, chunk_size)
        counts = torch.bincount(labels, minlength=k)
        updated = (sums / counts.clamp_min(1)[:, None]).to(x.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            updated[empty] = x[torch.as_tensor(top_n(dists, len(empty)))] - shift
        moved = float(((updated - centres) ** 2).sum())
        centres = updated
        if moved <= threshold:
            break
    return centres.double() + shift.double()


def column_moments(x: torch.Tensor, chunk_size: int = 8192) -> tuple[torch.Tensor, float]:
    """The mean of the rows of ``x`` and the mean over columns of their variance, in float64,
    a block of rows at a time (a memory-mapped ``x`` is read once, never copied whole).

    Parameters
    ----------
    x:
        Shape ``(N, d)``, ``N >= 1``.
    chunk_size:
        Rows per block.

    Returns
    -------
    tuple
        The mean, shape ``(d,)`` float64 on the device of ``x``, and the mean sample
        variance (``N - 1`` in the denominator; 0 for one row).

    Examples
    --------
    >>> mean, variance = column_moments(torch.tensor([[1.0, 10.0], [3.0, 10.0]]))
    >>> mean.tolist(), variance
    ([2.0, 10.0], 1.0)
    """
    # Sums of differences from the first row, which is near the data, so the squares do not
    # cancel against the squared mean.
    origin = x[0].double()
    first = torch.zeros_like(origin)
    second = torch.zeros_like(origin)
    for start in range(0, len(x), chunk_size):
        block = x[start : start + chunk_size].double() - origin
        first += block.sum(dim=0)
        second += (block * block).sum(dim=0)
    n = len(x)
    offset = first / n
    variance = (second - n * offset * offset) / max(n - 1, 1)
    return origin + offset, float(variance.clamp_min(0.0).mean())


def lloyd_pass(
    x: torch.Tensor, shift: torch.Tensor, centres: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One assignment pass of Lloyd's k-means over the points ``x - shift``, a block at a time
    (the step single-process and sharded k-means share).

    Parameters
    ----------
    x:
        Points, shape ``(N, d)``.
    shift:
        Subtracted from every point (the pool's mean), shape ``(d,)``, in ``x``'s dtype.
    centres:
        Translated centres, shape ``(k, d)``, in ``x``'s dtype.
    chunk_size:
        Points per block (memory ``O(chunk_size * k)``).

    Returns
    -------
    tuple
        Each point's nearest centre (squared Euclidean, ``(N,)`` int64), the squared distance
        to it (``(N,)``), and each cluster's sum of its translated points (``(k, d)``, float64).

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [10.0]])
    >>> labels, dists, sums = lloyd_pass(x, torch.tensor([0.0]), torch.tensor([[0.0], [10.0]]), 2)
    >>> labels.tolist(), dists.tolist(), sums[:, 0].tolist()
    ([0, 0, 1], [0.0, 1.0, 0.0], [1.0, 10.0])
    """
    labels = torch.empty(len(x), dtype=torch.long, device=x.device)
    dists = torch.empty(len(x), dtype=x.dtype, device=x.device)
    # float64 sums: a cluster's sum does not depend on the order its points come in (up to
    # float64 rounding), so a pool split over shards sums to the same centre.
    sums = torch.zeros(centres.shape, dtype=torch.float64, device=x.device)
    c_sq = (centres * centres).sum(dim=1)
    for start in range(0, len(x), chunk_size):
        block = x[start : start + chunk_size] - shift
        # ||x||^2 is the same for every centre of a point: added after the argmin.
        best = torch.addmm(c_sq[None, :], block, centres.T, alpha=-2.0).min(dim=1)
        labels[start : start + chunk_size] = best.indices
        dists[start : start + chunk_size] = (best.values + (block * block).sum(dim=1)).clamp_min(0)
        sums.index_add_(0, best.indices, block.double())
    return labels, dists, sums


def _assign_l1(
    x: torch.Tensor, centres: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's nearest centre under L1 and the distance to it, in blocks of points."""
    labels = torch.empty(len(x), dtype=torch.long)
    dists = torch.empty(len(x), dtype=x.dtype)
    for start in range(0, len(x), chunk_size):
        best = torch.cdist(x[start : start + chunk_size], centres, p=1.0).min(dim=1)
        labels[start : start + chunk_size] = best.indices
        dists[start : start + chunk_size] = best.values
    return labels, dists


def _seed_l1(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k-means++-style seeding with L1 distances.

    The first centre is uniform; each next one is drawn with probability proportional to its
    L1 distance to the nearest centre so far (the power 1 matches the k-medians objective, as
    the square does for k-means). If every point already sits on a centre (duplicates), the
    next centre is drawn uniformly among points not yet chosen.
    """
    chosen = [int(rng.integers(len(x)))]
    nearest = torch.cdist(x, x[chosen[0]][None], p=1.0)[:, 0]
    while len(chosen) < k:
        weights = nearest.numpy()
        cumulative = np.cumsum(weights)
        if cumulative[-1] > 0:
            # The first point whose cumulative weight exceeds u: never a zero-weight point.
            u = rng.random() * cumulative[-1]
            pick = int(np.searchsorted(cumulative, u, side="right"))
            pick = min(pick, int(np.flatnonzero(weights > 0)[-1]))
        else:
            pick = int(rng.choice(np.setdiff1d(np.arange(len(x)), chosen)))
        chosen.append(pick)
        torch.minimum(nearest, torch.cdist(x, x[pick][None], p=1.0)[:, 0], out=nearest)
    return x[chosen].clone()


def kmedians_centres(
    points: torch.Tensor | np.ndarray,
    k: int,
    rng: np.random.Generator,
    max_iter: int = 100,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """Centres of a k-medians clustering of ``points`` (L1 distance).

    Lloyd-style iterations: assign every point to its nearest centre under L1, then move each
    centre to the coordinate-wise median of its points (the L1 minimiser; for an even count the
    lower median). Seeding is k-means++-style with L1 distances. A cluster left empty is
    re-seeded at the point farthest from its own centre, so no centre is lost. Stops when the
    centres no longer move or after ``max_iter`` iterations.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    k:
        Number of clusters, ``1 <= k <= N``. With ``k == N`` every point is its own centre.
    rng:
        Source of the seeding's randomness.
    max_iter:
        Maximum number of assignment/update iterations.
    chunk_size:
        Points per block in the assignment step: memory ``O(chunk_size * k)``.

    Returns
    -------
    torch.Tensor
        Shape ``(k, d)``, float64.
    """
    x = _float64(points, "points")
    _check_k(k, len(x))
    if k == len(x):
        return x.clone()
    centres = _seed_l1(x, k, rng)
    for _ in range(max_iter):
        labels, dists = _assign_l1(x, centres, chunk_size)
        counts = torch.bincount(labels, minlength=k)
        groups = torch.split(x[torch.argsort(labels, stable=True)], counts.tolist())
        updated = centres.clone()
        for j, members in enumerate(groups):
            if len(members):
                updated[j] = members.median(dim=0).values
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            updated[empty] = x[torch.as_tensor(top_n(dists, len(empty)))]
        if torch.equal(updated, centres):
            break
        centres = updated
    return centres
