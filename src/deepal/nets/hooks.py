"""Training hooks: how a strategy adds its own networks and losses to :meth:`Net.train`.

Some strategies learn something alongside the classifier: a loss-prediction module trained
jointly with it (LossPrediction), a critic that aligns labeled and unlabeled features (WAAL),
a VAE and a discriminator (VAAL). They do not special-case the loop: each registers a
:class:`TrainingHook` on its net (``net.training_hook = hook``), and :meth:`Net.train` calls it
at fixed points. A net without a hook trains exactly as before, with no per-batch overhead
beyond one ``is None`` test.

The order of calls in one :meth:`Net.train`::

    extra = hook.on_train_start(net, model, data)     # extra parameters for net's optimiser
    for epoch in range(n_epoch):
        for each batch (x, y):
            logits, embedding = model(x)
            loss = cross_entropy(logits, y)
            loss = loss + hook.extra_loss(step)       # when it returns a tensor
            loss.backward(); optimizer.step()
            hook.after_step(step)
    hook.on_train_end(net, model, data)

A hook that needs the unlabeled pool (VAAL, WAAL) holds it itself (a strategy has
``self.dataset``) and draws batches with :func:`cycle_batches`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches

if TYPE_CHECKING:
    from deepal.nets.net import Net


@dataclass
class TrainStep:
    """What a hook sees of one training batch.

    Attributes
    ----------
    epoch, n_epoch:
        The current epoch (from 0) and the number of epochs of this training.
    model:
        The module being trained (in train mode).
    x, y:
        The batch's inputs and labels, on the net's device.
    logits, embedding:
        The model's outputs on ``x`` (still attached to the graph).
    loss:
        The mean cross-entropy of the batch (before any extra loss).
    """

    epoch: int
    n_epoch: int
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    embedding: torch.Tensor
    loss: torch.Tensor


class TrainingHook:
    """Base class of training hooks; every method is optional (the defaults do nothing).

    Subclass it and set an instance as ``net.training_hook``. See the module docstring for
    the order of the calls."""

    def on_train_start(self, net: Net, model: nn.Module, data: Dataset) -> Iterable[nn.Parameter]:
        """Called with the fresh module before the optimiser is built.

        Returns
        -------
        Iterable of parameters
            Extra parameters (of the hook's own modules) optimised by the net's optimiser
            jointly with the model; empty by default. A hook may instead keep its own
            optimiser and step it in :meth:`after_step`.
        """
        return ()

    def extra_loss(self, step: TrainStep) -> torch.Tensor | None:
        """A term added to the batch's cross-entropy before ``backward``, or ``None``."""
        return None

    def after_step(self, step: TrainStep) -> None:
        """Called after the optimiser step of every batch."""

    def on_train_end(self, net: Net, model: nn.Module, data: Dataset) -> None:
        """Called after the last epoch, before the model is put in eval mode."""


def cycle_batches(
    dataset: Dataset, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[Any, ...]]:
    """Shuffled batches of ``dataset`` for ever (a new order at every pass), for hooks that
    pair each labeled batch with a batch of the unlabeled pool.

    Raises
    ------
    ValueError
        If ``dataset`` is empty.
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("cannot cycle over an empty dataset")
    while True:
        yield from iter_batches(dataset, batch_size, shuffle=True, generator=generator)
