"""k-center greedy (core-set): deepal's streaming version vs the original dense N x N selection."""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.kcenter import k_center_greedy

from benchmarks.measure import bench_device, measure, report

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
    return k_center_greedy(torch.from_numpy(x).to(bench_device()), labeled, n)


def dense_reference(inputs):
    """The original DeepAL's selection, written plainly: the full N x N distance matrix, its
    unlabeled x labeled block, and per pick a min over that block, then a row deleted and a
    column appended (two copies of the block per pick). Clamped at 0 before the square root,
    which the original omits (its NaN distances would change the picks)."""
    x, labeled, n = inputs
    labeled = labeled.copy()
    dist = x @ x.T  # float32, as the original
    sq = dist.diagonal().copy().reshape(-1, 1)
    dist *= -2
    dist += sq
    dist += sq.T
    np.maximum(dist, 0, out=dist)
    dist = np.sqrt(dist)
    block = dist[~labeled, :][:, labeled]
    picks = []
    for _ in range(n):
        row = int(block.min(axis=1).argmax())
        pick = int(np.flatnonzero(~labeled)[row])
        picks.append(pick)
        labeled[pick] = True
        block = np.delete(block, row, 0)
        block = np.append(block, dist[~labeled, pick][:, None], axis=1)
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
