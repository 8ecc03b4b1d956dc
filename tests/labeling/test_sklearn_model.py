"""A scikit-learn classifier as the model of the active learning loop: strategies that need
only probabilities run with it; those that need a network's embeddings, dropout or gradients
refuse it by name."""

from __future__ import annotations

import numpy as np
import pytest

from deepal import Data
from deepal.errors import DeepALError
from deepal.nets.sklearn_net import PROBABILITY_STRATEGIES, SklearnNet
from deepal.strategies.registry import get_strategy

ensemble = pytest.importorskip("sklearn.ensemble")
datasets = pytest.importorskip("sklearn.datasets")


def digits_pool(n_init: int = 20) -> Data:
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    data = Data(X[:1200], y[:1200], X[1200:], y[1200:])
    rng = np.random.default_rng(0)
    data.label(rng.choice(1200, n_init, replace=False))
    return data


@pytest.mark.parametrize("name", PROBABILITY_STRATEGIES)
def test_probability_strategies_run_the_loop_with_a_forest(name):
    data = digits_pool()
    net = SklearnNet(ensemble.RandomForestClassifier(n_estimators=30, random_state=0))
    strategy = get_strategy(name)(data, net, random_state=0)
    strategy.train()
    first = data.cal_test_acc(strategy.predict(data.get_test_data()))
    for _ in range(4):
        picked = strategy.query(40)
        assert len(set(picked.tolist())) == 40 and not data.labeled_idxs[picked].any()
        strategy.update(picked)
        strategy.train()
    last = data.cal_test_acc(strategy.predict(data.get_test_data()))
    assert data.n_labeled == 180 and last > first


@pytest.mark.parametrize("name", ["KCenterGreedy", "BALDDropout", "KMeansSampling",
                                  "AdversarialBIM"])
def test_strategies_that_need_a_network_refuse_it_by_name(name):
    data = digits_pool()
    strategy = get_strategy(name)(data, SklearnNet(ensemble.RandomForestClassifier(
        n_estimators=5, random_state=0)), random_state=0)
    strategy.train()
    with pytest.raises(DeepALError, match="with SklearnNet use one of RandomSampling"):
        strategy.query(5)


def test_absent_classes_get_probability_zero_and_bad_estimators_are_refused():
    data = digits_pool(n_init=0)
    labeled = np.flatnonzero(np.isin(data.Y_train, [0, 1]))[:10]
    data.label(labeled)
    net = SklearnNet(ensemble.RandomForestClassifier(n_estimators=5, random_state=0))
    net.n_classes = 10
    net.train(data.get_labeled_data()[1])
    probs = net.predict_prob(data.get_test_data())
    assert probs.shape == (len(data.Y_test), 10)
    assert probs[:, 2:].abs().sum() == 0 and np.allclose(probs.sum(1), 1)
    with pytest.raises(DeepALError, match="has no fit and predict_proba"):
        SklearnNet(object())
    with pytest.raises(DeepALError, match="reads no pickle"):
        net.state_dict()
    with pytest.raises(DeepALError, match="not trained yet"):
        SklearnNet(ensemble.RandomForestClassifier()).predict_prob(data.get_test_data())
