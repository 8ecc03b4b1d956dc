"""BAIT for classification (Ash et al., 2021): greedy Fisher-information batch selection.

With last-layer gradients ``g_{x,y} = (p_x - e_y) (x) h_x`` (``D = C * d`` numbers; see
:mod:`deepal.scores.gradients`), the Fisher information of an example is the expectation over
its predicted label, ``I(x) = sum_y p_y g_{x,y} g_{x,y}^T = V_x V_x^T`` with the ``D x C``
factor ``V_x[:, y] = sqrt(p_y) g_{x,y}``; equivalently ``I(x) = (diag p - p p^T) (x) h h^T``.
BAIT picks the batch ``S`` minimising ``tr(M_S^{-1} F)``, where ``F`` is the pool's mean
Fisher and ``M_S = lambda I + (sum of I(x) over the labeled examples and S) / (|L| + n)``
(the mean Fisher of the labeled set after the query, regularised): greedily forward to
``oversample * n`` examples, then backward, removing one at a time the example whose removal
costs least, down to ``n``.

Every step is a rank-``C`` change of ``M``, done with the Woodbury identity instead of a new
inverse: ``A = M^{-1}`` and, per candidate, the ``C x C`` products ``Q_x = V_x^T A V_x`` and
``R_x = V_x^T A F A V_x`` are updated in place; adding ``x`` lowers the objective by
``tr((I + Q_x)^{-1} R_x)``, removing it raises it by ``tr((I - Q_x)^{-1} R_x)``.

``V_x`` is never built for the candidates: it is the Kronecker product of the ``C x C``
matrix ``B_x[c, y] = sqrt(p_y) (p_c - [c = y])`` and ``h_x``, so ``V_x^T X`` for any
``D x K`` matrix ``X`` is ``B_x^T (h_x`` contracted with ``X`` viewed as ``C x d x K)``.
Costs: one ``D x D`` inverse and ``O(N D^2)`` to start, then ``O(N C D + D^2 C)`` per step;
memory ``O(N (C^2 + d))`` plus a few ``D x D`` matrices and ``O(chunk C D)`` temporaries.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.gradients import _as_2d_float64


def fisher_factors(
    probs: torch.Tensor | np.ndarray, embeddings: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """``V`` with ``I(x) = V_x V_x^T``: shape ``(N, C * d, C)``, float64 (explicit, for
    small inputs and checks: :func:`bait_select` works from its factors).

    ``V[x, c * d + i, y] = sqrt(p_y) (p_c - [c = y]) h_i``: column ``y`` is the last-layer
    gradient of the loss with label ``y`` (row-major like ``nn.Linear.weight``), weighted by
    the square root of that label's probability.
    """
    b = class_factors(probs)
    h = _as_2d_float64(embeddings, "embeddings")
    n, c = b.shape[:2]
    return (b[:, :, None, :] * h[:, None, :, None]).reshape(n, c * h.shape[1], c)


def class_factors(probs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``B`` with ``V_x = B_x (x) h_x``: ``B[x, c, y] = sqrt(p_y) (p_c - [c = y])``,
    shape ``(N, C, C)``, float64 (``B_x B_x^T = diag p_x - p_x p_x^T``)."""
    p = _as_2d_float64(probs, "probs")
    eye = torch.eye(p.shape[1], dtype=p.dtype)
    return p.sqrt()[:, None, :] * (p[:, :, None] - eye[None])


def _v_t_times(b: torch.Tensor, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``V_i^T X`` for every row ``i``, shape ``(N, C, K)``, for ``X`` of shape ``(C d, K)``:
    ``sum_{c, j} B[i, c, y] h[i, j] X[c d + j, k]``, in ``O(N C d K + N C^2 K)``."""
    c, d = b.shape[1], h.shape[1]
    hx = (h @ x.view(c, d, -1).transpose(0, 1).reshape(d, -1)).view(len(h), c, -1)
    return torch.bmm(b.transpose(1, 2), hx)


def _quadratic(b: torch.Tensor, h: torch.Tensor, m: torch.Tensor, chunk_size: int
               ) -> torch.Tensor:
    """``V_i^T M V_i`` for every row ``i``, shape ``(N, C, C)``, for a ``C d x C d`` matrix
    ``M``: ``h_i^T M_{c c'} h_i`` then ``B_i^T (.) B_i``, in blocks of rows (``O(N D^2)``)."""
    n, c, d = len(b), b.shape[1], h.shape[1]
    # m4[j, c, c', j'] = M[c d + j, c' d + j'], flattened to (d, C C d) for one product.
    m4 = m.view(c, d, c, d).permute(1, 0, 2, 3).reshape(d, c * c * d)
    out = torch.empty(n, c, c, dtype=m.dtype, device=m.device)
    for start in range(0, n, chunk_size):
        hb = h[start : start + chunk_size]
        t = ((hb @ m4).view(len(hb), c, c, d) * hb[:, None, None, :]).sum(dim=3)
        bb = b[start : start + chunk_size]
        out[start : start + chunk_size] = torch.bmm(torch.bmm(bb.transpose(1, 2), t), bb)
    return out


def fisher_sum(
    probs: torch.Tensor | np.ndarray,
    embeddings: torch.Tensor | np.ndarray,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``sum_x I(x) = sum_x (diag p_x - p_x p_x^T) (x) h_x h_x^T``, shape ``(C d, C d)``,
    float64, in blocks of ``chunk_size`` examples (``O(N C^2 d^2)`` time)."""
    p = _as_2d_float64(probs, "probs")
    h = _as_2d_float64(embeddings, "embeddings")
    c, d = p.shape[1], h.shape[1]
    out = torch.zeros(c, d, c, d, dtype=torch.float64)
    for start in range(0, len(p), chunk_size):
        pb, hb = p[start : start + chunk_size], h[start : start + chunk_size]
        s = torch.diag_embed(pb) - pb[:, :, None] * pb[:, None, :]
        out += torch.einsum("xab,xi,xj->aibj", s, hb, hb)
    return out.reshape(c * d, c * d)


def bait_select(
    probs: torch.Tensor | np.ndarray,
    embeddings: torch.Tensor | np.ndarray,
    pool_fisher: torch.Tensor,
    labeled_fisher: torch.Tensor,
    n_labeled: int,
    n: int,
    lamb: float = 1.0,
    oversample: int = 2,
    device: torch.device | str = "cpu",
    chunk_size: int = 256,
) -> np.ndarray:
    """BAIT's forward-backward greedy selection of ``n`` candidates.

    Parameters
    ----------
    probs:
        The candidates' class probabilities, shape ``(N, C)``.
    embeddings:
        The candidates' embeddings (inputs of the last layer), shape ``(N, d)``.
    pool_fisher:
        ``F``, shape ``(C d, C d)``: the mean Fisher of the pool (:func:`fisher_sum` / size).
    labeled_fisher:
        Shape ``(C d, C d)``: the *sum* of the labeled examples' Fisher.
    n_labeled:
        Number of labeled examples (for the normaliser ``|L| + n``).
    n:
        Picks, ``0 <= n <= N``.
    lamb:
        Regularisation ``lambda > 0``.
    oversample:
        The forward pass picks ``min(oversample * n, N)`` before pruning back to ``n``.
    device:
        Where the float64 products run.
    chunk_size:
        Candidates per block of the initial products (memory ``O(chunk_size C D)``).

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions into the candidates (int64), in forward order.
    """
    f64 = torch.float64
    h = _as_2d_float64(embeddings, "embeddings").to(device)
    n_cand, c = len(h), _as_2d_float64(probs, "probs").shape[1]
    if not 0 <= n <= n_cand:
        raise ValueError(f"cannot pick {n} of {n_cand} candidates")
    if not lamb > 0:
        raise ValueError(f"lamb must be > 0, got {lamb!r}")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    dim = c * h.shape[1]
    scale = 1.0 / (n_labeled + n)
    # sqrt(scale) V: the batch enters M as its Fisher sum over |L| + n.
    b = (class_factors(probs) * np.sqrt(scale)).to(device)
    eye_c = torch.eye(c, dtype=f64, device=device)
    a = torch.linalg.inv(lamb * torch.eye(dim, dtype=f64, device=device)
                         + scale * labeled_fisher.to(device, f64))
    a = 0.5 * (a + a.T)
    f = pool_fisher.to(device, f64)
    q = _quadratic(b, h, a, chunk_size)  # V_x^T A V_x
    r = _quadratic(b, h, a @ f @ a, chunk_size)  # V_x^T A F A V_x

    def change(rows: torch.Tensor, sign: float) -> torch.Tensor:
        # Objective change of adding (sign=+1) or removing (-1) each of `rows`:
        # tr((I + sign V^T A V)^{-1} V^T A F A V).
        return torch.linalg.solve(eye_c + sign * q[rows], r[rows]).diagonal(
            dim1=1, dim2=2).sum(dim=1)

    def update(j: int, sign: float) -> None:
        # Woodbury: A' = A - sign U K U^T with U = A V_j, K = (I + sign V_j^T A V_j)^{-1}.
        # With P_x = V_x^T U and G_x = V_x^T A F U:
        # Q' = Q - sign P K P^T, R' = R - sign (G K P^T + P K G^T) + P K (U^T F U) K P^T.
        vj = (b[j][:, None, :] * h[j][None, :, None]).reshape(dim, c)
        u = a @ vj
        fu = f @ u
        k = torch.linalg.inv(eye_c + sign * (vj.T @ u))
        p = _v_t_times(b, h, u)
        g = _v_t_times(b, h, a @ fu)
        pk = p @ k
        q.sub_(sign * torch.bmm(pk, p.transpose(1, 2)))
        r.sub_(sign * (torch.bmm(g @ k, p.transpose(1, 2)) + torch.bmm(pk, g.transpose(1, 2))))
        r.add_(torch.bmm(pk @ (u.T @ fu), pk.transpose(1, 2)))
        a.sub_(sign * (u @ k @ u.T))

    everyone = torch.arange(n_cand, device=device)
    chosen: list[int] = []
    free = torch.ones(n_cand, dtype=torch.bool, device=device)
    for _ in range(min(oversample * n, n_cand)):
        gain = change(everyone, 1.0).masked_fill(~free, -float("inf"))
        j = int(gain.argmax())  # first maximum: ties to the lowest position
        chosen.append(j)
        free[j] = False
        update(j, 1.0)
    while len(chosen) > n:
        loss = change(torch.as_tensor(chosen, device=device), -1.0)
        j = chosen.pop(int(loss.argmin()))
        update(j, -1.0)
    return np.asarray(chosen, dtype=np.int64)
