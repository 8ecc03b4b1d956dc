"""Clustering for diversity sampling: k-means and k-medians centres, and the points nearest them.

A clustering strategy finds ``n`` centres in embedding space and labels the pool example nearest
each one. :func:`nearest_distinct` guarantees ``n`` *different* examples even when centres share
a nearest point. Distances are computed in blocks, never as a full ``N x N`` matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

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
    chunk_size: int = 256,
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


def kmeans_centres(
    points: torch.Tensor | np.ndarray,
    k: int,
    rng: np.random.Generator,
    minibatch_above: int = 20_000,
) -> torch.Tensor:
    """Centres of a k-means clustering of ``points`` (scikit-learn, one k-means++ start).

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    k:
        Number of clusters, ``1 <= k <= N``. With ``k == N`` every point is its own centre.
    rng:
        Source of the clustering's seed.
    minibatch_above:
        Above this many points, :class:`~sklearn.cluster.MiniBatchKMeans` is used instead of
        full-batch :class:`~sklearn.cluster.KMeans`, which is too slow on large pools.

    Returns
    -------
    torch.Tensor
        Shape ``(k, d)``, float64.
    """
    x = _float64(points, "points")
    _check_k(k, len(x))
    if k == len(x):
        return x.clone()
    seed = int(rng.integers(2**31 - 1))
    if len(x) > minibatch_above:
        model: KMeans | MiniBatchKMeans = MiniBatchKMeans(k, n_init=1, random_state=seed)
    else:
        model = KMeans(k, n_init=1, random_state=seed)
    with warnings.catch_warnings():
        # Fewer distinct points than k gives duplicate centres and a warning; harmless here,
        # since nearest_distinct still returns k distinct points.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x.numpy())
    return torch.as_tensor(model.cluster_centers_, dtype=torch.float64)


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
