"""The Strategy contract: checked queries, updates, custom strategies, the registry."""

from __future__ import annotations

import numpy as np
import pytest

import deepal
from deepal import Data, Net, RandomSampling, Strategy, get_strategy
from deepal.errors import DeepALError, PoolExhaustedError, UnknownNameError


class SmallestMaxProb(Strategy):
    """The guide's custom strategy: least confident first, in a few lines."""

    def query(self, n):
        idxs, data = self.candidates()
        confidence = self.predict_prob(data).max(dim=1).values
        return idxs[confidence.argsort()[:n].numpy()]


class Broken(Strategy):
    needs_model = False

    def __init__(self, dataset, net, answer):
        super().__init__(dataset, net)
        self.answer = answer

    def query(self, n):
        return self.answer(self)


def test_a_custom_strategy_fits_in_a_few_lines(pool: Data, tiny_net: Net):
    strategy = SmallestMaxProb(pool, tiny_net)
    strategy.train()
    picked = strategy.query(5)
    assert len(set(picked.tolist())) == 5 and not pool.labeled_idxs[picked].any()
    strategy.update(picked)
    assert pool.labeled_idxs[picked].all() and pool.n_labeled == 15


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda s: np.array([0, 1]), "returned 2 indices for n=3"),
        (lambda s: np.flatnonzero(~s.dataset.labeled_idxs)[[0, 0, 1]], "more than once"),
        (lambda s: np.flatnonzero(s.dataset.labeled_idxs)[:3], "already labeled"),
        (lambda s: np.array([0, 1, 10_000]), "outside the pool"),
        (lambda s: np.array([0.0, 1.0, 2.0]), "not pool indices"),
    ],
)
def test_queries_that_break_the_contract_are_caught(pool: Data, tiny_net: Net, answer, message):
    with pytest.raises(DeepALError, match=message):
        Broken(pool, tiny_net, answer).query(3)


def test_n_is_validated_before_the_strategy_runs(pool: Data, tiny_net: Net):
    strategy = RandomSampling(pool, tiny_net)
    with pytest.raises(PoolExhaustedError, match="n=111 exceeds the 110 unlabeled examples left"):
        strategy.query(111)
    with pytest.raises(DeepALError, match=">= 0"):
        strategy.query(-1)
    with pytest.raises(DeepALError, match="integer"):
        strategy.query(2.5)
    assert strategy.query(0).tolist() == []
    assert len(strategy.query(110)) == 110


def test_a_model_based_strategy_without_training_says_what_to_do(pool: Data, tiny_net: Net):
    with pytest.raises(DeepALError, match="needs a trained network"):
        SmallestMaxProb(pool, tiny_net).query(3)


def test_random_sampling_needs_no_model_and_is_seeded(unknown_pool: Data, tiny_net: Net):
    first = RandomSampling(unknown_pool, tiny_net, random_state=4).query(10)
    second = RandomSampling(unknown_pool, tiny_net, random_state=4).query(10)
    assert (first == second).all()
    np.random.seed(11)
    third = RandomSampling(unknown_pool, tiny_net).query(10)
    np.random.seed(11)
    assert (RandomSampling(unknown_pool, tiny_net).query(10) == third).all()


def test_update_on_a_pool_without_labels_takes_the_given_labels(
    unknown_pool: Data, tiny_net: Net
):
    strategy = SmallestMaxProb(unknown_pool, tiny_net)
    strategy.train()
    picked = strategy.query(4)
    with pytest.raises(deepal.errors.LabelsUnavailableError):
        strategy.update(picked)
    strategy.update(picked, labels=[0, 1, 2, 0])
    assert unknown_pool.Y_train[picked].tolist() == [0, 1, 2, 0]
    strategy.update(picked[:2], neg=True)
    assert not unknown_pool.labeled_idxs[picked[:2]].any()


def test_registry_knows_every_paper_strategy_and_user_classes():
    assert get_strategy("randomsampling") is RandomSampling
    assert get_strategy("test_strategy_base:SmallestMaxProb") is SmallestMaxProb
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_strategy("Oracle")
    with pytest.raises(UnknownNameError, match="not a subclass"):
        get_strategy("numpy:array")
    assert deepal.RandomSampling is RandomSampling


def _depth(cls: type) -> int:
    """The classes on the longest inheritance chain from ``cls`` to Strategy, both included
    (bases that are not strategies, such as mixins, are not on a chain)."""
    if cls is Strategy:
        return 1
    return 1 + max(_depth(base) for base in cls.__bases__ if issubclass(base, Strategy))


@pytest.mark.parametrize("name", list(deepal.STRATEGIES))
def test_every_registered_strategy_is_at_most_three_classes_deep(name: str):
    assert _depth(deepal.get_strategy(name)) <= 3


def test_the_depth_counts_every_class_on_the_chain():
    class Middle(Strategy):
        pass

    class Deep(Middle):
        pass

    assert (_depth(Strategy), _depth(Middle), _depth(Deep), _depth(type("D", (Deep,), {}))) == (
        1, 2, 3, 4)
