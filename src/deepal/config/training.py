"""How a network is trained: a :class:`~deepal.Net`'s parameters in DeepAL's dict form
(:class:`NetParams`) and an experiment's ``[training]`` table (:class:`TrainingSettings`),
with the optimisers they may name and the check of an optimiser's keyword arguments."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Annotated, Any

import torch
from pydantic import AfterValidator, ConfigDict, ValidationInfo, field_validator, model_validator

from deepal.config.base import Settings
from deepal.config.fields import (
    Device,
    Fraction,
    Name,
    NameList,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    one_of,
)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}

#: What early stopping can watch on the validation set.
MONITORS = ("loss", "accuracy")

#: How the unlabeled pool is learned from: FixMatch's weak and strong views of images, or the
#: examples' own predictions as pseudo-labels.
SEMI_SUPERVISED_METHODS = ("fixmatch", "pseudo_label")

Optimizer = Annotated[str, one_of(tuple(OPTIMIZERS), "optimizer")]
Monitor = Annotated[str, one_of(MONITORS, "monitor")]

_KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)

#: Optimiser keywords that must not be negative (all numbers must be finite).
_NON_NEGATIVE = ("weight_decay", "momentum", "dampening", "eps")


def check_optimizer_args(optimizer: str, args: Mapping[str, Any]) -> None:
    """Refuse keywords that ``optimizer`` does not take, values of another type than the
    keyword's default (a number, a flag, a pair of numbers), non-finite numbers, a learning
    rate that is not > 0 and negative decays, each with a :class:`ValueError` naming the
    keyword.

    Examples
    --------
    >>> check_optimizer_args("Adam", {"lr": 1e-3, "betas": [0.9, 0.99]})
    >>> check_optimizer_args("Adam", {"momentum": 0.9})
    Traceback (most recent call last):
    ...
    ValueError: Adam takes no keyword 'momentum': its keywords are lr, betas, eps, ...
    >>> check_optimizer_args("Adam", {"betas": 0.9})
    Traceback (most recent call last):
    ...
    ValueError: betas must be a list of 2 finite numbers, got 0.9
    """
    parameters = inspect.signature(OPTIMIZERS[optimizer]).parameters
    known = [p.name for p in parameters.values() if p.name != "params" and p.kind in _KEYWORDS]
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key, value in args.items():
        if key not in known and not open_ended:
            raise ValueError(f"{optimizer} takes no keyword {key!r}: its keywords are "
                             f"{', '.join(known)}")
        default = parameters[key].default if key in parameters else None
        _check_type(key, value, default)
        _check_value(key, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(key: str, value: Any, default: Any) -> None:
    """``value`` is of the kind ``default`` is: a flag, a number, or a list of as many
    numbers; a keyword whose default is ``None`` takes a flag or nothing."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
    elif isinstance(default, tuple):
        if not (isinstance(value, (list, tuple)) and len(value) == len(default)
                and all(_is_number(v) and math.isfinite(v) for v in value)):
            raise ValueError(f"{key} must be a list of {len(default)} finite numbers, "
                             f"got {value!r}")
    elif _is_number(default) or key == "lr":
        if not _is_number(value):
            raise ValueError(f"{key} must be a number, got {value!r}")
    elif not (value is None or isinstance(value, bool)):
        raise ValueError(f"{key} must be true or false, got {value!r}")


def _check_value(key: str, value: Any) -> None:
    numbers = value if isinstance(value, (list, tuple)) else [value]
    if not all(_finite(number) for number in numbers):
        raise ValueError(f"{key} must be finite, got {value!r}")
    if key == "lr" and not value > 0:
        raise ValueError(f"lr must be a finite number > 0, got {value!r}")
    if key in _NON_NEGATIVE and value < 0:
        raise ValueError(f"{key} must be >= 0, got {value!r}")


def _checked_optimizer_args(cls: type, args: dict[str, Any],
                            info: ValidationInfo) -> dict[str, Any]:
    # The optimiser is validated first (it is declared first); without one (an experiment
    # keeping the data set's optimiser) the args are checked when the net is built.
    optimizer = info.data.get("optimizer")
    if optimizer is not None:
        check_optimizer_args(optimizer, args)
    return args


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a probability in [0, 1]")
    return value


def _check_warm_start(warm_start: bool, warm_start_epochs: int | None) -> None:
    if warm_start_epochs is not None and not warm_start:
        raise ValueError("has warm_start_epochs without warm_start: set warm_start = true, or "
                         "remove warm_start_epochs to retrain from scratch every round")


class SemiSupervised(Settings):
    """Training on the unlabeled pool too, with confidence-thresholded pseudo-labels (see
    :mod:`deepal.nets.semi_supervised`): a :class:`~deepal.Net`'s ``semi_supervised``
    parameter and ``[training.semi_supervised]`` in an experiment.

    Attributes
    ----------
    method:
        ``"fixmatch"`` (Sohn et al., 2020): the pseudo-label of an unlabeled image is the
        network's class on a weakly augmented view and the loss is that of a strongly
        augmented view; inputs that are not images ``(N, C, H, W)`` are pseudo-labelled as
        with ``"pseudo_label"``. ``"pseudo_label"``: the network's class on the example itself
        is its pseudo-label, with no augmentation (Lee, 2013).
    threshold:
        Only pseudo-labels whose probability is at least this count (FixMatch's ``tau``).
    mu:
        Unlabeled examples per labeled example in a batch (FixMatch's ``mu``).
    weight:
        The weight of the unlabeled loss (FixMatch's ``lambda_u``).
    steps_per_epoch:
        An epoch makes at least this many optimiser steps, cycling over the labeled set
        (one plain pass when it has more batches), since a few labels make too few.
    flip:
        Whether the augmented views may be mirrored left-right (off: a mirrored digit is
        another symbol).

    Examples
    --------
    >>> SemiSupervised(threshold=0.9).mu
    7
    """

    method: Annotated[str, one_of(SEMI_SUPERVISED_METHODS, "semi-supervised method")] = \
        "fixmatch"
    threshold: Annotated[float, AfterValidator(_probability)] = 0.95
    mu: PositiveInt = 7
    weight: NonNegativeFloat = 1.0
    steps_per_epoch: PositiveInt = 100
    flip: bool = False


class LoaderArgs(Settings):
    """``train_args`` / ``test_args``: examples per batch. DeepAL's DataLoader options (such
    as ``num_workers``) are accepted and ignored: tensors are sliced in this process."""

    model_config = ConfigDict(extra="allow")

    batch_size: PositiveInt


class NetParams(Settings):
    """A :class:`~deepal.Net`'s parameters (see its documentation for each key), after
    merging with the defaults.

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(NetParams, {"n_epoch": 2, "train_args": {"batch_size": 8},
    ...                       "test_args": {"batch_size": 100}, "optimizer": "Adam",
    ...                       "optimizer_args": {"lr": 1e-3}}).optimizer
    'Adam'
    """

    n_epoch: NonNegativeInt
    train_args: LoaderArgs
    test_args: LoaderArgs
    optimizer: Optimizer
    optimizer_args: dict[str, Any]
    warm_start: bool = False
    warm_start_epochs: PositiveInt | None = None
    patience: PositiveInt = 3
    monitor: Monitor = "loss"
    epoch_samples: PositiveInt | None = None
    weight_decay_per_example: NonNegativeFloat | None = None
    weight_decay_params: NameList | None = None
    semi_supervised: SemiSupervised | None = None

    _optimizer_args = field_validator("optimizer_args")(_checked_optimizer_args)

    @model_validator(mode="after")
    def _consistent(self) -> NetParams:
        _check_warm_start(self.warm_start, self.warm_start_epochs)
        return self


class TrainingSettings(Settings):
    """How the network is trained at every round (``None``: the data set's default).

    Attributes
    ----------
    net:
        Architecture name or ``package.module:ClassName``.
    epochs, optimizer, lr, batch_size:
        Training parameters; ``optimizer_args`` adds optimiser keywords (e.g. ``momentum``).
    test_batch_size:
        Examples per inference and scoring batch: larger is faster and takes more memory.
    warm_start:
        Continue from the previous round's weights instead of retraining from scratch.
    warm_start_epochs:
        With ``warm_start``, the epochs of every training that continues from earlier
        weights; the first training, from scratch, makes ``epochs``. ``None``: ``epochs``
        every time.
    validation_fraction:
        Hold out this fraction of the labeled set for early stopping (0: no validation, train
        all ``epochs``).
    validation_size:
        Instead, a fixed validation set of this many pool examples, drawn once per run from
        the run's seed before the initial labels: it never enters the labeled set, is never
        queried, does not count as labels, and early-stops every round's training (as in Gal
        et al., 2017 and Kirsch et al., 2019). 0: none.
    weight_decay_per_example:
        ``c``: train with weight decay ``c / N`` for ``N`` labeled examples (Gal et al., 2017
        scale the prior's weight decay with the training set); ``None``: fixed.
    weight_decay_params:
        Names or name prefixes of the network's parameters that weight decay applies to (e.g.
        ``["fc1.weight"]``, a Keras regulariser on one layer); ``None``: all of them.
    patience:
        Stop after this many epochs without a better validation score, keeping the best
        weights.
    monitor:
        The validation score early stopping watches: ``"loss"`` (lower is better) or
        ``"accuracy"`` (higher is better, as Kirsch et al., 2019).
    epoch_samples:
        An epoch trains on this many examples drawn from the labeled set (each about
        ``epoch_samples / N`` times) while they outnumber its ``N`` labels, so a few labels
        still make many optimiser steps (Kirsch et al., 2019 use 5,056); ``None``: one pass.
    semi_supervised:
        Train on the unlabeled pool too (:class:`SemiSupervised`, the table
        ``[training.semi_supervised]``); ``None``: on the labels alone.
    device:
        ``cpu``, ``cuda``...; default CUDA when available.

    Examples
    --------
    >>> TrainingSettings(epochs=5, lr=0.01).optimizer is None
    True
    """

    net: Name | None = None
    epochs: PositiveInt | None = None
    optimizer: Optimizer | None = None
    lr: PositiveFloat | None = None
    optimizer_args: dict[str, Any] = {}
    batch_size: PositiveInt | None = None
    test_batch_size: PositiveInt | None = None
    warm_start: bool = False
    warm_start_epochs: PositiveInt | None = None
    validation_fraction: Fraction = 0.0
    validation_size: NonNegativeInt = 0
    weight_decay_per_example: NonNegativeFloat | None = None
    weight_decay_params: NameList | None = None
    patience: PositiveInt = 3
    monitor: Monitor = "loss"
    epoch_samples: PositiveInt | None = None
    semi_supervised: SemiSupervised | None = None
    device: Device | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSettings:
        if self.validation_fraction and self.validation_size:
            raise ValueError("has both validation_fraction and validation_size: keep one (a "
                             "fraction of the labels, or a fixed set drawn from the pool)")
        _check_warm_start(self.warm_start, self.warm_start_epochs)
        return self

    _optimizer_args = field_validator("optimizer_args")(_checked_optimizer_args)
