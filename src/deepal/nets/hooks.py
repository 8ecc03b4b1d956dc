"""Training hooks: how a strategy adds its own networks and losses to :meth:`Net.train`.

Some strategies learn something alongside the classifier: a loss-prediction module trained
jointly with it (LossPrediction), a critic that aligns labeled and unlabeled features (WAAL),
a VAE and a discriminator (VAAL). They do not special-case the loop: each appends a
:class:`TrainingHook` it owns to its net's list (``net.training_hooks.append(hook)``), and
:meth:`Net.train` calls every hook of the list, in order, at fixed points. A net without
hooks trains exactly as before, with no per-batch overhead beyond one emptiness test.

The order of calls in one :meth:`Net.train`::

    extra = [*hook.on_train_start(net, model, data) for each hook]   # more parameters
    for epoch in range(n_epoch):
        for each batch (x, y):
            logits, embedding = model(x)
            loss = cross_entropy(logits, y)
            loss = loss + hook.extra_loss(step)       # for each hook returning a tensor
            loss.backward(); optimizer.step()
            hook.after_step(step)                     # for each hook
    hook.on_train_end(net, model, data)               # for each hook

A hook that needs the unlabeled pool (VAAL, WAAL) is given it by its strategy and draws
batches with :func:`cycle_batches`. What a hook learned (its modules' weights, anything it
carries between trainings) is its :meth:`TrainingHook.state_dict`, which its strategy saves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches
from deepal.state import check_keys


class HookedNet(Protocol):
    """What a hook sees of the net that calls it (:class:`deepal.Net` is one)."""

    device: torch.device
    params: dict[str, Any]
    clf: nn.Module | None


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

    Subclass it and append an instance to ``net.training_hooks``. See the module docstring
    for the order of the calls.

    Examples
    --------
    A hook that pulls the embeddings towards the origin::

        class EmbeddingPenalty(TrainingHook):
            def extra_loss(self, step):
                return 1e-3 * step.embedding.pow(2).mean()

        net.training_hooks.append(EmbeddingPenalty())
    """

    def on_train_start(
        self, net: HookedNet, model: nn.Module, data: Dataset
    ) -> Iterable[nn.Parameter]:
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

    def on_train_end(self, net: HookedNet, model: nn.Module, data: Dataset) -> None:
        """Called after the last epoch, before the model is put in eval mode."""

    def state_dict(self) -> dict[str, Any]:
        """What the hook learned and carries to the next query or training, as tensors and
        plain values (see :mod:`deepal.state`); empty by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, after the net's own state (a hook's modules are
        rebuilt on the net's device).

        Raises
        ------
        StateError
            If the entries of ``state`` are not those of :meth:`state_dict`.
        """
        check_keys(state, self.state_dict(), type(self).__name__)


def cycle_batches(
    dataset: Dataset, batch_size: int, generator: torch.Generator | None = None,
    full: bool = False,
) -> Iterator[tuple[Any, ...]]:
    """Shuffled batches of ``dataset`` for ever (a new order at every pass), for hooks that
    pair each labeled batch with a batch of the unlabeled pool.

    With ``full``, every batch has ``batch_size`` examples (or the whole dataset, when it is
    smaller): each pass leaves out its last examples rather than end on a smaller batch (one
    example would break BatchNorm).

    Raises
    ------
    ValueError
        If ``dataset`` is empty.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("cannot cycle over an empty dataset")
    if not full:
        while True:
            yield from iter_batches(dataset, batch_size, shuffle=True, generator=generator)
    size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        yield from iter_batches(dataset, size, order=order[: n - n % size])
