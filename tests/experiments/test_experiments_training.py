"""Net options used by experiments: early stopping on a validation set, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepal
from deepal.config import ConfigError
from deepal.experiments.config import parse_config
from deepal.experiments.run import net_params

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


def test_warm_start_epochs_set_the_length_of_continued_trainings():
    net = deepal.Net(TinyNet, {"n_epoch": 3, "warm_start": True, "warm_start_epochs": 1},
                     device="cpu")
    net.train(_data(30, 4))
    assert net.epochs_trained == 3  # the first training starts from scratch: n_epoch
    first = net.clf
    weights = {k: v.clone() for k, v in first.state_dict().items()}
    net.train(_data(30, 4))
    assert net.clf is first and net.epochs_trained == 1
    assert not all(torch.equal(v, first.state_dict()[k]) for k, v in weights.items())


def test_warm_start_epochs_reach_the_hooks_as_the_training_length():
    seen: list[tuple[int, int]] = []

    class Recorder(deepal.nets.hooks.TrainingHook):
        def extra_loss(self, step):
            seen.append((step.epoch, step.n_epoch))
            return None

    net = deepal.Net(TinyNet, {"n_epoch": 2, "warm_start": True, "warm_start_epochs": 1,
                               "train_args": {"batch_size": 30}}, device="cpu")
    net.training_hooks.append(Recorder())
    net.train(_data(30, 4))
    net.train(_data(30, 4))
    assert seen == [(0, 2), (1, 2), (0, 1)]


def test_warm_start_epochs_without_warm_start_are_refused():
    with pytest.raises(deepal.config.ConfigError, match="warm_start_epochs without warm_start"):
        deepal.Net(TinyNet, {"n_epoch": 3, "warm_start_epochs": 1}, device="cpu")
    raw = {"datasets": ["digits"], "strategies": ["RandomSampling"], "seeds": [1],
           "loop": {"n_init_labeled": 40, "n_query": 20, "budget": 80},
           "training": {"epochs": 3, "warm_start_epochs": 1}}
    with pytest.raises(ConfigError, match=r"\[training\].*warm_start_epochs without warm_start"):
        parse_config(raw)
    raw["training"]["warm_start"] = True
    config = parse_config(raw)
    assert net_params(config, "digits")["warm_start_epochs"] == 1
