"""Uncertainty scores computed from class probabilities.

Every function here is pure: it takes probabilities and returns one score per example, where a
HIGHER score means a MORE informative example, so a strategy always selects with
:func:`~deepal.scores.selection.top_n`. Probabilities are ``(N, C)`` tensors (softmax outputs,
or the mean of MC-dropout samples); BALD takes the samples themselves, ``(K, N, C)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def _check_probs(probs: torch.Tensor, ndim: int = 2) -> None:
    if probs.dim() != ndim:
        shape = tuple(probs.shape)
        raise ValueError(f"expected a {ndim}-d tensor of probabilities, got shape {shape}")


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """Least-confidence score ``1 - max_c p_c``.

    Parameters
    ----------
    probs:
        Class probabilities, shape ``(N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``; 0 for a one-hot prediction, ``1 - 1/C`` for a uniform one.
    """
    _check_probs(probs)
    return 1.0 - probs.max(dim=1).values


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Negated margin ``-(p_(1) - p_(2))`` between the two largest probabilities.

    The sign is flipped so that the example whose two top classes are closest scores highest.

    Parameters
    ----------
    probs:
        Class probabilities, shape ``(N, C)`` with ``C >= 2``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, in ``[-1, 0]``; 0 when the two top classes tie.
    """
    _check_probs(probs)
    if probs.shape[1] < 2:
        raise ValueError("the margin needs at least 2 classes")
    top2 = probs.topk(2, dim=1).values
    return top2[:, 1] - top2[:, 0]


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = -sum_c p_c log p_c`` (natural log) over the last axis.

    ``0 log 0`` is taken as 0 (through :func:`torch.special.xlogy`), so a one-hot prediction
    scores exactly 0 and never NaN; a uniform one scores ``log C``.

    Parameters
    ----------
    probs:
        Class probabilities, shape ``(..., C)``; usually ``(N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: one entropy per probability vector.
    """
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def bald(mc_probs: torch.Tensor) -> torch.Tensor:
    """BALD (mutual information between the prediction and the weights) from MC samples.

    ``BALD = H(mean_k p_k) - mean_k H(p_k)``, the entropy of the mean prediction minus the mean
    entropy of the ``K`` dropout samples. It is 0 when all samples agree and grows when they
    disagree. Mathematically it is never negative; rounding can make it slightly so, hence
    the clamp at 0.

    Parameters
    ----------
    mc_probs:
        MC-dropout probabilities, shape ``(K, N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64.
    """
    _check_probs(mc_probs, ndim=3)
    # The score is a difference of two close entropies; float64 keeps the cancellation exact
    # enough that "all samples agree" gives (almost exactly) 0.
    samples = mc_probs.double()
    mean_entropy = entropy(samples).mean(dim=0)
    return (entropy(samples.mean(dim=0)) - mean_entropy).clamp_min(0.0)


def bald_from_batches(batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """BALD computed batch by batch from a stream of MC-dropout samples.

    Each item of ``batches`` is a ``(K, B, C)`` tensor (as yielded by
    :meth:`deepal.Net.predict_prob_dropout_batches`). BALD is a per-example quantity, so each
    batch is reduced as it arrives and memory stays ``O(N * C)``, never ``O(K * N * C)``.
    The result equals :func:`bald` on the concatenated samples.

    Parameters
    ----------
    batches:
        Iterable of MC-dropout probabilities, each of shape ``(K, B, C)``.

    Returns
    -------
    mean_probs:
        ``mean_k p_k`` for every example, shape ``(N, C)``.
    scores:
        BALD of every example, shape ``(N,)``, float64.
    """
    means: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    for samples in batches:
        _check_probs(samples, ndim=3)
        means.append(samples.mean(dim=0))
        scores.append(bald(samples))
    if not scores:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.float64)
    return torch.cat(means), torch.cat(scores)
