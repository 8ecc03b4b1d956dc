"""Disagreement scores computed from posterior samples of class probabilities.

Each function takes samples ``(K, N, C)`` (``K`` MC-dropout passes or ensemble members) and
returns one score per example, higher = more informative, like the rest of
:mod:`deepal.scores`. BALD itself is :func:`deepal.scores.uncertainty.bald`; :func:`epig`
scores candidates by what their labels tell about the predictions at target inputs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

#: Largest ``B * C * M * C`` joint-distribution block :func:`epig` holds at once (float64).
EPIG_BLOCK_ELEMENTS = 1 << 22


def _check_samples(samples: torch.Tensor) -> None:
    if samples.dim() != 3:
        raise ValueError(f"expected samples of shape (K, N, C), got {tuple(samples.shape)}")


def variation_ratio(samples: torch.Tensor) -> torch.Tensor:
    """Variation ratio ``1 - f / K`` (Freeman, 1965; Gal et al., 2017).

    ``f`` is the number of the ``K`` samples whose predicted class (argmax) is the modal one:
    0 when every sample predicts the same class, up to ``1 - 1/min(K, C)``.

    Parameters
    ----------
    samples:
        Class probabilities, shape ``(K, N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64.
    """
    _check_samples(samples)
    n_samples, n, n_classes = samples.shape
    votes = torch.zeros(n, n_classes, dtype=torch.float64)
    votes.scatter_add_(1, samples.argmax(dim=2).T, torch.ones(n, n_samples, dtype=torch.float64))
    return 1.0 - votes.max(dim=1).values / n_samples


def mean_std(samples: torch.Tensor) -> torch.Tensor:
    """Mean standard deviation ``mean_c sqrt(E_k[p_c^2] - E_k[p_c]^2)`` (Kampffmeyer et al., 2016).

    The standard deviation of each class probability across the samples (population form,
    dividing by ``K``), averaged over the classes: 0 when all samples agree.

    Parameters
    ----------
    samples:
        Class probabilities, shape ``(K, N, C)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64.
    """
    _check_samples(samples)
    return samples.double().std(dim=0, correction=0).mean(dim=1)


def epig(
    candidates: torch.Tensor, targets: torch.Tensor, block_elements: int = EPIG_BLOCK_ELEMENTS
) -> torch.Tensor:
    """Expected predictive information gain (Bickford Smith et al., 2023) of each candidate.

    ``EPIG(x) = mean_m I(y; y*_m | x, x*_m)``, the mutual information between a candidate's
    label ``y`` and the label ``y*`` of each target input, averaged over the ``M`` targets.
    With ``p_k`` the ``k``-th posterior sample, the joint predictive is
    ``p(y, y*) = mean_k p_k(y | x) p_k(y* | x*)``, and
    ``I = sum p(y, y*) log(p(y, y*) / (p(y) p(y*)))`` is computed as
    ``H(y) + H(y*) - H(y, y*)`` with both marginals summed from that joint, so it is the
    divergence of the joint from the product of its own marginals: never negative, 0 when
    all samples agree. ``0 log 0`` is taken as 0, so probabilities of exactly 0 are fine.

    Sample ``k`` must be the same network for every candidate and target (one ensemble
    member, or one set of consistent dropout masks): the joint relies on it. For
    ``targets = candidates[:, [i]]`` (the target is the candidate itself), EPIG is at most
    BALD (``I(y; y*) <= I(y; theta)``), with equality when every sample predicts one class
    with certainty.

    Memory: candidates are scored in blocks of ``B`` with ``B * C * M * C <=
    block_elements``, so it never holds the ``N x M x C x C`` joint of a large pool.

    Parameters
    ----------
    candidates:
        Class probabilities of the candidates, shape ``(K, N, C)``.
    targets:
        Class probabilities of the target inputs from the same ``K`` posterior samples in
        the same order, shape ``(K, M, C)``, ``M >= 1``.
    block_elements:
        The most joint-probability entries held at once (at least one candidate's).

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64, in nats, on the inputs' device.

    Raises
    ------
    ValueError
        If the shapes do not fit together or there is no target.

    Examples
    --------
    >>> agree = torch.tensor([[[0.7, 0.3]], [[0.7, 0.3]]])
    >>> float(epig(agree, agree))
    0.0
    >>> one_hot = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    >>> round(float(epig(one_hot, one_hot)), 4)  # log 2: the label settles the target's
    0.6931
    """
    _check_samples(candidates)
    _check_samples(targets)
    n_samples, n, n_classes = candidates.shape
    if targets.shape[0] != n_samples or targets.shape[2] != n_classes or targets.shape[1] < 1:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not fit candidates of shape "
            f"{tuple(candidates.shape)}: expected (K={n_samples}, M >= 1, C={n_classes})"
        )
    n_targets = targets.shape[1]
    # float64: the score is a small difference of entropies of the order of log C.
    target_rows = _normalised(targets).reshape(n_samples, n_targets * n_classes)
    block = max(1, block_elements // (n_classes * n_targets * n_classes))
    scores = torch.empty(n, dtype=torch.float64, device=candidates.device)
    for start in range(0, n, block):
        part = _normalised(candidates[:, start:start + block])
        width = part.shape[1]
        # (B*C, M*C): entry [(b, y), (m, y*)] = sum_k p_k(y | x_b) p_k(y* | x*_m), one matmul.
        joint = (part.reshape(n_samples, width * n_classes).T @ target_rows) / n_samples
        joint = joint.view(width, n_classes, n_targets, n_classes)
        h_joint = _entropy_sum(joint, dims=(1, 3))
        h_candidate = _entropy_sum(joint.sum(dim=3), dims=(1,))
        h_target = _entropy_sum(joint.sum(dim=1), dims=(2,))
        scores[start:start + width] = (h_candidate + h_target - h_joint).mean(dim=1)
    return scores.clamp_min(0.0)


def epig_from_batches(batches: Iterable[torch.Tensor], n_targets: int) -> torch.Tensor:
    """:func:`epig` over a stream whose first ``n_targets`` examples are the targets.

    One pass of a posterior estimate over ``targets + candidates`` gives both from the same
    samples (the same dropout masks or ensemble members); the targets are kept, and each
    later batch of candidates is scored as it arrives, so memory stays ``O(K * (M + B) * C)``.

    Parameters
    ----------
    batches:
        Class probabilities ``(K, B, C)``, batch after batch, the targets first.
    n_targets:
        ``M``, how many of the first examples are targets (at least 1).

    Returns
    -------
    torch.Tensor
        The EPIG of every later example, shape ``(N,)``, float64.

    Raises
    ------
    ValueError
        If the stream holds fewer than ``n_targets`` examples.

    Examples
    --------
    >>> samples = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    >>> epig_from_batches([samples[:, :1], samples[:, 1:]], n_targets=1).tolist() == (
    ...     epig(samples[:, 1:], samples[:, :1]).tolist())
    True
    """
    if n_targets < 1:
        raise ValueError(f"n_targets must be at least 1, got {n_targets}")
    kept: list[torch.Tensor] = []
    targets: torch.Tensor | None = None
    scores: list[torch.Tensor] = []
    for samples in batches:
        if targets is None:
            missing = n_targets - sum(part.shape[1] for part in kept)
            kept.append(samples[:, :missing])
            samples = samples[:, missing:]
            if samples.shape[1] == 0 and missing > kept[-1].shape[1]:
                continue
            targets = torch.cat(kept, dim=1)
        if samples.shape[1]:
            scores.append(epig(samples, targets))
    if targets is None:
        got = sum(part.shape[1] for part in kept)
        raise ValueError(f"expected {n_targets} target examples first, the stream had {got}")
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)


def _normalised(probs: torch.Tensor) -> torch.Tensor:
    """``probs`` in float64, each distribution rescaled to sum to exactly 1: a float32
    softmax is off by about 1e-7, which would otherwise leak into the score as such."""
    probs = probs.double()
    # A row of zeros (no distribution at all) stays zero instead of becoming NaN.
    return probs / probs.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def _entropy_sum(probs: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``-sum p log p`` over ``dims`` with ``0 log 0 = 0`` (no NaN from exact zeros)."""
    return torch.special.entr(probs).sum(dim=dims)
