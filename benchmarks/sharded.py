"""Sharded selection on a local multi-node Ray cluster, against the single-process selection.

``python -m benchmarks.sharded [--size N] [--labeled-every K] [--nodes 1 2 4]``: a synthetic
pool of ``N x 128`` embeddings (every ``K``-th point labeled) is generated on the workers (one
shard per worker node; the driver never holds it), then 1,000 k-center greedy picks and a
top-1,000 margin query run over the shards. The
single-process reference (:func:`~deepal.scores.kcenter.k_center_greedy` and
:func:`~deepal.scores.selection.top_n` over the same pool, in one process) runs in the same
invocation; every configuration runs in a fresh process, so each peak memory is its own.
Printed: time, driver peak memory and the largest shard worker's, messages and bytes moved
per pick, the ratio to the reference, whether the picks are the reference's, and the
round-trip time the projection uses; each configuration's figures also as a JSON line as
soon as it is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = {"n_pool": 200_000, "dim": 128, "labeled_every": 100, "n_pick": 1_000, "n_top": 1_000}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _digest(picks: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(picks, dtype=np.int64).tobytes()).hexdigest()[:12]


def single(size: dict) -> dict:
    """The reference: the whole pool in this process."""
    import torch

    from deepal.scores.kcenter import k_center_greedy
    from deepal.scores.selection import top_n
    from deepal.scores.uncertainty import margin
    from deepal.sharded.worker import SyntheticSlice

    torch.set_num_threads(1)
    pool = SyntheticSlice(0, size["n_pool"], size["dim"])
    start = time.perf_counter()
    x = pool.embeddings(None, None)
    labeled = np.arange(size["n_pool"]) % size["labeled_every"] == 0
    made = time.perf_counter()
    picks = k_center_greedy(x, labeled, size["n_pick"])
    kcenter = time.perf_counter()
    top = top_n(pool.scores(None, margin, None), size["n_top"])
    done = time.perf_counter()
    return {"nodes": 0, "embed_s": made - start, "kcenter_s": kcenter - made,
            "top_s": done - kcenter, "peak_mb": _peak_mb(), "kcenter_picks": _digest(picks),
            "top_picks": _digest(top)}


def sharded(size: dict, n_nodes: int) -> dict:
    """The same selections over ``n_nodes`` worker nodes of a local Ray cluster."""
    import ray

    from deepal.sharded.kcenter import sharded_k_center_greedy
    from deepal.sharded.local_cluster import LocalCluster
    from deepal.sharded.merge import merge_top_n
    from deepal.sharded.query import shard_bounds
    from deepal.sharded.ray_shards import RayShards
    from deepal.sharded.worker import SyntheticSlice

    temp = Path(tempfile.mkdtemp(prefix="dsb", dir="/tmp"))
    # The embeddings live in the workers' memory, not in the object store: a small store.
    cluster = LocalCluster(temp, n_workers=n_nodes, cpus=1, head_cpus=0,
                           object_store=256 * 2**20)
    try:
        ray.init(address=cluster.address, include_dashboard=False, logging_level="ERROR")
        bounds = shard_bounds(size["n_pool"], n_nodes)
        shards = RayShards([SyntheticSlice(a, b, size["dim"]) for a, b in bounds], None,
                           options=[{"resources": {f"node{i + 1}": 0.1}}
                                    for i in range(n_nodes)])
        start = time.perf_counter()
        shards.call_each("embed", [(None, np.arange(a, b) % size["labeled_every"] == 0, a)
                                   for a, b in bounds])
        made = time.perf_counter()
        sent, messages = shards.bytes_moved, shards.messages
        picks = sharded_k_center_greedy(shards, size["n_pick"])
        kcenter = time.perf_counter()
        kc_bytes, kc_messages = shards.bytes_moved - sent, shards.messages - messages
        sent = shards.bytes_moved
        tops = shards.call_each("top_scores", [(None, None, size["n_top"], a) for a, _ in bounds])
        top = merge_top_n(tops, size["n_top"])
        done = time.perf_counter()
        top_bytes = shards.bytes_moved - sent
        trips = 200
        for _ in range(trips):
            shards.call("pid")  # no work: the message alone
        rtt = (time.perf_counter() - done) / trips
        shard_peak = max(shards.call("peak_mb"))
        shards.close()
        return {"nodes": n_nodes, "embed_s": made - start, "kcenter_s": kcenter - made,
                "top_s": done - kcenter, "peak_mb": _peak_mb(),
                "shard_peak_mb": shard_peak, "kcenter_bytes_per_pick": kc_bytes / size["n_pick"],
                "kcenter_messages_per_pick": kc_messages / size["n_pick"],
                "top_bytes": top_bytes, "round_trip_s": rtt,
                "kcenter_picks": _digest(picks), "top_picks": _digest(top)}
    finally:
        ray.shutdown()
        cluster.stop()
        shutil.rmtree(temp, ignore_errors=True)


def _fresh(size: dict, n_nodes: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.sharded", "--one", str(n_nodes),
                          "--spec", json.dumps(size)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the {n_nodes}-node configuration failed:\n{out.stderr[-3000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def run(size: dict, nodes: list[int]) -> list[dict]:
    """Every configuration in a fresh process; prints the table and returns its rows."""
    reference = _fresh(size, 0)
    rows = [reference] + [_fresh(size, n) for n in nodes]
    print(f"pool {size['n_pool']:,} x {size['dim']} (every {size['labeled_every']:,}th labeled), "
          f"{size['n_pick']} k-center picks, "
          f"top-{size['n_top']} margin")
    print("nodes  start+embed s  k-center s  (x ref)  top-n s  driver peak MB  shard peak MB  "
          "bytes/pick  msgs/pick  round trip ms  same picks")
    for row in rows:
        same = (row["kcenter_picks"] == reference["kcenter_picks"]
                and row["top_picks"] == reference["top_picks"])
        ratio = row["kcenter_s"] / reference["kcenter_s"]
        print(f"{row['nodes'] or 'ref':>5}  {row['embed_s']:14.2f}  {row['kcenter_s']:10.2f}  "
              f"{ratio:7.1f}  {row['top_s']:7.2f}  {row['peak_mb']:14.0f}  "
              f"{row.get('shard_peak_mb', row['peak_mb']):13.0f}  "
              f"{row.get('kcenter_bytes_per_pick', 0):10.0f}  "
              f"{row.get('kcenter_messages_per_pick', 0):9.1f}  "
              f"{1000 * row.get('round_trip_s', 0):13.2f}  {same}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SIZE["n_pool"], metavar="N",
                        help=f"points in the pool (default {SIZE['n_pool']:,})")
    parser.add_argument("--labeled-every", type=int, default=SIZE["labeled_every"], metavar="K",
                        help="every K-th point is labeled (default "
                        f"{SIZE['labeled_every']}: 1%%)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        size = json.loads(args.spec)
        print(json.dumps(single(size) if args.one == 0 else sharded(size, args.one)))
        return
    run({**SIZE, "n_pool": args.size, "labeled_every": args.labeled_every}, args.nodes)


if __name__ == "__main__":
    main()
