"""Sharded queries on a real local Ray cluster: a head and two worker nodes started with
``ray start`` on 127.0.0.1, one shard per node, give exactly the single-process picks; a
shard's worker killed during a query fails it with ShardLostError, and a new pool then gives
the right picks."""

from __future__ import annotations

import copy
import functools
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

import deepal
from deepal.errors import DeepALError
from deepal.nets import MLP
from deepal.sharded import ShardedPool, sharded_query
from deepal.sharded.ray_shards import ShardLostError

ray = pytest.importorskip("ray", reason='the Ray backend needs pip install "deepal[ray]"')
from deepal.sharded.local_cluster import LocalCluster  # noqa: E402

#: One shard per node, placed by the node's own resource.
PLACEMENT = [{"num_cpus": 0.5, "resources": {f"node{i}": 0.1}} for i in range(3)]


@pytest.fixture(scope="module")
def cluster():
    # A short folder: Ray's socket paths under it must stay within the OS limit.
    temp_dir = Path(tempfile.mkdtemp(prefix="dsr", dir="/tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        # The nodes' workers import deepal from these sources, wherever they run.
        sources = str(Path(deepal.__file__).resolve().parents[1])
        patch.setenv("PYTHONPATH", os.pathsep.join([sources, os.environ.get("PYTHONPATH", "")]))
        nodes = LocalCluster(temp_dir, n_workers=2)
        try:
            ray.init(address=nodes.address, include_dashboard=False, logging_level="ERROR")
            assert sum(node["Alive"] for node in ray.nodes()) == 3
            yield nodes
        finally:
            ray.shutdown()
            nodes.stop()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def net() -> deepal.Net:
    """A net the workers can rebuild: its module class is importable there."""
    return deepal.Net(functools.partial(MLP, n_features=4, n_classes=3), {"n_epoch": 5},
                      device="cpu")


def strategies(pool: deepal.Data, net: deepal.Net) -> list[deepal.Strategy]:
    """Top-n, k-center and k-means strategies sharing one trained net."""
    margin = deepal.MarginSampling(pool, net, random_state=1, max_candidates=90)
    margin.train()
    return [margin, deepal.KCenterGreedy(pool, net, random_state=2),
            deepal.KMeansSampling(pool, net, random_state=3)]


def test_sharded_queries_on_three_nodes_are_the_single_process_picks(cluster, pool, net):
    chosen = strategies(pool, net)
    expected = [copy.deepcopy(strategy).query(12) for strategy in chosen]
    with ShardedPool(pool, net, 3, backend="ray", shard_options=PLACEMENT) as sharded:
        nodes = {ray.get(actor.call.remote("node")) for actor in sharded.shards.actors}
        assert len(nodes) == 3  # one shard on each node
        with pytest.raises(DeepALError, match="no embeddings yet"):  # a worker's own error
            sharded.shards.call("counts")
        for strategy, picks in zip(chosen, expected, strict=True):
            np.testing.assert_array_equal(sharded.query(strategy, 12), picks)
        assert sharded.shards.bytes_moved > 0
    # One query with a pool of its own, on the Ray already initialised (left running).
    margin = copy.deepcopy(chosen[0])
    np.testing.assert_array_equal(
        sharded_query(chosen[0], 12, 3, backend="ray", shard_options=PLACEMENT),
        margin.query(12))
    assert ray.is_initialized()


def test_a_worker_killed_mid_query_fails_it_clearly(cluster, pool, net, monkeypatch):
    strategy = strategies(pool, net)[1]  # k-center: many round trips per query
    expected = copy.deepcopy(strategy).query(20)
    retry = copy.deepcopy(strategy)
    with ShardedPool(pool, net, 3, backend="ray", shard_options=PLACEMENT) as sharded:
        victim = sharded.shards.call_one(2, "pid")
        steps, call = [], sharded.shards.call

        def call_then_kill(method, *args):
            steps.append(method)
            if steps.count("step") == 5:  # the query is under way on every shard
                os.kill(victim, signal.SIGKILL)
            return call(method, *args)

        monkeypatch.setattr(sharded.shards, "call", call_then_kill)
        with pytest.raises(ShardLostError, match="died during the query"):
            sharded.query(strategy, 20)
    # A new pool on the same cluster gives the right picks.
    with ShardedPool(retry.dataset, retry.net, 3, backend="ray",
                     shard_options=PLACEMENT) as sharded:
        np.testing.assert_array_equal(sharded.query(retry, 20), expected)
