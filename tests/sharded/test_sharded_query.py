"""ShardedPool.query gives the picks of the strategy's own query (shards in this process)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import deepal
from deepal.errors import DeepALError, PoolExhaustedError
from deepal.sharded.query import ShardedPool, is_sharded

SHARDED = ["LeastConfidence", "MarginSampling", "EntropySampling", "KCenterGreedy",
           "KMeansSampling"]


def trained(name: str, pool: deepal.Data, net: deepal.Net, **options) -> deepal.Strategy:
    strategy = getattr(deepal, name)(pool, net, random_state=4, **options)
    strategy.train()
    return strategy


@pytest.mark.parametrize("name", SHARDED)
@pytest.mark.parametrize("max_candidates", [None, 70])
@pytest.mark.parametrize("n_shards", [1, 3])
def test_sharded_picks_are_the_strategys_own(name, max_candidates, n_shards, pool,
                                             tiny_net):
    strategy = trained(name, pool, tiny_net, max_candidates=max_candidates)
    twin = copy.deepcopy(strategy)
    assert is_sharded(twin)
    with ShardedPool(twin.dataset, twin.net, n_shards) as pool:
        for _ in range(2):  # the second query draws new candidates from the same rng
            np.testing.assert_array_equal(pool.query(twin, 15), strategy.query(15))
    assert pool.shards.messages > 0


def test_k_center_cold_start_is_sharded_exactly(tiny_net, pool):
    strategy = trained("KCenterGreedy", pool, tiny_net)
    strategy.dataset.unlabel(np.flatnonzero(strategy.dataset.labeled_idxs))
    twin = copy.deepcopy(strategy)
    with ShardedPool(twin.dataset, twin.net, 4) as pool:
        np.testing.assert_array_equal(pool.query(twin, 9), strategy.query(9))


def test_strategies_that_cannot_be_sharded_run_their_own_query(pool, tiny_net):
    strategy = trained("BALDDropout", pool, tiny_net, max_candidates=50)
    twin = copy.deepcopy(strategy)
    assert not is_sharded(twin)
    with ShardedPool(twin.dataset, twin.net, 2) as pool:
        torch.manual_seed(0)  # the dropout masks come from torch's global generator
        picked = pool.query(twin, 5)
    torch.manual_seed(0)
    np.testing.assert_array_equal(picked, strategy.query(5))
    assert pool.shards.messages == 0


def test_bad_arguments_are_refused_with_the_fix(pool, tiny_net):
    strategy = trained("MarginSampling", pool, tiny_net)
    with pytest.raises(DeepALError, match="unknown backend 'spark'"):
        ShardedPool(pool, tiny_net, 2, backend="spark")
    with pytest.raises(DeepALError, match="n_shards must be an integer"):
        ShardedPool(pool, tiny_net, 0)
    with ShardedPool(pool, tiny_net, 2) as sharded:
        with pytest.raises(PoolExhaustedError, match="exceeds the 110 unlabeled"):
            sharded.query(strategy, 111)
        other = trained("MarginSampling", copy.deepcopy(pool), tiny_net)
        with pytest.raises(DeepALError, match="must be the ShardedPool's own"):
            sharded.query(other, 3)


class LowestTopTwoSum(deepal.MarginSampling):
    """Scores its samples its own way: the workers' softmax score would be wrong for it."""

    def sample_score(self, samples):
        return -samples.mean(dim=0).topk(2, dim=1).values.sum(dim=1)


def test_a_strategy_with_its_own_score_runs_on_the_driver(pool, tiny_net):
    strategy = LowestTopTwoSum(pool, tiny_net, random_state=0)
    strategy.train()
    assert not is_sharded(strategy)
    assert not is_sharded(deepal.MarginSampling(pool, tiny_net, acquisition="power"))
    twin = copy.deepcopy(strategy)
    with ShardedPool(twin.dataset, twin.net, 2) as sharded:
        np.testing.assert_array_equal(sharded.query(twin, 6), strategy.query(6))
    assert sharded.shards.messages == 0
