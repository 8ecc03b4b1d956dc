"""Tables of docs/frontier.md: strategies with and without the unlabeled pool's help
(semi-supervised training, self-supervised features) on MNIST and Fashion-MNIST, from the
experiments' per-run CSVs.

Reads ``docs/results/<NAME>/rounds.csv`` of each experiment of :data:`VARIANTS` and
:data:`COLD` (every completed round, finished runs or not, copied there with ``--gather
results`` from the experiments' output folders), or with ``--results results`` those output
folders themselves. An experiment with no results is
listed as not run. Prints the page's tables as Markdown; ``--write`` puts them between the
markers of ``docs/frontier.md``.

Every number is computed here: accuracy cells are the test accuracy (10,000 test images) as
mean ± sample standard deviation over the seeds that reached that label count, a count in
parentheses meaning fewer than 3; AUBC is :func:`deepal.experiments.metrics.aubc` over the
runs that reached the budget; seconds are the mean over completed rounds (training: round 0
and the later rounds apart, since a continued training is shorter than the first).

Usage (from the repository root; no training)::

    .venv/bin/python docs/frontier.py --gather results --write
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepal.experiments.metrics import aubc, mean_std
from deepal.experiments.store import (
    MANIFEST,
    atomic_write_text,
    collect_rows,
    read_rows,
    rows_to_csv,
)
from deepal.pretraining.cache import default_cache_dir as pretraining_cache

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "frontier.md"
SEEDS_WANTED = 3
DATASETS = ("MNIST", "FashionMNIST")
#: The warm-start protocol's experiments: 100 balanced labels, +10 per round to 200.
VARIANTS = (
    ("frontier_plain", "labels only"),
    ("frontier_semi", "semi-supervised, 1,000 steps, then 100 more a round"),
    ("frontier_semi_cpu", "semi-supervised, 1,000 steps, +50 a round"),
    ("frontier_features", "self-supervised features"),
    ("frontier_both", "both, 1,000 steps, then 100 more a round"),
    ("frontier_both_cpu", "both, 1,000 steps, +50 a round"),
)
#: The cold-start protocol's experiments: no label, 10 per round to 100.
COLD = (("frontier_cold", "self-supervised features"),)
STRATEGIES = ("RandomSampling", "MarginSampling", "BALDDropout", "EPIG", "TypiClust",
              "ProbCover")
WARM_COLUMNS = (100, 150, 200)
COLD_COLUMNS = (20, 50, 100)
#: The pools and pretraining of every experiment here.
N_POOL = 10_000
PRETRAINING_EPOCHS = 20


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
        if row["test_accuracy"] is not None:  # a cold start's round 0 trains on nothing
            runs[int(row["seed"])][int(row["n_labeled"])] = row
    cells = [_cell([run[n]["test_accuracy"] for run in runs.values() if n in run])
             for n in columns]
    complete = [run for run in runs.values() if budget in run]
    areas = [aubc(sorted(run), [run[n]["test_accuracy"] for n in sorted(run)])
             for run in complete]
    first = [row["train_seconds"] for row in rows if int(row["round"]) == 0]
    later = [row["train_seconds"] for row in rows if int(row["round"]) > 0]
    query = [row["query_seconds"] for row in rows if int(row["round"]) > 0]
    return {"cells": cells, "aubc": _cell(areas), "done": f"{len(complete)}/{len(runs)}",
            "train": f"{_seconds(first)} / {_seconds(later)}", "query": _seconds(query)}


def _seconds(values: Sequence[float]) -> str:
    return f"{np.mean(values):.1f}" if values else "—"


def table(experiments: Sequence[tuple[str, str]], dataset: str, columns: Sequence[int],
          budget: int, results: Path | None) -> str:
    """One data set's table: a row per strategy and experiment that ran it."""
    head = ["strategy", "training / features", "runs (done/started)",
            *[str(n) for n in columns], "AUBC", "train s: round 0 / later",
            "query s/round"]
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
                # in the cold start only TypiClust and ProbCover use the features
                shown = "labels only" if experiments is COLD and strategy == "RandomSampling" \
                    else label
                lines.append("| " + " | ".join([f"`{strategy}`", shown, s["done"], *s["cells"],
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
    parts.append("### Costs\n")
    parts.append("\n".join(pretraining_costs()) + "\n")
    parts.append("### Against the targets\n")
    parts.append("\n".join(semi_findings(results) + cold_findings(results)) + "\n")
    return "\n".join(parts)


def _means(rows: list[dict[str, Any]], strategy: str, n_labeled: int) -> list[float]:
    return [r["test_accuracy"] for r in rows if r["test_accuracy"] is not None
            and r["strategy"] == strategy and int(r["n_labeled"]) == n_labeled]


def _compare(mine: list[float], reference: list[float]) -> str:
    """``mine`` against ``reference``: the gap of the means, and whether it is clear (larger
    than both standard deviations, which needs two seeds or more on each side)."""
    gap = np.mean(mine) - np.mean(reference)
    if len(mine) < 2 or len(reference) < 2:
        return f"{gap:+.3f} (one seed)"
    clear = abs(gap) > max(np.std(mine, ddof=1), np.std(reference, ddof=1))
    return f"{gap:+.3f}" + (" (clear)" if clear else " (within the spread)")


def cold_findings(results: Path | None) -> list[str]:
    """TypiClust and ProbCover on self-supervised features against random sampling, at each
    label count of the cold start."""
    rows = experiment_rows(COLD[0][0], results)
    lines = []
    for dataset in DATASETS:
        mine = [r for r in rows if r["dataset"] == dataset]
        counts = sorted({int(r["n_labeled"]) for r in mine if r["strategy"] == "RandomSampling"})
        for strategy in ("TypiClust", "ProbCover"):
            gaps = [(n, _compare(_means(mine, strategy, n), _means(mine, "RandomSampling", n)))
                    for n in counts if _means(mine, strategy, n)]
            if gaps:
                above = sum(1 for _, gap in gaps if gap.startswith("+"))
                lines.append(f"- {dataset}, `{strategy}` minus `RandomSampling`: "
                             + ", ".join(f"{n}: {gap}" for n, gap in gaps)
                             + f"; above random at {above} of {len(gaps)} label counts.")
    return lines


def semi_findings(results: Path | None) -> list[str]:
    """Accuracy at 100 labels with semi-supervised training on MNIST, against the 0.97 the
    comparison aims at, and the same seeds' labels-only training."""
    lines = []
    plain = [r for r in experiment_rows("frontier_plain", results) if r["dataset"] == "MNIST"]
    for name, label in (VARIANTS[1], VARIANTS[4], VARIANTS[2], VARIANTS[5]):
        rows = [r for r in experiment_rows(name, results) if r["dataset"] == "MNIST"]
        for strategy in STRATEGIES:
            at_100 = _means(rows, strategy, 100)
            if not at_100:
                continue
            seeds = {int(r["seed"]) for r in rows
                     if r["strategy"] == strategy and int(r["n_labeled"]) == 100}
            alone = [r["test_accuracy"] for r in plain if r["strategy"] == strategy
                     and int(r["n_labeled"]) == 100 and int(r["seed"]) in seeds]
            lines.append(f"- MNIST, `{strategy}`, {label}, 100 labels: "
                         f"{np.mean(at_100):.3f} over {len(at_100)} seed(s), "
                         f"{0.97 - np.mean(at_100):.3f} below 0.97; labels only on the same "
                         f"seeds: {np.mean(alone):.3f}." if alone else
                         f"- MNIST, `{strategy}`, {label}, 100 labels: {np.mean(at_100):.3f}.")
            break  # round 0 is the same labels for every strategy of a seed
    return lines


START, END = "<!-- tables: start -->", "<!-- tables: end -->"


def gather(results: Path) -> list[str]:
    """Copy every completed round of each experiment under ``results`` (finished runs or not,
    the queried indices left out) and its manifest to ``docs/results/<NAME>``; returns the
    names copied."""
    copied = []
    for name, _ in (*VARIANTS, *COLD):
        rows = experiment_rows(name, results)
        if not rows:
            continue
        destination = ROOT / "docs" / "results" / name
        destination.mkdir(parents=True, exist_ok=True)
        atomic_write_text(destination / "rounds.csv",
                          rows_to_csv({**row, "queried": None} for row in rows))
        atomic_write_text(destination / MANIFEST, (results / name / MANIFEST).read_text())
        copied.append(name)
    for record in sorted(Path(pretraining_cache()).glob("*/settings.json")):
        kept = json.loads(record.read_text())
        if kept["settings"]["epochs"] == PRETRAINING_EPOCHS and kept["n_pool"] == N_POOL:
            kept.pop("epoch_losses", None)
            atomic_write_text(ROOT / "docs" / "results" / f"pretraining_{kept['dataset']}.json",
                              json.dumps(kept, indent=2, sort_keys=True) + "\n")
            copied.append(f"pretraining of {kept['dataset']}")
    return copied


def pretraining_costs() -> list[str]:
    """The seconds each data set's pretraining took, from its cache record."""
    lines = []
    for dataset in DATASETS:
        path = ROOT / "docs" / "results" / f"pretraining_{dataset}.json"
        if path.exists():
            kept = json.loads(path.read_text())
            lines.append(f"- SimCLR pretraining of {dataset} ({kept['n_pool']:,} images, "
                         f"{kept['settings']['epochs']} epochs, on the {kept['device']}): "
                         f"{kept['seconds']:.0f} s, once for every run of every experiment.")
    return lines


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
    parser.add_argument("--gather", type=Path, metavar="RESULTS",
                        help="first copy the experiments' rounds from their output folders "
                        "under RESULTS to docs/results")
    args = parser.parse_args(argv)
    if args.gather is not None:
        print("gathered:", ", ".join(gather(args.gather)) or "nothing")
    text = tables(args.results)
    if args.write:
        write_page(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
