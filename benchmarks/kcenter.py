"""k-center greedy (core-set): deepal's chunked version vs the original dense N x N approach."""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.distances import k_center_greedy

from benchmarks.measure import measure, report

SMALL = {"n_pool": 8_000, "dim": 50, "n_labeled": 2_000, "n_pick": 200}
FULL = {"n_pool": 40_000, "dim": 50, "n_labeled": 10_000, "n_pick": 1_000}
# The dense reference at FULL size, measured earlier (it needs the whole matrix in float64).
PUBLISHED_DENSE_FULL = "~755 s, ~12.5 GB (published; not re-run with --skip-dense)"


def setup(size: dict):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((size["n_pool"], size["dim"]), dtype=np.float32)
    labeled = np.zeros(size["n_pool"], dtype=bool)
    labeled[rng.choice(size["n_pool"], size["n_labeled"], replace=False)] = True
    return x, labeled, size["n_pick"]


def deepal(inputs):
    x, labeled, n = inputs
    return k_center_greedy(torch.from_numpy(x), labeled, n)


def dense_reference(inputs):
    """The original's approach: the full pairwise matrix, then greedy picks on it."""
    x, labeled, n = inputs
    e = x.astype(np.float64)
    sq = (e * e).sum(axis=1)
    dist = e @ e.T  # N x N
    dist *= -2.0
    dist += sq[:, None]
    dist += sq[None, :]
    np.maximum(dist, 0.0, out=dist)  # squared distances: the sqrt would not change any argmax
    min_dist = dist[:, labeled].min(axis=1)
    min_dist[labeled] = -np.inf
    picks = []
    for _ in range(n):
        pick = int(min_dist.argmax())
        picks.append(pick)
        np.minimum(min_dist, dist[:, pick], out=min_dist)
        min_dist[pick] = -np.inf
    return np.asarray(picks)


def run(full: bool, skip_dense: bool = False) -> None:
    size = FULL if full else SMALL
    name = (f"kcenter: pool {size['n_pool']:,} x {size['dim']}-d, {size['n_labeled']:,} labeled, "
            f"{size['n_pick']:,} picks")
    d = measure(__name__, "deepal", size)
    if skip_dense:
        report(name, d, None, [f"dense reference: {PUBLISHED_DENSE_FULL}",
                               f"ratio vs published: ~{755 / d.seconds:.0f}x"])
        return
    r = measure(__name__, "dense_reference", size)
    report(name, d, r, [f"picks identical: {bool(np.array_equal(d.result, r.result))}"],
           ref_label="dense reference")


SIZE_1M = {"n_pool": 1_000_000, "dim": 128, "n_labeled": 1_000, "n_pick": 1_000}


def run_1m() -> None:
    d = measure(__name__, "deepal", SIZE_1M)
    report("kcenter-1m: pool 1,000,000 x 128-d, 1,000 labeled, 1,000 picks (no reference)",
           d, None, [f"target <= 60 s: {'met' if d.seconds <= 60 else 'MISSED'}; "
                     f"target <= 2 GB peak extra: "
                     f"{'met' if d.peak_extra_bytes <= 2 * 2**30 else 'MISSED'}"])
