"""Sharded selection gives exactly the single-process picks (no Ray: shards in this process),
also after a shard is rebuilt from its call log."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import deepal.scores.kcenter as kcenter
from deepal.scores.clustering import kmeans_centres, nearest_distinct
from deepal.scores.kcenter import k_center_greedy
from deepal.scores.selection import top_n
from deepal.sharded.group import LocalShards
from deepal.sharded.kcenter import sharded_k_center_greedy
from deepal.sharded.kmeans import sharded_kmeans_centres, sharded_nearest_distinct
from deepal.sharded.merge import merge_top_n, shard_top_n
from deepal.sharded.replay import CallLog
from deepal.sharded.shard import EmbeddingShard
from deepal.sharded.worker import ShardWorker, SyntheticSlice

SPLITS = [[1], [0.5, 0.5], [0.2, 0.0, 0.5, 0.3], [0.1] * 10]


def bounds(n: int, fractions: list[float]) -> list[tuple[int, int]]:
    """Contiguous blocks of ``range(n)`` of the given fractions (some may be empty)."""
    ends = np.round(np.cumsum([0, *fractions]) * n).astype(int)
    ends[-1] = n
    return list(zip(ends[:-1].tolist(), ends[1:].tolist(), strict=True))


def shards_of(x: torch.Tensor, labeled: np.ndarray, fractions: list[float],
              sync_every: int = 256) -> LocalShards:
    return LocalShards([EmbeddingShard(x[a:b], labeled[a:b], a, sync_every=sync_every)
                        for a, b in bounds(len(x), fractions)])


@pytest.mark.parametrize("fractions", SPLITS)
def test_merged_top_n_is_the_single_process_top_n_with_ties_and_nan(fractions):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=300).astype(float)  # many ties
    scores[rng.choice(300, 20, replace=False)] = np.nan
    scores[:3] = [np.inf, -np.inf, np.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in (0, 1, 17, 290, 300):
            tops = [shard_top_n(scores[a:b], n, a) for a, b in bounds(300, fractions)]
            np.testing.assert_array_equal(merge_top_n(tops, n), top_n(scores, n))


def test_merge_warns_of_nan_once_and_refuses_too_many():
    tops = [shard_top_n(np.array([np.nan, 1.0]), 2, 0), shard_top_n(np.array([np.nan]), 2, 2)]
    with pytest.warns(RuntimeWarning, match="2 scores are NaN"):
        assert merge_top_n(tops, 3).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="cannot pick 4 of the 3"):
        merge_top_n(tops, 4)


@pytest.mark.parametrize("fractions", SPLITS)
@pytest.mark.parametrize("integers", [True, False])
@pytest.mark.parametrize("sync_every", [1, 3, 256])  # lazy refreshes and full passes
def test_sharded_k_center_picks_are_k_center_greedys(fractions, integers, sync_every):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 4, (400, 3), generator=gen).float() if integers  # ties everywhere
         else torch.randn(400, 8, generator=gen, dtype=torch.float64))
    labeled = np.zeros(400, dtype=bool)
    labeled[np.random.default_rng(2).choice(400, 30, replace=False)] = True
    expected = k_center_greedy(x, labeled, 60)
    got = sharded_k_center_greedy(shards_of(x, labeled, fractions, sync_every), 60)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fractions", [[0.5, 0.5], [0.2, 0.0, 0.5, 0.3]])
def test_sharded_k_center_settles_float32_near_ties_as_one_process(fractions, monkeypatch):
    # Float32 points far from the origin: distances computed in blocks round differently
    # with the block, so shards and one process see near-ties in other orders.
    gen = torch.Generator().manual_seed(2)
    x = torch.randn((3000, 8), generator=gen) * 100 + 1000
    labeled = np.arange(3000) % 50 == 0
    expected = k_center_greedy(x, labeled, 400, sync_every=16)
    certified = []
    # Only the top point's rivals are certified: a batch of more than one shows a near-tie.
    monkeypatch.setattr(kcenter.FarthestFirst, "CERTIFY_AHEAD", 0)
    real = kcenter.FarthestFirst._certify
    monkeypatch.setattr(kcenter.FarthestFirst, "_certify",
                        lambda self, rows: certified.append(len(rows)) or real(self, rows))
    got = sharded_k_center_greedy(shards_of(x, labeled, fractions, sync_every=16), 400)
    np.testing.assert_array_equal(got, expected)
    # Some picks had rivals within float32 rounding, compared again in float64.
    assert max(certified) > 1


@pytest.mark.parametrize("fractions", SPLITS)
@pytest.mark.parametrize("seeded", [True, False])
def test_sharded_k_center_cold_start_is_the_single_process_rule(fractions, seeded):
    x = torch.randint(0, 6, (200, 2)).float()
    labeled = np.zeros(200, dtype=bool)
    rng_a, rng_b = (np.random.default_rng(5), np.random.default_rng(5)) if seeded else (None, None)
    expected = k_center_greedy(x, labeled, 25, rng=rng_a)
    got = sharded_k_center_greedy(shards_of(x, labeled, fractions), 25, rng=rng_b)
    np.testing.assert_array_equal(got, expected)


def test_sharded_k_center_refuses_more_picks_than_unlabeled_points():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="cannot pick 5 of 4"):
        sharded_k_center_greedy(shards_of(x, np.zeros(4, dtype=bool), [0.5, 0.5]), 5)


@pytest.mark.parametrize("fractions", SPLITS)
@pytest.mark.parametrize("k", [1, 7, 40])
def test_sharded_kmeans_is_kmeans_centres_on_exact_arithmetic(fractions, k):
    # Integer-valued points: every sum is exact, so the centres can be compared bit for bit.
    gen = torch.Generator().manual_seed(k)
    x = torch.randint(-20, 20, (500, 4), generator=gen).float()
    none = np.zeros(500, dtype=bool)
    expected = kmeans_centres(x, k, np.random.default_rng(3), seed_sample=200)
    got = sharded_kmeans_centres(shards_of(x, none, fractions), k, np.random.default_rng(3),
                                 seed_sample=200)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    shards = shards_of(x, none, fractions)
    np.testing.assert_array_equal(sharded_nearest_distinct(shards, got, m=2),
                                  nearest_distinct(x, expected))


def test_sharded_kmeans_moves_an_empty_cluster_as_the_single_process_does():
    # Many duplicates and k close to the number of distinct points leave clusters empty.
    x = torch.tensor([[0.0], [0.0], [0.0], [1.0], [1.0], [5.0], [5.0], [9.0]]).repeat(20, 1)
    none = np.zeros(len(x), dtype=bool)
    for seed in range(5):
        expected = kmeans_centres(x, 6, np.random.default_rng(seed))
        got = sharded_kmeans_centres(shards_of(x, none, [0.3, 0.3, 0.4]), 6,
                                     np.random.default_rng(seed))
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_sharded_nearest_distinct_asks_again_when_a_shard_list_runs_out():
    x = torch.zeros(30, 2)  # all equidistant: every centre takes the next lowest position
    centres = torch.zeros(12, 2)
    shards = shards_of(x, np.zeros(30, dtype=bool), [0.5, 0.5])
    got = sharded_nearest_distinct(shards, centres, m=1)
    np.testing.assert_array_equal(got, nearest_distinct(x, centres))
    assert shards.messages > 2 * 2  # the lists of one point each were refilled


class RecreatedShards(LocalShards):
    """Shards in this process whose shard ``lost`` is replaced, before the ``at``-th k-center
    step, by a new worker from the same source brought back by replaying its call log."""

    def __init__(self, workers: list[ShardWorker], lost: int, at: int) -> None:
        super().__init__(workers)
        self.log, self.lost, self.at, self.steps = CallLog(len(workers)), lost, at, 0

    def call_each(self, method, args):
        if method == "step":
            self.steps += 1
            if self.steps == self.at:
                fresh = ShardWorker(self.shards[self.lost].source)
                for name, replayed in self.log.replay(self.lost):
                    fresh.call(name, *replayed)
                self.shards[self.lost] = fresh
        answers = super().call_each(method, args)
        for index, a in enumerate(args):
            self.log.record(index, method, tuple(a))
        return answers


@pytest.mark.parametrize("at", [1, 7, 40])
def test_a_shard_rebuilt_from_its_call_log_gives_the_same_picks(at):
    bounds = [(0, 700), (700, 1500), (1500, 2000)]

    def workers() -> list[ShardWorker]:
        return [ShardWorker(SyntheticSlice(a, b, dim=8, seed=3, block=256)) for a, b in bounds]

    def embedded(shards: LocalShards) -> LocalShards:
        shards.call_each("embed", [(None, np.arange(a, b) % 50 == 0, a) for a, b in bounds])
        return shards

    expected = sharded_k_center_greedy(embedded(LocalShards(workers())), 60)
    rebuilt = embedded(RecreatedShards(workers(), lost=1, at=at))
    original = rebuilt.shards[1]
    np.testing.assert_array_equal(sharded_k_center_greedy(rebuilt, 60), expected)
    assert rebuilt.shards[1] is not original  # the last steps were answered by the new one
