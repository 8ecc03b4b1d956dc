"""How a run trains its strategy at each round: the strategy's own training, or with early
stopping on a validation set (a fixed one drawn from the pool, or a part of the labels)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepal.config.training import TrainingSettings
from deepal.data.pool import _take


def validated_training(strategy: Any) -> Callable[[Any, Any], None] | None:
    """How to train ``strategy`` on a labeled part with early stopping on the rest, or
    ``None`` when it trains its own way (e.g. with pseudo-labels) and cannot."""
    from deepal.strategies.base import Strategy

    estimate = getattr(strategy, "posterior_estimate", None)
    if estimate is not None:  # ensembles and MC dropout train through their estimate
        return lambda fit, val: estimate.train(fit, val_data=val)
    if type(strategy).train is Strategy.train:
        return lambda fit, val: strategy.net.train(fit, val_data=val)
    return None


def make_trainer(strategy: Any, training: TrainingSettings, seed: int,
                 validation: Any | None = None) -> Callable[[], None]:
    """Training for one round: the strategy's own; or on the whole labeled set with early
    stopping on the fixed ``validation`` set (``[training] validation_size``); or, with a
    validation fraction, on the rest of the labeled set with early stopping on a held-out
    part (drawn from the seed and the number of labels, so the same at every repetition).

    Examples
    --------
    >>> train = make_trainer(strategy, config.training, seed=1)  # doctest: +SKIP
    >>> train()                                                  # doctest: +SKIP
    """
    fraction = training.validation_fraction
    train_validated = validated_training(strategy)
    if train_validated is None:
        return strategy.train  # type: ignore[no-any-return]
    if validation is not None:
        return lambda: train_validated(strategy.dataset.get_labeled_data()[1], validation)
    if fraction == 0:
        return strategy.train  # type: ignore[no-any-return]

    def train() -> None:
        data = strategy.dataset
        idxs = np.flatnonzero(data.labeled_idxs)
        n_val = int(round(fraction * len(idxs)))
        if n_val == 0 or n_val == len(idxs):
            strategy.train()
            return
        order = np.random.default_rng([seed, len(idxs)]).permutation(idxs)
        val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
        subset = lambda part: data.handler(_take(data.X_train, part), data.Y_train[part])  # noqa: E731
        train_validated(subset(fit), subset(val))

    return train
