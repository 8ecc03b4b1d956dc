"""Losses and scores of the learning-based strategies (LossPrediction, VAAL, WAAL, CEAL).

Pure functions on tensors; the networks they train live in :mod:`deepal.nets.auxiliary`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from deepal.scores.uncertainty import entropy


def loss_ranking_loss(
    predicted: torch.Tensor, target: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """The margin ranking loss of *Learning Loss for Active Learning* (Yoo & Kweon, 2019).

    The batch is split into pairs (first half against second half, an odd last example is
    dropped); for a pair ``(i, j)`` the loss is
    ``max(0, -sign(l_i - l_j) * (lhat_i - lhat_j) + margin)``: the predicted losses must be
    ordered like the true ones, by at least ``margin``. Only the ordering is learned, not the
    scale of the loss.

    Parameters
    ----------
    predicted:
        Predicted losses ``lhat``, shape ``(B,)``.
    target:
        True per-example losses ``l``, shape ``(B,)`` (detached: no gradient flows into them).
    margin:
        The margin ``xi`` (1 in the paper).

    Returns
    -------
    torch.Tensor
        The mean over the ``B // 2`` pairs (0 when ``B < 2``).
    """
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    target = target.detach()
    diff_pred = predicted[:half] - predicted[half : 2 * half]
    sign = torch.sign(target[:half] - target[half : 2 * half])
    return F.relu(-sign * diff_pred + margin).mean()


def vae_loss(
    x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    beta: float = 1.0,
) -> torch.Tensor:
    """Mean squared reconstruction error plus ``beta`` times the KL divergence of the
    Gaussian posterior ``N(mu, exp(logvar))`` from ``N(0, I)``, both averaged over the batch.

    Parameters
    ----------
    x, recon:
        Inputs and reconstructions, flattened to ``(B, D)``.
    mu, logvar:
        The encoder's posterior mean and log-variance, ``(B, Z)``.
    """
    reconstruction = F.mse_loss(recon, x, reduction="none").sum(dim=1).mean()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()
    return reconstruction + beta * kl


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad critic(z)|| - 1)^2]`` at random interpolates ``z`` of
    ``a`` and ``b`` (paired row by row; the longer one is cut to the shorter)."""
    n = min(len(a), len(b))
    t = torch.rand(n, *([1] * (a.dim() - 1)), device=a.device)
    z = (t * a[:n].detach() + (1 - t) * b[:n].detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(z).sum(), z, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def waal_uncertainty(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """WAAL's uncertainty (Shui et al., 2020): minus the mean of the L1 and L2 norms of
    ``log p``, two upper bounds of the worst-case cross-entropy ``max_y -log p_y``.

    A confident prediction has very negative log-probabilities for the other classes, so
    large norms; the uniform prediction has the smallest. The sign is flipped so that, as
    everywhere in :mod:`deepal.scores`, higher means more informative.

    Parameters
    ----------
    probs:
        Class probabilities, ``(N, C)``; clamped at ``eps`` before the log.

    Returns
    -------
    torch.Tensor
        ``(N,)``, always negative; ``-(C + sqrt(C)) log(C) / 2`` at the uniform prediction.
    """
    log_p = probs.clamp_min(eps).log()
    return -0.5 * (log_p.norm(p=1, dim=1) + log_p.norm(p=2, dim=1))


def confident_pseudo_labels(
    probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """CEAL's high-confidence samples (Wang et al., 2016): the positions whose predictive
    entropy is strictly below ``threshold``, and their predicted classes.

    Returns
    -------
    (positions, labels):
        Long tensors of the same length.
    """
    keep = torch.nonzero(entropy(probs) < threshold).flatten()
    return keep, probs[keep].argmax(dim=1)
