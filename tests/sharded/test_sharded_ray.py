"""Sharded queries on a real local Ray cluster: a head and two worker nodes started with
``ray start`` on 127.0.0.1, one shard per node, give exactly the single-process picks; a
shard's worker killed during a query is re-created (its state replayed) and the picks are still
right; killed again as it comes back, the query fails with ShardLostError, and a new pool then
gives the right picks. The checks themselves run in ``_ray_driver.py``, a driver process of its own,
and ``deepal query --query-backend ray`` runs as a command of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _projects import make_project, picks

import deepal
from deepal.cli import main
from deepal.sharded.local_cluster import LocalCluster

pytest.importorskip("ray", reason='the Ray backend needs pip install "deepal[ray]"')

DRIVER = Path(__file__).with_name("_ray_driver.py")


@pytest.fixture(scope="module")
def cluster():
    # A short folder: Ray's socket paths under it must stay within the OS limit.
    temp_dir = Path(tempfile.mkdtemp(prefix="dsr", dir="/tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        # The nodes' workers and the driver import deepal from these sources.
        sources = str(Path(deepal.__file__).resolve().parents[1])
        patch.setenv("PYTHONPATH", os.pathsep.join([sources, os.environ.get("PYTHONPATH", "")]))
        patch.setenv("OMP_NUM_THREADS", "1")
        nodes = LocalCluster(temp_dir, n_workers=2)
        try:
            yield nodes
        finally:
            nodes.stop()
            shutil.rmtree(temp_dir, ignore_errors=True)


def drive(cluster: LocalCluster, check: str) -> None:
    done = subprocess.run([sys.executable, str(DRIVER), cluster.address, check],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_sharded_queries_on_three_nodes_are_the_single_process_picks(cluster):
    drive(cluster, "same-picks")


def test_a_worker_killed_mid_query_is_recreated_once_then_fails_the_query_clearly(cluster):
    drive(cluster, "killed-worker")


@pytest.mark.parametrize("strategy", ["KCenterGreedy", "MarginSampling"])
def test_deepal_query_on_the_cluster_picks_what_the_single_process_query_picks(
        cluster, tmp_path, strategy):
    one = make_project(tmp_path / "one", strategy)
    sharded = tmp_path / "sharded"
    shutil.copytree(one.parent, sharded)
    assert main(["query", "-n", "9", "-p", str(one), "--threads", "1"]) == 0
    # A driver process of its own, as a user runs it; one shard per node (3 CPUs in all).
    done = subprocess.run([sys.executable, "-m", "deepal", "query", "-n", "9", "-p",
                           str(sharded / "proj"), "--threads", "1", "--query-backend", "ray",
                           "--query-address", cluster.address, "--shards", "3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{strategy} picked 9" in done.stdout
    assert picks(sharded / "proj") == picks(one)
