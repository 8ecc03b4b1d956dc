"""Contrastive pretraining (SimCLR, Chen et al., 2020): the NT-Xent loss, the projection head
and the training loop of an encoder on two random views of each unlabeled input.

The encoder is any network of deepal's contract (``forward`` returns ``(logits,
embedding)``): only its embedding is trained, through a projection head that is thrown away
afterwards, so that the same weights can later start a classifier of that architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches
from deepal.errors import DeepALError

#: A random view of a batch: ``view(x, generator)``, same shape as ``x``.
View = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The normalised temperature-scaled cross-entropy of SimCLR.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are two views of one input (a positive
    pair); every other of the ``2N`` rows is a negative. With ``s`` the cosine similarity,
    the loss of view ``a`` whose pair is ``b`` is
    ``-log(exp(s(a, b) / t) / sum_{c != a} exp(s(a, c) / t))``, averaged over the ``2N``
    views.

    Parameters
    ----------
    z1, z2:
        Projections of the two views, shape ``(N, d)`` with ``N >= 2`` (any scale: they
        are normalised here).
    temperature:
        ``t > 0``; a lower one weighs the hardest negatives more.

    Returns
    -------
    torch.Tensor
        The mean loss, a scalar.

    Examples
    --------
    >>> import math
    >>> import torch
    >>> e = torch.eye(2)
    >>> round(float(nt_xent(e, e, temperature=1.0)), 6) == round(math.log(1 + 2 / math.e), 6)
    True
    """
    if z1.shape != z2.shape or z1.dim() != 2 or len(z1) < 2:
        raise DeepALError(f"nt_xent needs two (N, d) batches of the same shape with N >= 2, "
                          f"got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise DeepALError(f"temperature must be > 0, got {temperature}")
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device),
                                float("-inf"))  # a view is not its own negative
    pairs = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, pairs)


class ProjectionHead(nn.Module):
    """SimCLR's projection ``g``: a hidden layer and ReLU, then a linear map to ``out_dim``.

    Parameters
    ----------
    in_dim:
        Size of the encoder's embedding.
    out_dim:
        Size of the projection the loss sees.

    Examples
    --------
    >>> ProjectionHead(50, 16)(torch.zeros(3, 50)).shape
    torch.Size([3, 16])
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(),
                                    nn.Linear(in_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)  # type: ignore[no-any-return]


def contrastive_train(
    encoder: nn.Module,
    dataset: Dataset,
    view: View,
    *,
    epochs: int,
    batch_size: int,
    temperature: float,
    projection_dim: int,
    optimizer_args: dict[str, Any],
    generator: torch.Generator,
    device: torch.device,
) -> list[float]:
    """Train ``encoder`` in place with NT-Xent on two ``view`` s of each input of
    ``dataset`` (its items' first element; labels, if any, are never read).

    Both views of a batch go through the encoder together, so BatchNorm sees one batch. A
    last batch of a single input is skipped (it has no negative). The order of the inputs
    and the views come from ``generator``; dropout and the head's initial weights from
    torch's global generator (the caller seeds it).

    Parameters
    ----------
    encoder:
        A module whose ``forward`` returns ``(logits, embedding)`` and which has
        ``get_embedding_dim()``; already on ``device``.
    dataset:
        The inputs, as a handler's dataset.
    view:
        A random view of a batch (see :data:`View`).
    epochs, batch_size, temperature, projection_dim:
        As in :class:`~deepal.config.pretraining.PretrainingSettings`.
    optimizer_args:
        Keywords of :class:`torch.optim.Adam` (``lr``, ``weight_decay``).
    generator:
        The CPU generator of the order and the views.
    device:
        Where the encoder trains.

    Returns
    -------
    list of float
        The mean loss of each epoch.

    Examples
    --------
    >>> from deepal.data import TensorHandler
    >>> from deepal.nets import MLP
    >>> noisy = lambda x, g: x + 0.1 * torch.randn(x.shape, generator=g)
    >>> losses = contrastive_train(
    ...     MLP(n_features=4), TensorHandler(torch.randn(32, 4)), noisy, epochs=2,
    ...     batch_size=16, temperature=0.5, projection_dim=8, optimizer_args={"lr": 1e-3},
    ...     generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    >>> len(losses)
    2
    """
    head = ProjectionHead(int(encoder.get_embedding_dim()), projection_dim).to(device)  # type: ignore[operator]
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], **optimizer_args)
    encoder.train()
    losses = []
    for _ in range(epochs):
        total, steps = 0.0, 0
        order = torch.randperm(len(dataset), generator=generator)  # type: ignore[arg-type]
        for batch in iter_batches(dataset, batch_size, order=order):
            x = batch[0]
            if len(x) < 2:
                continue
            views = torch.cat([view(x, generator), view(x, generator)]).to(device)
            _, embedding = encoder(views)
            z = head(embedding)
            loss = nt_xent(z[: len(x)], z[len(x):], temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(total / max(steps, 1))
    optimizer.zero_grad(set_to_none=True)
    encoder.eval()
    return losses


@torch.inference_mode()
def embed(encoder: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
          normalize: bool = True) -> np.ndarray:
    """The embedding of every input of ``dataset`` by ``encoder`` in eval mode, float32
    ``(N, d)``; with ``normalize``, each row scaled to unit length.

    Parameters
    ----------
    encoder:
        A module of deepal's contract, on ``device``.
    dataset:
        The inputs (items' first element).
    batch_size:
        Inputs per forward pass.
    device:
        The encoder's device.
    normalize:
        Scale rows to unit length (the geometry the contrastive loss trained).

    Returns
    -------
    numpy.ndarray
        The features, one row per input.

    Examples
    --------
    >>> from deepal.data import TensorHandler
    >>> from deepal.nets import MLP
    >>> embed(MLP(n_features=4), TensorHandler(torch.randn(5, 4)), 2, torch.device("cpu")).shape
    (5, 50)
    """
    encoder.eval()
    parts = [encoder(batch[0].to(device))[1].float() for batch in iter_batches(dataset,
                                                                             batch_size)]
    features = torch.cat(parts)
    if normalize:
        features = F.normalize(features, dim=1)
    return features.cpu().numpy().astype(np.float32, copy=False)
