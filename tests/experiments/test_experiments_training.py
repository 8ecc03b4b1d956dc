"""Net options used by experiments: early stopping on a validation set, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepal

from conftest import TinyNet, blobs


def _data(n: int, seed: int, shuffle_labels: bool = False) -> torch.utils.data.Dataset:
    x, y = blobs(n, seed)
    if shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    return deepal.TensorHandler(x, y)


@pytest.mark.parametrize("monitor", ["loss", "accuracy"])
def test_early_stopping_stops_after_patience_and_keeps_the_best_weights(monitor: str):
    torch.manual_seed(0)
    net = deepal.Net(TinyNet, {"n_epoch": 300, "patience": 2, "optimizer": "Adam",
                               "optimizer_args": {"lr": 0.05}, "monitor": monitor},
                     device="cpu")
    scores: list[float] = []
    measure = net._validation_score

    def recording(data, watched):
        assert watched == monitor
        scores.append(measure(data, watched))
        return scores[-1]

    net._validation_score = recording  # type: ignore[method-assign]
    val = _data(60, 5, shuffle_labels=True)  # noise labels: the score soon stops improving
    net.train(_data(60, 4), val_data=val)
    best = int(np.argmin(scores))  # the first of equal scores: a tie is no improvement
    assert net.epochs_trained == len(scores) == best + 1 + 2 < 300
    assert abs(measure(val, monitor) - scores[best]) < 1e-6
    if monitor == "accuracy":  # minus the share of the 60 validation labels predicted right
        assert all(-1 <= s <= 0 and abs(60 * s - round(60 * s)) < 1e-9 for s in scores)


def test_without_validation_every_epoch_runs():
    net = deepal.Net(TinyNet, {"n_epoch": 4, "patience": 1}, device="cpu")
    net.train(_data(30, 4))
    assert net.epochs_trained == 4


def test_warm_start_continues_from_the_last_module():
    params = {"n_epoch": 0, "warm_start": True}
    net = deepal.Net(TinyNet, params, device="cpu")
    net.train(_data(30, 4))
    first = net.clf
    weights = {k: v.clone() for k, v in first.state_dict().items()}
    net.train(_data(30, 4))
    assert net.clf is first
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in weights.items())
    cold = deepal.Net(TinyNet, {"n_epoch": 0}, device="cpu")
    cold.train(_data(30, 4))
    module = cold.clf
    cold.train(_data(30, 4))
    assert cold.clf is not module
