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

    The expansion is one matrix product, so it suits blocks of any size. Its rounding error
    is relative to the norms, not to the distance: in float32, for points with a spread of 1
    sitting 10,000 from the origin it exceeds the distances themselves. Distances do not
    change when both sets move together, so both are first translated by ``-b[0]``, which
    makes the error relative to the spread of the points instead, for ``O((M + P) d)`` more
    work against the product's ``O(M P d)``. A point of the data rather than a mean: each
    difference to it rounds relative to its own size, and integer-valued points stay exact,
    so tied distances stay tied. The result can still round slightly below 0 for
    (near-)identical points, so it is clamped at 0.

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

    Examples
    --------
    >>> far = torch.tensor([[10_000.0, 0.0], [10_000.0, 1.0]])
    >>> pairwise_sq_dists(far, far[1:]).tolist()
    [[1.0], [0.0]]
    """
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    if len(b):
        shift = b[0]
        a, b = a - shift, b - shift
    a_sq = (a * a).sum(dim=1, keepdim=True)
    b_sq = (b * b).sum(dim=1)
    # One (M, P) result, updated in place: fresh temporaries of that size cost more than
    # the translation above.
    out = torch.addmm(b_sq[None, :], a, b.T, alpha=-2.0)
    return out.add_(a_sq).clamp_min_(0.0)


def sq_dists_to(point: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Squared distances from one point ``(d,)`` to each of ``others`` ``(P, d)``, by direct
    differences: exact up to one rounding per term, and cheaper than the expansion of
    :func:`pairwise_sq_dists` for one point.

    Parameters
    ----------
    point:
        Shape ``(d,)``.
    others:
        Shape ``(P, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(P,)``.

    Examples
    --------
    >>> sq_dists_to(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, 1.0], [4.0, 5.0]])).tolist()
    [0.0, 25.0]
    """
    diff = others - point
    return (diff * diff).sum(dim=1)


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
    best = torch.full((len(points),), float("inf"), dtype=dtype, device=points.device)
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
    sync_every: int = 256,
) -> np.ndarray:
    """Greedy k-center (core-set) selection of ``n`` unlabeled points.

    Each step picks the unlabeled point farthest from its nearest centre (labeled or already
    picked; ties: lowest index). Every point keeps its squared distance to the nearest centre
    it has been compared with: an upper bound on the true one, since a point's nearest
    distance only shrinks as centres are added. A step takes the point with the largest bound;
    if that point has not yet been compared with every centre, it is (a few vectors, not a
    pass over the pool) and the step looks again; once the largest bound is exact, it is the
    true farthest point: the picks are those of the plain method that updates every point
    after every pick. Every ``sync_every`` such refreshes, every point is compared with the
    centres it has not seen in one chunked matrix product (fast, unlike one matrix-vector
    product per pick), which bounds the cost when many points need refreshing. The start
    costs one chunked pass over ``unlabeled x labeled`` distances. No ``N x N`` matrix:
    memory ``O(N + chunk_size ** 2)`` beyond the inputs.

    Cold start (no labeled point): the first pick is drawn uniformly by ``rng``, or, when
    ``rng`` is ``None``, is the point nearest the mean of all embeddings (ties: lowest index).

    Computation is in the precision and on the device of ``embeddings`` (float32 embeddings
    are used in place, with no copy; integers become float32), with each block of distances
    translated near the data first (:func:`pairwise_sq_dists`), so that float32 embeddings
    far from the origin give the picks of a float64 computation.

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
        Block size of the distance computations.
    sync_every:
        Refreshes of single points between two passes over the whole pool.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions of unlabeled points (int64), in the order picked.
    """
    x = torch.as_tensor(embeddings).detach()  # stays on its device (a GPU runs it there)
    if not x.is_floating_point():
        x = x.float()
    if x.dim() != 2:
        raise ValueError(f"embeddings must have shape (N, d), got {tuple(x.shape)}")
    labeled = torch.as_tensor(np.asarray(labeled_mask, dtype=bool)).reshape(-1).to(x.device)
    if len(labeled) != len(x):
        raise ValueError(f"labeled_mask has {len(labeled)} entries for {len(x)} points")
    n_unlabeled = int((~labeled).sum())
    if not 0 <= n <= n_unlabeled:
        raise ValueError(f"cannot pick {n} of {n_unlabeled} unlabeled points")
    if sync_every < 1:
        raise ValueError(f"sync_every must be at least 1, got {sync_every}")
    picks: list[int] = []
    if n == 0:
        return np.empty(0, dtype=np.int64)

    # bound[i]: squared distance from i to the nearest of the centres it was compared with,
    # -inf for centres themselves, so that the argmax only ever sees unlabeled points, even
    # when every remaining distance is 0 (duplicates). seen[i]: how many picks i was compared
    # with (the labeled centres always are).
    bound = torch.full((len(x),), float("-inf"), dtype=x.dtype, device=x.device)
    unlabeled = torch.nonzero(~labeled).flatten()
    if labeled.any():
        centres = x[labeled]
        for start in range(0, len(unlabeled), chunk_size):
            rows = unlabeled[start : start + chunk_size]
            bound[rows] = min_sq_dists(x[rows], centres, chunk_size)
    else:
        if rng is not None:
            first = int(rng.integers(len(x)))
        else:
            first = int(min_sq_dists(x, x.mean(dim=0, keepdim=True), chunk_size).argmin())
        picks.append(first)
        bound[unlabeled] = min_sq_dists(x[unlabeled], x[first][None], chunk_size)
        bound[first] = float("-inf")
    seen = torch.full((len(x),), len(picks), dtype=torch.long)
    synced = len(picks)  # every point has seen picks[:synced]
    refreshes = 0
    while len(picks) < n:
        candidate = int(bound.argmax())  # first maximum: ties go to the lowest index
        unseen = picks[int(seen[candidate]) :]
        if not unseen:
            picks.append(candidate)
            bound[candidate] = float("-inf")
            seen[candidate] = len(picks)
            continue
        if refreshes < sync_every:
            refreshes += 1
            nearest = sq_dists_to(x[candidate], x[unseen]).min()
            bound[candidate] = torch.minimum(bound[candidate], nearest)
            seen[candidate] = len(picks)
            continue
        # Too many single refreshes: compare every point with the picks since the last sync.
        new_centres = x[picks[synced:]]
        for start in range(0, len(x), chunk_size):
            block = bound[start : start + chunk_size]  # a view: updated in place
            torch.minimum(block, min_sq_dists(x[start : start + chunk_size], new_centres,
                                              chunk_size), out=block)
        seen.fill_(len(picks))
        synced, refreshes = len(picks), 0
    return np.asarray(picks, dtype=np.int64)
