"""Semi-supervised training: the network also learns from the unlabeled pool's inputs, with
confidence-thresholded pseudo-labels.

FixMatch (Sohn et al., 2020): for each unlabeled image, the network's class on a weakly
augmented view (a shift) is its pseudo-label when the network gives it a probability of at
least ``threshold``; the network is then trained to give that class to a strongly augmented
view (:func:`~deepal.nets.augment.strong_augment`). Inputs that are not images are
pseudo-labelled on themselves, with no augmentation (Lee, 2013). The unlabeled loss is
:func:`pseudo_label_loss`, the mean over all ``mu * B`` unlabeled examples of a batch (those
below the threshold count as zero), weighted by ``weight`` and added to the labeled batch's
cross-entropy.

It is a training option, not a strategy: with the parameter ``semi_supervised`` set, every
:meth:`deepal.Net.train` adds a :class:`SemiSupervisedHook` that draws unlabeled batches from
``net.unlabeled_inputs()``, which a :class:`~deepal.Strategy` sets to its pool's unlabeled
examples (inputs only: the hook never sees a label of the pool). Each training step reads
``mu * B`` inputs through the data's handler, so the pool is never copied whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.config.base import validated
from deepal.config.training import SemiSupervised
from deepal.data.batches import iter_batches
from deepal.errors import DeepALError
from deepal.nets.augment import strong_augment, weak_augment
from deepal.nets.hooks import TrainingHook, TrainStep, cycle_batches

__all__ = [
    "PoolInputs", "SemiSupervised", "SemiSupervisedHook", "pseudo_label_loss", "pseudo_labels",
    "UnlabeledPool", "epoch_examples", "semi_supervised_hook",
]


def pseudo_labels(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The pseudo-label of each row of ``logits`` and whether it is confident enough.

    Parameters
    ----------
    logits:
        Class scores ``(N, C)`` (of the weak views, or of the examples themselves); they are
        detached: a pseudo-label is a target, never a path for gradients.
    threshold:
        The smallest softmax probability of the predicted class that is kept.

    Returns
    -------
    labels : torch.Tensor
        ``(N,)`` long: the most probable class of each row.
    mask : torch.Tensor
        ``(N,)`` bool: whether that class's probability is at least ``threshold``.

    Examples
    --------
    >>> import torch
    >>> labels, mask = pseudo_labels(torch.tensor([[4.0, 0.0], [0.0, 0.1]]), 0.9)
    >>> labels.tolist(), mask.tolist()
    ([0, 1], [True, False])
    """
    probabilities = F.softmax(logits.detach().float(), dim=1)
    confidence, labels = probabilities.max(dim=1)
    return labels, confidence >= threshold


def pseudo_label_loss(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """FixMatch's unlabeled loss: the cross-entropy of ``logits`` against ``labels`` where
    ``mask`` holds, summed and divided by the number of rows (all of them, masked or not, as
    the paper's ``1 / (mu B)``), so that it grows as more pseudo-labels are confident.

    Parameters
    ----------
    logits:
        Class scores ``(N, C)`` (of the strong views), attached to the graph.
    labels, mask:
        The pseudo-labels and their mask from :func:`pseudo_labels`.

    Returns
    -------
    torch.Tensor
        A scalar; zero for no rows.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0], [5.0, 0.0]])
    >>> loss = pseudo_label_loss(logits, torch.tensor([0, 1]), torch.tensor([True, False]))
    >>> round(float(loss), 4)  # log(2) / 2: one of two rows counts
    0.3466
    """
    if len(logits) == 0:
        return logits.sum() * 0.0
    losses = F.cross_entropy(logits, labels, reduction="none")
    return (losses * mask.to(losses.dtype)).sum() / len(logits)


def epoch_examples(n_labeled: int, batch_size: int, steps_per_epoch: int) -> int:
    """Examples one semi-supervised epoch draws from the labeled set: enough for
    ``steps_per_epoch`` batches while the labels are fewer, else one pass.

    Parameters
    ----------
    n_labeled:
        Labeled examples.
    batch_size:
        Labeled examples per step.
    steps_per_epoch:
        The fewest optimiser steps of an epoch.

    Returns
    -------
    int
        The ``epoch_samples`` of the epoch (see :func:`deepal.data.batches.epoch_order`).

    Examples
    --------
    >>> epoch_examples(100, 64, 100), epoch_examples(10000, 64, 100)
    (6400, 10000)
    """
    return max(n_labeled, batch_size * steps_per_epoch)


class PoolInputs(Dataset):  # type: ignore[type-arg]
    """The inputs of pool examples ``idxs``, read batch by batch through the data's handler
    (never the pool's labels, never the whole pool at once).

    Parameters
    ----------
    data:
        The pool (a :class:`~deepal.Data`).
    idxs:
        The pool indices to read.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> data = deepal.Data(np.zeros((5, 3), dtype="float32"), np.arange(5) % 2)
    >>> len(PoolInputs(data, np.array([1, 3])))
    2
    """

    def __init__(self, data: Any, idxs: np.ndarray) -> None:
        self.data, self.idxs = data, np.asarray(idxs, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.idxs)

    def __getitem__(self, position: int) -> Any:
        return self.data.get_inputs(self.idxs[position : position + 1])[0]

    def get_batch(self, positions: torch.Tensor) -> tuple[Any, ...]:
        """The collated batch of the examples at ``positions``."""
        chosen = self.data.get_inputs(self.idxs[positions.numpy()])
        return next(iter_batches(chosen, len(positions)))


class UnlabeledPool:
    """What a strategy gives its net as ``unlabeled_inputs``: called, the inputs of the
    pool's examples unlabeled at that time (a :class:`PoolInputs`).

    Parameters
    ----------
    data:
        The pool (a :class:`~deepal.Data`).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> data = deepal.Data(np.zeros((5, 3), dtype="float32"), np.arange(5) % 2)
    >>> inputs = UnlabeledPool(data)
    >>> data.label([0, 1])
    >>> len(inputs())
    3
    """

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self) -> PoolInputs:
        return PoolInputs(self.data, np.flatnonzero(~self.data.labeled_idxs))


class SemiSupervisedHook(TrainingHook):
    """Adds the weighted unlabeled loss to every training batch (see the module docstring).

    Parameters
    ----------
    settings:
        The method, threshold, ``mu``, weight and augmentation options.
    unlabeled:
        The unlabeled examples' inputs (items ``(x, ...)``).
    batch_size:
        The labeled batch size ``B``; ``mu * B`` unlabeled inputs are drawn per step.
    generator:
        The CPU generator of the unlabeled batches' order and of the augmentations.

    Attributes
    ----------
    confident, seen:
        How many unlabeled examples had a confident pseudo-label, out of how many drawn, in
        this training.

    Examples
    --------
    :meth:`deepal.Net.train` makes one per training with ``params["semi_supervised"]``; by
    hand, on a pool of 40 vectors:

    >>> import numpy as np
    >>> import torch
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> data = deepal.Data(np.random.default_rng(0).normal(size=(40, 4)).astype("float32"),
    ...                    np.arange(40) % 2)
    >>> first = data.initialize_labels(4, random_state=0)
    >>> hook = SemiSupervisedHook(SemiSupervised(threshold=0.0), UnlabeledPool(data)(),
    ...                           batch_size=2, generator=torch.Generator().manual_seed(0))
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=2), {"n_epoch": 1}, device="cpu")
    >>> net.training_hooks.append(hook)
    >>> net.train(data.get_labeled_data()[1])  # one batch of the 4 labels: one step
    >>> hook.seen, hook.confident  # mu x 2 unlabeled examples; threshold 0 keeps them all
    (14, 14)
    """

    def __init__(self, settings: SemiSupervised, unlabeled: Dataset, batch_size: int,
                 generator: torch.Generator) -> None:
        self.settings, self.generator = settings, generator
        size = settings.mu * batch_size
        self._batches: Iterator[tuple[Any, ...]] | None = (
            cycle_batches(unlabeled, size, generator, full=True) if len(unlabeled) else None  # type: ignore[arg-type]
        )
        self.confident, self.seen = 0, 0

    def extra_loss(self, step: TrainStep) -> torch.Tensor | None:
        if self._batches is None or self.settings.weight == 0:
            return None
        x = next(self._batches)[0].to(step.x.device, non_blocking=True)
        labels, mask, logits = self._targets(step.model, x)
        self.confident += int(mask.sum())
        self.seen += len(mask)
        return self.settings.weight * pseudo_label_loss(logits, labels, mask)

    def _targets(self, model: nn.Module, x: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pseudo-labels, their mask and the logits the loss is taken on."""
        threshold = self.settings.threshold
        if self.settings.method == "fixmatch" and x.dim() == 4:
            flip = self.settings.flip
            weak = weak_augment(x, self.generator, flip=flip)
            strong = strong_augment(x, self.generator, flip=flip)
            # The weak view only sets targets: no graph for it, which saves a third of the
            # step's work (its backward pass) on the CPU.
            with torch.no_grad():
                labels, mask = pseudo_labels(model(weak)[0], threshold)
            return labels, mask, model(strong)[0]
        logits = model(x)[0]
        labels, mask = pseudo_labels(logits, threshold)
        return labels, mask, logits


def semi_supervised_hook(
    params: dict[str, Any], unlabeled_inputs: Callable[[], Dataset] | None,
    generator: torch.Generator,
) -> SemiSupervisedHook | None:
    """The hook of a training with a net's ``params``, or ``None`` without
    ``semi_supervised``; its generator is seeded from ``generator``.

    Parameters
    ----------
    params:
        The net's parameters (checked, with ``train_args``).
    unlabeled_inputs:
        The net's :attr:`~deepal.Net.unlabeled_inputs`.
    generator:
        The training's generator; one seed is drawn from it only when the hook is made.

    Returns
    -------
    SemiSupervisedHook or None
        The hook, over the inputs ``unlabeled_inputs()`` gives now.

    Raises
    ------
    DeepALError
        If semi-supervised training is asked for but the net was given no unlabeled inputs.

    Examples
    --------
    >>> import torch
    >>> semi_supervised_hook({"n_epoch": 1}, None, torch.Generator()) is None
    True
    """
    raw = params.get("semi_supervised")
    if raw is None:
        return None
    if unlabeled_inputs is None:
        raise DeepALError(
            "semi_supervised training needs the unlabeled inputs: train through a Strategy "
            "(strategy.train()), or set net.unlabeled_inputs to a function returning a "
            "dataset of them (e.g. lambda: data.get_unlabeled_data()[1])")
    seed = int(torch.randint(2**62, (), generator=generator).item())
    return SemiSupervisedHook(validated(SemiSupervised, raw, "semi_supervised"),
                              unlabeled_inputs(), params["train_args"]["batch_size"],
                              torch.Generator().manual_seed(seed))
