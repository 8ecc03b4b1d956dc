"""How query cost grows with the pool size N, the embedding size d and the batch size n.

``python -m benchmarks.scaling [--out docs]`` times ``k_center_greedy`` and ``kmeans_centres``
(the two strategies whose cost depends on all three) on random embeddings, each call in a fresh
process with its peak memory, and writes ``scaling.csv`` and ``scaling.png`` (matplotlib) to
``--out``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from deepal.scores.clustering import kmeans_centres
from deepal.scores.kcenter import k_center_greedy

from benchmarks.measure import measure

BASE = {"n_pool": 40_000, "dim": 64, "n_pick": 400}
SWEEPS = {
    "n_pool": [10_000, 20_000, 40_000, 80_000, 160_000],
    "dim": [16, 32, 64, 128, 256],
    "n_pick": [100, 200, 400, 800, 1_600],
}


def setup(size: dict):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((size["n_pool"], size["dim"]), dtype=np.float32)
    labeled = np.zeros(size["n_pool"], dtype=bool)
    labeled[: size["n_pool"] // 10] = True  # 10% labeled
    return torch.from_numpy(x), labeled, size["n_pick"]


def kcenter(inputs):
    x, labeled, n = inputs
    return k_center_greedy(x, labeled, n)


def kmeans(inputs):
    x, labeled, n = inputs
    return kmeans_centres(x[~labeled], n, np.random.default_rng(0), max_iter=15)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw scaling.png from the scaling.csv already in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        with open(args.out / "scaling.csv", newline="") as f:
            rows = [{k: (v if k in ("function", "swept") else float(v)) for k, v in r.items()}
                    for r in csv.DictReader(f)]
        plot(rows, args.out / "scaling.png")
        return
    rows = []
    for swept, values in SWEEPS.items():
        for value in values:
            size = {**BASE, swept: value}
            for fn in ("kcenter", "kmeans"):
                m = measure("benchmarks.scaling", fn, size)
                rows.append({"function": fn, "swept": swept, **size, "seconds": m.seconds,
                             "peak_extra_mb": m.peak_extra_bytes / 2**20})
                print(f"{fn:8} {swept}={value:>7,}: {m.seconds:7.2f} s, "
                      f"{m.peak_extra_bytes / 2**20:7.1f} MB", flush=True)
    with open(args.out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "scaling.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    labels = {"n_pool": "pool size N", "dim": "embedding size d", "n_pick": "batch size n"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, swept in zip(axes, SWEEPS, strict=True):
        for fn, colour in (("kcenter", "tab:blue"), ("kmeans", "tab:orange")):
            points = [(r[swept], r["seconds"]) for r in rows
                      if r["swept"] == swept and r["function"] == fn]
            xs, ys = zip(*points, strict=True)
            name = "KCenterGreedy" if fn == "kcenter" else "KMeansSampling (max_iter=15)"
            ax.plot(xs, ys, "o-", color=colour, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(SWEEPS[swept])  # the measured sizes, written out in full
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(labels[swept])
        ax.set_ylabel("seconds")
        others = ", ".join(f"{k}={v:,}" for k, v in BASE.items() if k != swept)
        ax.set_title(f"vs {labels[swept]} ({others}, 10% labeled)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
