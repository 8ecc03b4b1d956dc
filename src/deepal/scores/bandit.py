"""EXP4.P, the bandit with expert advice (Beygelzimer et al., 2011) behind Active Learning by
Learning (Hsu & Lin, 2015): the experts are query strategies, the arms unlabeled examples.

The two steps are pure functions so that the update can be checked by hand.
"""

from __future__ import annotations

import math

import numpy as np


def exp4p_probabilities(weights: np.ndarray, advice: np.ndarray, p_min: float) -> np.ndarray:
    """Query probabilities ``q_j = (1 - K p_min) sum_k w_k xi_k(j) / sum_k w_k + p_min``.

    Parameters
    ----------
    weights:
        One positive weight per expert, ``(M,)``.
    advice:
        ``(M, K)``: each expert's probability distribution over the ``K`` arms.
    p_min:
        The least probability of any arm, in ``[0, 1/K]``.

    Returns
    -------
    np.ndarray
        ``(K,)``, summing to 1.
    """
    n_arms = advice.shape[1]
    if not 0 <= p_min * n_arms <= 1:
        raise ValueError(f"p_min={p_min} must be in [0, 1/K] for K={n_arms} arms")
    mixture = weights @ advice / weights.sum()
    q = (1 - n_arms * p_min) * mixture + p_min
    return q / q.sum()  # exact sum 1 despite rounding


def exp4p_update(
    weights: np.ndarray,
    advice: np.ndarray,
    q: np.ndarray,
    picked: np.ndarray,
    reward: float,
    p_min: float,
    horizon: int,
    delta: float = 0.1,
) -> np.ndarray:
    """EXP4.P's weight update after the arms ``picked`` earned ``reward``.

    With one pick ``j`` this is EXP4.P's update: ``rhat = reward / q_j`` on arm ``j``,
    expert gains ``yhat_k = xi_k(j) rhat``, variance bounds ``vhat_k = sum_i xi_k(i) / q_i``,
    and ``w_k <- w_k exp(p_min / 2 (yhat_k + vhat_k sqrt(ln(M / delta) / (K T))))``. A batch
    of picks (batch-mode active learning) counts as one EXP4.P round per pick, all paid the
    batch's reward: the exponents of the picks add up.

    Parameters
    ----------
    weights, advice, q:
        As before the query: ``(M,)``, ``(M, K)``, ``(K,)``.
    picked:
        Positions of the arms that were queried.
    reward:
        The reward of that query, in ``[0, 1]``.
    p_min, horizon, delta:
        EXP4.P's least arm probability, its horizon ``T`` and confidence ``delta``.

    Returns
    -------
    np.ndarray
        The new weights, normalised to sum to ``M`` (only their ratios matter).
    """
    n_experts, n_arms = advice.shape
    picked = np.asarray(picked, dtype=np.int64).reshape(-1)
    y_hat = (advice[:, picked] * reward / q[picked]).sum(axis=1)  # summed over the picks
    v_hat = (advice / q).sum(axis=1)
    bonus = math.sqrt(math.log(n_experts / delta) / (n_arms * horizon))
    log_w = np.log(weights) + p_min / 2 * (y_hat + len(picked) * v_hat * bonus)
    log_w -= log_w.max()  # no overflow however long the run
    new = np.exp(log_w)
    return new * n_experts / new.sum()


def importance_weighted_accuracy(
    correct: list[np.ndarray], inverse_probs: list[np.ndarray], n_arms: list[int]
) -> float:
    """ALBL's reward: the importance-weighted accuracy of the current classifier on every
    example queried so far, an unbiased estimate of its accuracy on the pool.

    Round ``t`` queried its examples with inclusion probabilities ``pi``; each correct one
    counts ``1 / pi`` over the ``K_t`` arms of that round, and the rounds are averaged.

    Parameters
    ----------
    correct:
        Per round, whether the classifier now predicts each queried example's label.
    inverse_probs:
        Per round, ``1 / pi`` of each queried example.
    n_arms:
        Per round, the number of arms ``K_t``.

    Returns
    -------
    float
        Clipped to ``[0, 1]`` (a bandit reward); 0 when nothing was queried.
    """
    if not correct:
        return 0.0
    rounds = zip(correct, inverse_probs, n_arms, strict=True)
    per_round = [float((c * w).sum()) / k for c, w, k in rounds]
    return float(np.clip(np.mean(per_round), 0.0, 1.0))
