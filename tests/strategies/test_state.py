"""Every strategy's ``state_dict()`` is plain data that ``torch.load(..., weights_only=True)``
reads back, and a fresh strategy that loads it continues exactly as the saved one."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch

import deepal
from deepal.errors import DeepALError
from deepal.state import PLAIN, StateError, to_state
from deepal.strategies.base import Strategy

from conftest import TinyNet, blobs

#: Options that keep each strategy small and fast on the toy pool.
OPTIONS: dict[str, dict[str, Any]] = {
    "VAAL": {"n_steps": 20, "batch_size": 16, "hidden": 16, "latent_dim": 4},
    "BatchBALD": {"n_drop": 6, "n_configurations": 50},
    "AdversarialBIM": {"max_iter": 5},
    "AdversarialDeepFool": {"max_iter": 5},
    "CEAL": {"delta": 0.5},
}
#: A second configuration for the strategies whose state depends on an option.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("MarginSamplingDropout", {"posterior": "ensemble", "n_members": 2}),
    ("BALDDropout", {"posterior": "consistent_mc_dropout"}),
    ("LossPrediction", {"feature_layers": ["body"]}),
    ("ActiveLearningByLearning", {"strategies": ["BALDDropout", "LossPrediction"]}),
    ("PowerBALD", {"max_candidates": 50}),
]
CASES = [(name, OPTIONS.get(name, {})) for name in deepal.STRATEGIES] + VARIANTS
N_QUERY = 5


def build(name: str, options: dict[str, Any]) -> Strategy:
    x, y = blobs(120, seed=0)
    xt, yt = blobs(40, seed=1)
    data = deepal.Data(x, y, xt, yt)
    data.initialize_labels(10, random_state=0)
    net = deepal.Net(TinyNet, {"n_epoch": 2, "train_args": {"batch_size": 16},
                               "optimizer": "Adam", "optimizer_args": {"lr": 0.01}},
                     device="cpu")
    return deepal.get_strategy(name)(data, net, random_state=0, **options)


def next_round(strategy: Strategy) -> tuple[np.ndarray, torch.Tensor]:
    """The next query, then the predictions on the test set after retraining."""
    picked = strategy.query(N_QUERY)
    strategy.update(picked)
    strategy.train()
    return picked, strategy.predict_prob(strategy.dataset.get_test_data())


def saved(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def only_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(only_plain(v) for v in value)
    return isinstance(value, (torch.Tensor, *PLAIN))


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. an ensemble's stale members
@pytest.mark.parametrize(("name", "options"), CASES, ids=[
    f"{name}-{'-'.join(options) or 'default'}" for name, options in CASES])
def test_a_loaded_strategy_continues_as_the_saved_one(name: str, options: dict[str, Any]):
    torch.manual_seed(0)
    np.random.seed(0)
    original = build(name, options)
    original.train()
    original.update(original.query(N_QUERY))
    original.train()
    state = saved(original.state_dict())
    labeled = original.dataset.labeled_idxs.copy()
    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    expected_picks, expected_probs = next_round(original)

    fresh = build(name, options)
    fresh.dataset.labeled_idxs[:] = labeled
    fresh.load_state_dict(state)
    torch.set_rng_state(torch_rng)
    np.random.set_state(numpy_rng)
    picks, probs = next_round(fresh)

    np.testing.assert_array_equal(picks, expected_picks)
    assert torch.equal(probs, expected_probs)
    assert only_plain(state)


@pytest.mark.parametrize("name", ["EntropySampling", "BALDDropout", "CEAL", "WAAL"])
def test_a_state_holds_only_tensors_and_plain_values(name: str):
    strategy = build(name, OPTIONS.get(name, {}))
    strategy.train()
    strategy.query(N_QUERY)
    assert only_plain(strategy.state_dict())


def test_a_state_cannot_hold_an_object():
    with pytest.raises(StateError, match="a state cannot hold"):
        to_state({"fine": np.arange(3), "nested": [1, {"bad": object()}]})
    with pytest.raises(StateError, match="Python objects"):
        to_state(np.array([object()]))


def test_an_attribute_holding_an_object_is_refused_when_saving():
    strategy = build("CEAL", {})
    strategy.pseudo_labels = [lambda: None]  # type: ignore[assignment]
    with pytest.raises(StateError, match="pseudo_labels"):
        strategy.state_dict()


def test_a_state_of_another_class_is_refused_naming_both():
    state = build("EntropySampling", {}).state_dict()
    with pytest.raises(DeepALError, match="'EntropySampling'.*MarginSampling"):
        build("MarginSampling", {}).load_state_dict(state)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("posterior"), r"missing \['posterior'\]"),
    (lambda s: s.update(extra=1), r"unexpected \['extra'\]"),
    (lambda s: s["net"].pop("epochs_trained"), r"Net: missing \['epochs_trained'\]"),
    (lambda s: s["posterior"].update(posterior="ensemble"), "'ensemble' cannot be loaded"),
])
def test_missing_or_extra_entries_are_named(change: Any, message: str):
    strategy = build("BALDDropout", {})
    strategy.train()
    state = strategy.state_dict()
    change(state)
    with pytest.raises(StateError, match=message):
        build("BALDDropout", {}).load_state_dict(state)


def test_weights_of_another_network_are_refused():
    strategy = build("EntropySampling", {})
    strategy.train()
    state = strategy.state_dict()
    other = build("EntropySampling", {})
    other.net.net = lambda: TinyNet(n_classes=5)
    with pytest.raises(StateError, match="network weights do not fit TinyNet"):
        other.load_state_dict(state)


def test_loading_draws_nothing_from_the_global_generators():
    strategy = build("MarginSamplingDropout", {"posterior": "ensemble", "n_members": 2})
    strategy.train()
    state = strategy.state_dict()
    before = torch.get_rng_state()
    build("MarginSamplingDropout", {"posterior": "ensemble", "n_members": 2}).load_state_dict(state)
    assert torch.equal(torch.get_rng_state(), before)
