"""Disagreement scores computed from posterior samples of class probabilities.

Each function takes samples ``(K, N, C)`` (``K`` MC-dropout passes or ensemble members) and
returns one score per example, higher = more informative, like the rest of
:mod:`deepal.scores`. BALD itself is :func:`deepal.scores.uncertainty.bald`.
"""

from __future__ import annotations

import torch


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
