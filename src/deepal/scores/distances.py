"""Squared Euclidean distances in chunks.

No function here builds an ``N x N`` matrix: distances are computed a block at a time.
Distances are squared: a square root would not change any argmin or argmax. Greedy k-center
selection over them is :func:`deepal.scores.kcenter.k_center_greedy`.
"""

from __future__ import annotations

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
