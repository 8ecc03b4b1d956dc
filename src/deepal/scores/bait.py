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
``tr((I + Q_x)^{-1} R_x)``, removing it raises it by ``tr((I - Q_x)^{-1} R_x)``. Costs: one
``D x D`` inverse and ``O(N C D^2)`` to start, then ``O(N C^2 D + C D^2)`` per step (two
passes over ``V``); memory: ``V`` and a scaled float64 copy, and one more such array at the
start (``24 N C D`` bytes at most): restrict ``N`` to a candidate subset on a large pool.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.gradients import _as_2d_float64


def fisher_factors(
    probs: torch.Tensor | np.ndarray, embeddings: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """``V`` with ``I(x) = V_x V_x^T``: shape ``(N, C * d, C)``, float64.

    ``V[x, c * d + i, y] = sqrt(p_y) (p_c - [c = y]) h_i``: column ``y`` is the last-layer
    gradient of the loss with label ``y`` (row-major like ``nn.Linear.weight``), weighted by
    the square root of that label's probability.
    """
    p = _as_2d_float64(probs, "probs")
    h = _as_2d_float64(embeddings, "embeddings")
    n, c = p.shape
    b = p.sqrt()[:, None, :] * (p[:, :, None] - torch.eye(c, dtype=p.dtype)[None])
    return (b[:, :, None, :] * h[:, None, :, None]).reshape(n, c * h.shape[1], c)


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
    factors: torch.Tensor,
    pool_fisher: torch.Tensor,
    labeled_fisher: torch.Tensor,
    n_labeled: int,
    n: int,
    lamb: float = 1.0,
    oversample: int = 2,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """BAIT's forward-backward greedy selection of ``n`` candidates.

    Parameters
    ----------
    factors:
        ``V`` of the candidates, shape ``(N, D, C)`` (:func:`fisher_factors`).
    pool_fisher:
        ``F``, shape ``(D, D)``: the mean Fisher of the pool.
    labeled_fisher:
        Shape ``(D, D)``: the *sum* of the labeled examples' Fisher.
    n_labeled:
        Number of labeled examples (for the normaliser ``|L| + n``).
    n:
        Picks, ``0 <= n <= N``.
    lamb:
        Regularisation ``lambda > 0``.
    oversample:
        The forward pass picks ``min(oversample * n, N)`` before pruning back to ``n``.
    device:
        Where the float64 products run (a GPU speeds up the ``N C D`` passes).

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions into the candidates (int64), in forward order.
    """
    n_cand, dim, c = factors.shape
    if not 0 <= n <= n_cand:
        raise ValueError(f"cannot pick {n} of {n_cand} candidates")
    if not lamb > 0:
        raise ValueError(f"lamb must be > 0, got {lamb!r}")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    scale = 1.0 / (n_labeled + n)
    f64 = torch.float64
    eye_c = torch.eye(c, dtype=f64, device=device)
    a = torch.linalg.inv(lamb * torch.eye(dim, dtype=f64, device=device)
                         + scale * labeled_fisher.to(device, f64))
    a = 0.5 * (a + a.T)
    f = pool_fisher.to(device, f64)
    # Row x * C + y of vt is V_x[:, y]^T; the Woodbury updates below only ever read it, in
    # two matrix products per step, and keep A (D x D) and the C x C products Q and R.
    vt = (factors.detach().to(device, f64).transpose(1, 2) * np.sqrt(scale)).reshape(
        n_cand * c, dim)
    w = vt @ a  # V_x^T A, only to start
    q = torch.bmm(w.view(n_cand, c, dim), vt.view(n_cand, c, dim).transpose(1, 2))  # V^T A V
    r = torch.bmm((w @ f).view(n_cand, c, dim), w.view(n_cand, c, dim).transpose(1, 2))
    del w  # V_x^T A F A V_x above

    def change(rows: torch.Tensor, sign: float) -> torch.Tensor:
        # Objective change of adding (sign=+1) or removing (-1) each of `rows`:
        # tr((I + sign V^T A V)^{-1} V^T A F A V).
        return torch.linalg.solve(eye_c + sign * q[rows], r[rows]).diagonal(
            dim1=1, dim2=2).sum(dim=1)

    def update(j: int, sign: float) -> None:
        # Woodbury: A' = A - sign U K U^T with U = A V_j, K = (I + sign V_j^T A V_j)^{-1}.
        # With P_x = V_x^T U and G_x = V_x^T A F U:
        # Q' = Q - sign P K P^T, R' = R - sign (G K P^T + P K G^T) + P K (U^T F U) K P^T.
        vj = vt[j * c : (j + 1) * c].T
        u = a @ vj
        fu = f @ u
        k = torch.linalg.inv(eye_c + sign * (vj.T @ u))
        p = (vt @ u).view(n_cand, c, c)
        g = (vt @ (a @ fu)).view(n_cand, c, c)
        pk = (p.reshape(-1, c) @ k).view(n_cand, c, c)
        gk = (g.reshape(-1, c) @ k).view(n_cand, c, c)
        q.sub_(sign * torch.bmm(pk, p.transpose(1, 2)))
        r.sub_(sign * (torch.bmm(gk, p.transpose(1, 2)) + torch.bmm(pk, g.transpose(1, 2))))
        pkh = (pk.reshape(-1, c) @ (u.T @ fu)).view(n_cand, c, c)
        r.add_(torch.bmm(pkh, pk.transpose(1, 2)))
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
