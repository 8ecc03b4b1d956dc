"""Stochastic batch acquisition (Kirsch et al., 2023): any score into a diverse batch.

Taking the top ``n`` scores assumes the scores would not change as the batch is labeled; in
fact they do, and the top ``n`` are often near-duplicates. Sampling the batch instead, with
probabilities that grow with the score, keeps most of the top examples and adds diversity at
no extra cost. The three distributions of the paper are sampled without replacement with the
Gumbel-top-``n`` trick: perturb a log-probability with independent Gumbel(0, 1) noise divided
by a coldness ``beta`` and take the top ``n``:

============  ===================================  ===============================
mode          perturbed score                      picks with probability ∝
============  ===================================  ===============================
``softmax``   ``s_i + g_i / beta``                 ``exp(beta * s_i)``
``power``     ``log s_i + g_i / beta``             ``s_i ** beta`` (``s_i >= 0``)
``softrank``  ``-log r_i + g_i / beta``            ``r_i ** -beta`` (rank ``r_i`` from 1)
============  ===================================  ===============================

``beta = inf`` is plain top-``n``; ``beta = 0`` would be uniform random sampling. The paper
uses ``beta = 1``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepal.scores.selection import top_n

#: The acquisition modes: ``top_n`` (deterministic) and the three stochastic ones.
ACQUISITIONS = ("top_n", "power", "softmax", "softrank")


def perturbed_scores(
    scores: np.ndarray | torch.Tensor,
    mode: str,
    beta: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The Gumbel-perturbed log-probabilities whose top ``n`` are the sampled batch.

    Parameters
    ----------
    scores:
        One score per example, higher = more informative, shape ``(N,)``; non-negative for
        ``power``.
    mode:
        ``"softmax"``, ``"power"`` or ``"softrank"`` (see the module docstring).
    beta:
        Coldness, ``> 0``; ``inf`` removes the noise.
    rng:
        Source of the Gumbel noise.

    Returns
    -------
    np.ndarray
        Shape ``(N,)``, float64.
    """
    values = _as_float64(scores)
    if mode == "softmax":
        base = values
    elif mode == "power":
        if (values < 0).any():
            raise ValueError(
                "power acquisition needs non-negative scores (it samples ∝ score ** beta): "
                "use softmax or softrank for scores that can be negative"
            )
        with np.errstate(divide="ignore"):
            base = np.log(values)  # a zero score gets -inf: never sampled while others remain
    elif mode == "softrank":
        ranks = np.empty(len(values))
        ranks[top_n(values, len(values))] = np.arange(1, len(values) + 1)
        base = -np.log(ranks)
    else:
        raise ValueError(f"unknown acquisition mode {mode!r}: choose one of {ACQUISITIONS[1:]}")
    _check_beta(beta)
    noise = rng.gumbel(size=len(values))
    return base if math.isinf(beta) else base + noise / beta


def stochastic_top_n(
    scores: np.ndarray | torch.Tensor,
    n: int,
    mode: str = "power",
    beta: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Sample a batch of ``n`` positions without replacement, weighted by their scores.

    Parameters
    ----------
    scores:
        One score per example, shape ``(N,)``.
    n:
        Batch size.
    mode:
        ``"power"``, ``"softmax"`` or ``"softrank"``; ``"top_n"`` is the deterministic top ``n``.
    beta:
        Coldness ``> 0``: larger is closer to top-``n``; ``inf`` is exactly top-``n``.
    rng:
        Source of the noise (a fresh unseeded generator when ``None``).

    Returns
    -------
    np.ndarray
        ``n`` distinct positions, in the order of their perturbed scores.

    Examples
    --------
    >>> scores = np.array([0.1, 0.9, 0.5, 0.0])
    >>> stochastic_top_n(scores, 2, "power", beta=float("inf")).tolist()
    [1, 2]
    """
    if mode == "top_n":
        return top_n(scores, n)
    rng = rng if rng is not None else np.random.default_rng()
    return top_n(perturbed_scores(scores, mode, beta, rng), n)


def _check_beta(beta: float) -> None:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0 (inf for top-n), got {beta!r}")


def _as_float64(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    return np.asarray(scores, dtype=np.float64).reshape(-1)
