"""Tables of docs/frontier.md: strategies with and without the unlabeled pool's help
(semi-supervised training, self-supervised features) on MNIST and Fashion-MNIST, from the
experiments' per-run CSVs.

Reads ``docs/results/<NAME>/rounds.csv`` of each experiment of :data:`VARIANTS` and
:data:`COLD` (written by ``python -m deepal.experiments.published results/<NAME> --export
docs/results/<NAME>``: the seeds whose runs all finished), or with ``--results results`` the
experiments' own output folders (every completed round). An experiment with no results is
listed as not run. Prints the page's tables as Markdown; ``--write`` puts them between the
markers of ``docs/frontier.md``.

Every number is computed here: accuracy cells are the test accuracy (10,000 test images) as
mean ± sample standard deviation over the seeds that reached that label count, a count in
parentheses meaning fewer than 3; AUBC is :func:`deepal.experiments.metrics.aubc` over the
runs that reached the budget; seconds are the mean over completed rounds.

Usage (from the repository root; no training)::

    .venv/bin/python docs/frontier.py --write
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepal.experiments.metrics import aubc, mean_std
from deepal.experiments.store import collect_rows, read_rows

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "frontier.md"
SEEDS_WANTED = 3
DATASETS = ("MNIST", "FashionMNIST")
#: The warm-start protocol's experiments: 100 balanced labels, +10 per round to 200.
VARIANTS = (
    ("frontier_plain", "labels only"),
    ("frontier_semi", "semi-supervised"),
    ("frontier_features", "self-supervised features"),
    ("frontier_both", "both"),
)
#: The cold-start protocol's experiments: no label, 10 per round to 100.
COLD = (
    ("frontier_cold_plain", "classifier embedding"),
    ("frontier_cold_features", "self-supervised features"),
)
STRATEGIES = ("RandomSampling", "MarginSampling", "BALDDropout", "EPIG", "TypiClust",
              "ProbCover")
WARM_COLUMNS = (100, 150, 200)
COLD_COLUMNS = (20, 50, 100)


def experiment_rows(name: str, results: Path | None) -> list[dict[str, Any]]:
    """The rows of experiment ``name``: exported (``docs/results``) or, with ``results``,
    every completed round of its output folder; empty if it was not run."""
    if results is not None:
        folder = results / name
        return collect_rows(folder) if (folder / "runs").is_dir() else []
    path = ROOT / "docs" / "results" / name / "rounds.csv"
    return read_rows(path) if path.exists() else []


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "—"
    mean, std = mean_std(values)
    count = "" if len(values) >= SEEDS_WANTED else f" ({len(values)})"
    return f"{mean:.3f} ± {std:.3f}{count}" if len(values) > 1 else f"{mean:.3f}{count}"


def summary(rows: list[dict[str, Any]], columns: Sequence[int], budget: int
            ) -> dict[str, Any]:
    """One strategy's runs: accuracy cells at ``columns`` labels, AUBC of the runs that
    reached ``budget``, seconds per round, and how many runs reached the budget."""
    runs: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        runs[int(row["seed"])][int(row["n_labeled"])] = row
    cells = [_cell([run[n]["test_accuracy"] for run in runs.values() if n in run])
             for n in columns]
    complete = [run for run in runs.values() if budget in run]
    areas = [aubc(sorted(run), [run[n]["test_accuracy"] for n in sorted(run)])
             for run in complete]
    train = [row["train_seconds"] for row in rows]
    query = [row["query_seconds"] for row in rows if int(row["round"]) > 0]
    return {"cells": cells, "aubc": _cell(areas), "done": f"{len(complete)}/{len(runs)}",
            "train": f"{np.mean(train):.1f}" if train else "—",
            "query": f"{np.mean(query):.1f}" if query else "—"}


def table(experiments: Sequence[tuple[str, str]], dataset: str, columns: Sequence[int],
          budget: int, results: Path | None) -> str:
    """One data set's table: a row per strategy and experiment that ran it."""
    head = ["strategy", "training / features", "runs (done/started)",
            *[str(n) for n in columns], "AUBC", "train s/round", "query s/round"]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---", "---", ":---:", *["---:"] * (len(head) - 3)]) + " |"]
    not_run = []
    for name, label in experiments:
        rows = [r for r in experiment_rows(name, results) if r["dataset"] == dataset]
        if not rows:
            not_run.append(f"`{name}`")
            continue
        for strategy in STRATEGIES:
            mine = [r for r in rows if r["strategy"] == strategy]
            if mine:
                s = summary(mine, columns, budget)
                lines.append("| " + " | ".join([f"`{strategy}`", label, s["done"], *s["cells"],
                                                s["aubc"], s["train"], s["query"]]) + " |")
    if not_run:
        lines.append("")
        lines.append(f"No results on {dataset} yet: {', '.join(not_run)}.")
    return "\n".join(lines)


def tables(results: Path | None) -> str:
    """Every table of the page, with its heading."""
    parts = []
    for dataset in DATASETS:
        parts.append(f"### {dataset}: 100 balanced labels, then 10 per round to 200\n")
        parts.append(table(VARIANTS, dataset, WARM_COLUMNS, 200, results) + "\n")
    for dataset in DATASETS:
        parts.append(f"### {dataset}: no label at the start, 10 per round to 100\n")
        parts.append(table(COLD, dataset, COLD_COLUMNS, 100, results) + "\n")
    return "\n".join(parts)


START, END = "<!-- tables: start -->", "<!-- tables: end -->"


def write_page(text: str) -> None:
    """Put ``text`` between the page's markers."""
    page = PAGE.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), flags=re.S)
    PAGE.write_text(pattern.sub(lambda _: f"{START}\n\n{text}\n{END}", page))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        help="read the experiments' output folders under this folder")
    parser.add_argument("--write", action="store_true", help="update docs/frontier.md")
    args = parser.parse_args(argv)
    text = tables(args.results)
    if args.write:
        write_page(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
