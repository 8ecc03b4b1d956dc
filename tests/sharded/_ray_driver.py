"""The driver side of the cluster tests, run in a process of its own: a Ray driver in the
test process would share Ray's per-process state with the other Ray tests there.

``python _ray_driver.py ADDRESS same-picks|killed-worker`` exits 0 when the check holds.
"""

from __future__ import annotations

import copy
import functools
import os
import signal
import sys

import numpy as np
import ray
import torch

import deepal
from deepal.errors import DeepALError
from deepal.nets import MLP
from deepal.sharded import ShardedPool, ShardLostError, sharded_query

#: One shard per node, placed by the node's own resource.
PLACEMENT = [{"num_cpus": 0.5, "resources": {f"node{i}": 0.1}} for i in range(3)]


def strategies() -> list[deepal.Strategy]:
    """Top-n, k-center and k-means strategies on 120 points in 3 blobs, sharing one net."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = (np.eye(3, 4)[y] * 4.0 + rng.normal(size=(120, 4))).astype(np.float32)
    pool = deepal.Data(x, y)
    pool.initialize_labels(10, random_state=0)
    net = deepal.Net(functools.partial(MLP, n_features=4, n_classes=3), {"n_epoch": 5},
                     device="cpu")
    margin = deepal.MarginSampling(pool, net, random_state=1, max_candidates=90)
    margin.train()
    return [margin, deepal.KCenterGreedy(pool, net, random_state=2),
            deepal.KMeansSampling(pool, net, random_state=3)]


def same_picks() -> None:
    chosen = strategies()
    pool, net = chosen[0].dataset, chosen[0].net
    expected = [copy.deepcopy(strategy).query(12) for strategy in chosen]
    with ShardedPool(pool, net, 3, backend="ray", shard_options=PLACEMENT) as sharded:
        nodes = {ray.get(actor.call.remote("node")) for actor in sharded.shards.actors}
        assert len(nodes) == 3, f"the shards share nodes: {nodes}"
        try:
            sharded.shards.call("counts")
            raise AssertionError("a shard answered before it had embeddings")
        except DeepALError as error:  # the worker's own error, not Ray's wrapper
            assert "no embeddings yet" in str(error), error
        for strategy, picks in zip(chosen, expected, strict=True):
            got = sharded.query(strategy, 12)
            assert np.array_equal(got, picks), (type(strategy).__name__, got, picks)
        assert sharded.shards.bytes_moved > 0
    # One query with a pool of its own, on the Ray already initialised (left running).
    margin = copy.deepcopy(chosen[0])
    got = sharded_query(chosen[0], 12, 3, backend="ray", shard_options=PLACEMENT)
    assert np.array_equal(got, margin.query(12)), (got, "sharded_query")
    assert ray.is_initialized()


def kill_at_step(shards, step: int, kill) -> None:
    """Have ``kill()`` run as the driver sends the ``step``-th k-center step (the query is
    then under way on every shard)."""
    steps, call = [], shards.call

    def call_then_kill(method, *args):
        steps.append(method)
        if steps.count("step") == step:
            kill()
        return call(method, *args)

    shards.call = call_then_kill


def pid_of(shards, index: int) -> int:
    return ray.get(shards.actors[index].call.remote("pid"))


def killed_worker() -> None:
    strategy = strategies()[1]  # k-center: a round trip per pick, state on every shard
    expected = copy.deepcopy(strategy).query(20)
    twice, retry = copy.deepcopy(strategy), copy.deepcopy(strategy)
    # Killed once: its shard is re-created on a new worker and the query goes on.
    with ShardedPool(strategy.dataset, strategy.net, 3, backend="ray",
                     shard_options=PLACEMENT) as sharded:
        shards, victim = sharded.shards, pid_of(sharded.shards, 2)
        kill_at_step(shards, 5, lambda: os.kill(victim, signal.SIGKILL))
        got = sharded.query(strategy, 20)
        assert np.array_equal(got, expected), (got, expected)
        assert shards.recreated == 1 and pid_of(shards, 2) != victim
    # Killed again as soon as it is re-created: the query fails clearly.
    with ShardedPool(twice.dataset, twice.net, 3, backend="ray",
                     shard_options=PLACEMENT) as sharded:
        shards, victim = sharded.shards, pid_of(sharded.shards, 2)
        kill_at_step(shards, 5, lambda: os.kill(victim, signal.SIGKILL))
        recreate = shards.recreate

        def recreate_then_kill(index):
            recreate(index)
            os.kill(pid_of(shards, index), signal.SIGKILL)

        shards.recreate = recreate_then_kill
        try:
            sharded.query(twice, 20)
            raise AssertionError("the query went on without a shard")
        except ShardLostError as error:
            assert "so did the worker re-created for it" in str(error), error
    # A new pool on the same cluster gives the right picks.
    with ShardedPool(retry.dataset, retry.net, 3, backend="ray",
                     shard_options=PLACEMENT) as sharded:
        got = sharded.query(retry, 20)
        assert np.array_equal(got, expected), (got, expected)


if __name__ == "__main__":
    torch.set_num_threads(1)
    ray.init(address=sys.argv[1], include_dashboard=False, logging_level="ERROR")
    try:
        {"same-picks": same_picks, "killed-worker": killed_worker}[sys.argv[2]]()
    finally:
        ray.shutdown()
    print("ok")
