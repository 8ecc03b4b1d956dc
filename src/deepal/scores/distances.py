"""Squared Euclidean distances in chunks, and greedy k-center selection.

No function here builds an ``N x N`` matrix: distances are computed a block at a time and the
greedy selection keeps, for every point, its running minimum distance to the chosen centres.
Distances are squared: a square root would not change any argmin or argmax.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_CHUNK_SIZE = 1024


def pairwise_sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j``.

    The expansion is one matrix product, so it suits blocks of any size; it can round slightly
    below 0 for (near-)identical points, so the result is clamped at 0.

    Parameters
    ----------
    a:
        Points, shape ``(M, d)``.
    b:
        Points, shape ``(P, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(M, P)``, in the promoted dtype of ``a`` and ``b``.
    """
    a_sq = (a * a).sum(dim=1, keepdim=True)
    b_sq = (b * b).sum(dim=1)
    return (a_sq + b_sq - 2.0 * (a @ b.T)).clamp_min(0.0)


def min_sq_dists(
    points: torch.Tensor, centres: torch.Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> torch.Tensor:
    """Each point's squared distance to its nearest centre.

    Both sets are walked in blocks of ``chunk_size`` with a running minimum, so memory is
    ``O(chunk_size ** 2)`` beyond the inputs, whatever ``len(points)`` and ``len(centres)``.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    centres:
        Shape ``(M, d)``; may be empty, in which case every distance is ``inf``.
    chunk_size:
        Block size along both sets.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    dtype = torch.promote_types(points.dtype, centres.dtype)
    best = torch.full((len(points),), float("inf"), dtype=dtype)
    for start in range(0, len(points), chunk_size):
        block = points[start : start + chunk_size]
        out = best[start : start + chunk_size]  # a view: updated in place
        for c_start in range(0, len(centres), chunk_size):
            dists = pairwise_sq_dists(block, centres[c_start : c_start + chunk_size])
            torch.minimum(out, dists.min(dim=1).values, out=out)
    return best


def k_center_greedy(
    embeddings: torch.Tensor,
    labeled_mask: np.ndarray | torch.Tensor,
    n: int,
    rng: np.random.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Greedy k-center (core-set) selection of ``n`` unlabeled points.

    Every point keeps its squared distance to the nearest centre (labeled or already picked).
    Each step picks the unlabeled point with the largest such distance (ties: lowest index)
    and lowers every running minimum with the distances to that one point, so a step costs
    ``O(N * d)`` time and ``O(N)`` memory. The start costs one chunked pass over
    ``unlabeled x labeled`` distances (:func:`min_sq_dists`).

    Cold start (no labeled point): the first pick is drawn uniformly by ``rng``, or, when
    ``rng`` is ``None``, is the point nearest the mean of all embeddings (ties: lowest index).

    Computation is in the precision of ``embeddings`` (float32 embeddings are used in place,
    with no copy; integers become float32), so the extra memory is ``O(N)``.

    Parameters
    ----------
    embeddings:
        Shape ``(N, d)``: the whole pool, labeled points included.
    labeled_mask:
        Shape ``(N,)`` booleans: which points are already labeled (the initial centres).
    n:
        Number of points to pick, at most the number of unlabeled points.
    rng:
        Draws the first pick at a cold start; unused otherwise.
    chunk_size:
        Block size of the initial distance computation.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions of unlabeled points (int64), in the order picked.
    """
    x = torch.as_tensor(embeddings).detach().cpu()
    if not x.is_floating_point():
        x = x.float()
    if x.dim() != 2:
        raise ValueError(f"embeddings must have shape (N, d), got {tuple(x.shape)}")
    labeled = torch.as_tensor(np.asarray(labeled_mask, dtype=bool)).reshape(-1)
    if len(labeled) != len(x):
        raise ValueError(f"labeled_mask has {len(labeled)} entries for {len(x)} points")
    n_unlabeled = int((~labeled).sum())
    if not 0 <= n <= n_unlabeled:
        raise ValueError(f"cannot pick {n} of {n_unlabeled} unlabeled points")
    picks: list[int] = []
    if n == 0:
        return np.empty(0, dtype=np.int64)

    sq_norms = (x * x).sum(dim=1)

    def sq_dists_to(i: int) -> torch.Tensor:
        # Distances of every point to point i: one matrix-vector product, O(N * d).
        return (sq_norms + sq_norms[i] - 2.0 * (x @ x[i])).clamp_min(0.0)

    if labeled.any():
        min_dist = torch.full((len(x),), float("-inf"), dtype=x.dtype)
        min_dist[~labeled] = min_sq_dists(x[~labeled], x[labeled], chunk_size)
    else:
        if rng is not None:
            first = int(rng.integers(len(x)))
        else:
            first = int(pairwise_sq_dists(x, x.mean(dim=0, keepdim=True))[:, 0].argmin())
        picks.append(first)
        min_dist = sq_dists_to(first)
        min_dist[first] = float("-inf")
    # Labeled and picked points hold -inf, so the argmax only ever sees unlabeled ones, even
    # when every remaining distance is 0 (duplicates).
    while len(picks) < n:
        pick = int(min_dist.argmax())  # first maximum: ties go to the lowest index
        picks.append(pick)
        torch.minimum(min_dist, sq_dists_to(pick), out=min_dist)
        min_dist[pick] = float("-inf")
    return np.asarray(picks, dtype=np.int64)
