"""Net options used by experiments: early stopping on a validation set, warm start."""

from __future__ import annotations

import numpy as np
import torch

import deepal

from conftest import TinyNet, blobs


def _data(n: int, seed: int, shuffle_labels: bool = False) -> torch.utils.data.Dataset:
    x, y = blobs(n, seed)
    if shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    return deepal.TensorHandler(x, y)


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights():
    torch.manual_seed(0)
    net = deepal.Net(TinyNet, {"n_epoch": 300, "patience": 2, "optimizer": "Adam",
                               "optimizer_args": {"lr": 0.05}}, device="cpu")
    losses: list[float] = []
    measure = net._loss

    def recording(data):
        losses.append(measure(data))
        return losses[-1]

    net._loss = recording  # type: ignore[method-assign]
    val = _data(60, 5, shuffle_labels=True)  # noise labels: the loss soon stops improving
    net.train(_data(60, 4), val_data=val)
    best = int(np.argmin(losses))
    assert net.epochs_trained == len(losses) == best + 1 + 2 < 300
    assert abs(measure(val) - losses[best]) < 1e-6


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
