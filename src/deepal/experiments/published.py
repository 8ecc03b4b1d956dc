"""Tables of the published MNIST protocols (``docs/results.md``) from an experiment's
results: labels needed to reach each target accuracy per seed, their mean, median and
quartiles, and the test error at the last label count.

``python -m deepal.experiments.published results/gal2017 --targets 0.90 0.95``
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepal.experiments.metrics import labels_to_reach, mean_std, quartiles


def _fmt(value: float) -> str:
    return "never" if value == np.inf else f"{value:.0f}"


def protocol_table(rows: list[dict[str, Any]], targets: Sequence[float]) -> str:
    """A Markdown table, one line per (data set, strategy): for each target accuracy, the
    labels needed as mean over seeds and median [lower quartile, upper quartile] (a seed
    that never reaches it counts as infinitely many), then the test error at the last
    label count as mean ± standard deviation."""
    curves: dict[tuple[str, str], dict[int, list[tuple[int, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        if row.get("test_accuracy") not in (None, ""):
            curves[(row["dataset"], row["strategy"])][int(row["seed"])].append(
                (int(row["n_labeled"]), float(row["test_accuracy"])))
    header = ["data set", "strategy", "seeds"]
    for target in targets:
        header += [f"labels to {target:.0%} (mean)", f"labels to {target:.0%} median [q1, q3]"]
    header.append("test error at last labels")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (dataset, strategy), seeds in sorted(curves.items()):
        cells = [dataset, strategy, str(len(seeds))]
        sorted_curves = [sorted(points) for points in seeds.values()]
        for target in targets:
            reached = [labels_to_reach([n for n, _ in c], [a for _, a in c], target)
                       for c in sorted_curves]
            finite = [r for r in reached if r is not None]
            mean = f"{np.mean(finite):.0f}" if len(finite) == len(reached) else "never (some)"
            q1, median, q3 = quartiles(reached)
            cells += [mean, f"{_fmt(median)} [{_fmt(q1)}, {_fmt(q3)}]"]
        last = [c[-1] for c in sorted_curves]
        error, spread = mean_std([1.0 - a for _, a in last])
        labels = sorted({n for n, _ in last})
        cells.append(f"{error:.2%} ± {spread:.2%} ({'/'.join(map(str, labels))} labels)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from deepal.errors import DeepALError
    from deepal.experiments.report import load_results

    parser = argparse.ArgumentParser(prog="python -m deepal.experiments.published",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="an experiment's output folder")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95],
                        help="test accuracies to reach (default: 0.90 0.95)")
    args = parser.parse_args(argv)
    try:
        print(protocol_table(load_results(args.output), args.targets), end="")
    except DeepALError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
