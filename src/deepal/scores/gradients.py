"""Last-layer gradient embeddings (BADGE, Ash et al. 2020) and k-means++ seeding on them.

For a network whose logits are ``W h + b`` (``h`` the embedding, ``W`` of shape ``(C, d)``), the
gradient of the cross-entropy with label ``y`` with respect to ``W`` is the outer product
``(p - e_y) h^T``: ``C * d`` numbers per example. BADGE uses the predicted label
``y = argmax p``. The functions here keep the two factors ``a = p - e_y`` (``N x C``) and ``h``
(``N x d``) instead of the ``N x (C * d)`` gradients, since every distance between two gradient
embeddings factors::

    ||g_i - g_j||^2 = ||a_i||^2 ||h_i||^2 + ||a_j||^2 ||h_j||^2 - 2 (a_i . a_j)(h_i . h_j)

(the inner product of two outer products is the product of the inner products), so seeding
costs ``O(N * (C + d))`` memory and ``O(N * (C + d))`` time per centre.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_2d_float64(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().cpu().double()
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (N, k), got {tuple(t.shape)}")
    return t


def gradient_factors(probs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The class factor ``a = p - onehot(argmax p)`` of each last-layer gradient.

    Parameters
    ----------
    probs:
        Class probabilities, shape ``(N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, C)``, float64. Ties in ``argmax`` go to the lowest class.
    """
    p = _as_2d_float64(probs, "probs")
    a = p.clone()
    a[torch.arange(len(p)), p.argmax(dim=1)] -= 1.0
    return a


def gradient_embeddings(
    probs: torch.Tensor | np.ndarray, embeddings: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """The explicit gradient embeddings ``vec((p - e_argmax) h^T)``, shape ``(N, C * d)``.

    Row-major like ``nn.Linear.weight.grad.flatten()``: entry ``c * d + i`` is
    ``a_c * h_i``. Meant for small inputs and tests; the selection never builds it.
    """
    a = gradient_factors(probs)
    h = _as_2d_float64(embeddings, "embeddings")
    if len(a) != len(h):
        raise ValueError(f"{len(a)} probability rows for {len(h)} embeddings")
    return (a[:, :, None] * h[:, None, :]).flatten(1)


def gradient_sq_dists(
    a: torch.Tensor, h: torch.Tensor, a2: torch.Tensor, h2: torch.Tensor
) -> torch.Tensor:
    """Squared distances between the gradient embeddings ``a_i (x) h_i`` and ``a2_j (x) h2_j``
    from their factors, shape ``(len(a), len(a2))``, clamped at 0."""
    sq = (a * a).sum(1) * (h * h).sum(1)
    sq2 = (a2 * a2).sum(1) * (h2 * h2).sum(1)
    return (sq[:, None] + sq2[None, :] - 2.0 * (a @ a2.T) * (h @ h2.T)).clamp_min(0.0)


def kmeans_pp_gradients(
    factors: torch.Tensor | np.ndarray,
    embeddings: torch.Tensor | np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """k-means++ seeding of ``n`` distinct points on the gradient embeddings ``a_i (x) h_i``.

    The first centre is the point with the largest gradient norm (as BADGE's authors do);
    each next one is drawn with probability proportional to its squared distance to the
    nearest centre so far (D^2 sampling). When every remaining distance is 0 (duplicates),
    the next one is drawn uniformly among the points not yet chosen.

    Parameters
    ----------
    factors:
        ``a``, shape ``(N, C)`` (:func:`gradient_factors`).
    embeddings:
        ``h``, shape ``(N, d)``.
    n:
        Number of points, ``0 <= n <= N``.
    rng:
        Source of the draws.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions (int64), in the order chosen.
    """
    a = _as_2d_float64(factors, "factors")
    h = _as_2d_float64(embeddings, "embeddings")
    if len(a) != len(h):
        raise ValueError(f"{len(a)} gradient factors for {len(h)} embeddings")
    if not 0 <= n <= len(a):
        raise ValueError(f"cannot pick {n} of {len(a)} points")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    sq_norms = (a * a).sum(1) * (h * h).sum(1)
    chosen = [int(sq_norms.argmax())]
    taken = np.zeros(len(a), dtype=bool)

    def sq_dists_to(j: int) -> np.ndarray:
        # One centre against every point: O(N (C + d)), no N x N and no N x Cd array.
        d = sq_norms + sq_norms[j] - 2.0 * (a @ a[j]) * (h @ h[j])
        return d.clamp_min(0.0).numpy()

    closest = sq_dists_to(chosen[0])
    while True:
        taken[chosen[-1]] = True
        closest[chosen[-1]] = 0.0  # the expansion can leave rounding noise on the centre
        if len(chosen) == n:
            break
        cumulative = np.cumsum(closest)
        if cumulative[-1] > 0:
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            pick = min(pick, int(np.flatnonzero(closest > 0)[-1]))  # never a zero weight
        else:
            pick = int(rng.choice(np.flatnonzero(~taken)))
        chosen.append(pick)
        np.minimum(closest, sq_dists_to(pick), out=closest)
    return np.asarray(chosen, dtype=np.int64)
