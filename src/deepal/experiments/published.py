"""Tables of the published MNIST protocols (``docs/results.md``) from an experiment's
results: labels needed to reach each target accuracy, as mean, median and quartiles over
seeds, and the test error at the last label count; then the same for each seed.

``python -m deepal.experiments.published results/gal2017 --targets 0.90 0.95``

``--export docs/results/NAME`` also copies what ``docs/results/`` publishes of the experiment:
the rows of the seeds all of whose runs are complete (so an experiment still running, or
stopped mid-seed, publishes comparable seeds only), its ``config.toml`` and its manifest, with
every run's progress as of now and the list ``published_seeds``; the table is then that of
the exported rows. Exporting into a folder that already holds an export of the same settings
adds the new seeds to those there (seeds run on several machines or sessions with
``deepal experiment CONFIG --seeds ...``), and the manifest keeps every session of both.
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
from deepal.experiments.store import (
    MANIFEST,
    RESULTS,
    atomic_write_text,
    collect_rows,
    merge_sessions,
    read_manifest,
    read_rows,
    rows_to_csv,
    sessions_of,
    write_manifest,
)


def _fmt(value: float) -> str:
    return "never" if value == np.inf else f"{value:.0f}"


Curve = list[tuple[int, float]]  # (labels, test accuracy), by labels


def _curves(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, Curve]]:
    """The learning curve of each run, by (data set, strategy), then seed."""
    curves: dict[tuple[str, str], dict[int, Curve]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("test_accuracy") not in (None, ""):
            curves[(row["dataset"], row["strategy"])][int(row["seed"])].append(
                (int(row["n_labeled"]), float(row["test_accuracy"])))
    return {key: {seed: sorted(curve) for seed, curve in sorted(seeds.items())}
            for key, seeds in sorted(curves.items())}


def _reach(curve: Curve, target: float) -> int | None:
    return labels_to_reach([n for n, _ in curve], [a for _, a in curve], target)


def seed_table(rows: list[dict[str, Any]], targets: Sequence[float]) -> str:
    """A Markdown table, one line per run: the labels it needed to reach each target
    accuracy ("never" if it did not) and its test error at its last label count."""
    header = ["data set", "strategy", "seed",
              *(f"labels to {target:.0%}" for target in targets), "test error at last labels"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (dataset, strategy), seeds in _curves(rows).items():
        for seed, curve in seeds.items():
            reached = [_reach(curve, target) for target in targets]
            n, accuracy = curve[-1]
            cells = [dataset, strategy, str(seed),
                     *("never" if r is None else str(r) for r in reached),
                     f"{1.0 - accuracy:.2%} ({n} labels)"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def protocol_table(rows: list[dict[str, Any]], targets: Sequence[float]) -> str:
    """A Markdown table, one line per (data set, strategy): for each target accuracy, the
    labels needed as mean over seeds (or how many seeds never reach it) and median [lower
    quartile, upper quartile] (a seed that never reaches it counts as infinitely many), then
    the test error at the last label count as mean ± standard deviation."""
    header = ["data set", "strategy", "seeds"]
    for target in targets:
        header += [f"labels to {target:.0%} (mean)", f"labels to {target:.0%} median [q1, q3]"]
    header.append("test error at last labels")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (dataset, strategy), seeds in _curves(rows).items():
        cells = [dataset, strategy, str(len(seeds))]
        sorted_curves = list(seeds.values())
        for target in targets:
            reached = [_reach(c, target) for c in sorted_curves]
            finite = [r for r in reached if r is not None]
            missed = len(reached) - len(finite)
            mean = (f"{np.mean(finite):.0f}" if not missed
                    else f"never ({missed} of {len(reached)} seeds)")
            q1, median, q3 = quartiles(reached)
            cells += [mean, f"{_fmt(median)} [{_fmt(q1)}, {_fmt(q3)}]"]
        last = [c[-1] for c in sorted_curves]
        error, spread = mean_std([1.0 - a for _, a in last])
        labels = sorted({n for n, _ in last})
        cells.append(f"{error:.2%} ± {spread:.2%} ({'/'.join(map(str, labels))} labels)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def export_complete_seeds(output: Path, destination: Path) -> list[int]:
    """Copy the complete seeds of the experiment in ``output`` to ``destination`` (created):
    ``results.csv`` with their rows, ``config.toml``, and ``manifest.json`` with each run's
    ``rounds_done`` and ``complete`` read from its rows now and ``published_seeds``.

    If ``destination`` already holds an export of the same settings (``config_hash``), its
    other seeds stay: the new seeds are added, a seed exported again is replaced, and the
    manifest lists the sessions of both.

    Returns
    -------
    list[int]
        The seeds exported now: those whose every run (each data set and strategy of the
        config) has all its rounds.

    Raises
    ------
    DeepALError
        ``output`` has no manifest (not an experiment's folder) or no complete seed, or
        ``destination`` holds an export of other settings.
    """
    from deepal.errors import DeepALError

    if not (output / MANIFEST).exists():
        raise DeepALError(f"{output} has no {MANIFEST}: give an experiment's output folder")
    manifest = read_manifest(output)
    runs = manifest["runs"]
    rows = collect_rows(output, [run["id"] for run in runs])
    seeds = _complete_seeds(runs, rows)
    if not seeds:
        raise DeepALError(f"{output} has no seed whose runs are all complete yet")
    published = [r for r in rows if int(r["seed"]) in seeds]
    sessions = sessions_of(manifest)
    kept: list[int] = []
    if (destination / MANIFEST).exists():
        before = read_manifest(destination)
        if before.get("config_hash") != manifest.get("config_hash"):
            raise DeepALError(
                f"{destination} holds an export of other settings (config_hash "
                f"{before.get('config_hash')}, here {manifest.get('config_hash')}): export to "
                "another folder, or delete that one first"
            )
        kept = [seed for seed in before.get("published_seeds", []) if seed not in seeds]
        published += [r for r in read_rows(destination / RESULTS) if int(r["seed"]) in kept]
        sessions = merge_sessions(sessions_of(before), sessions)
        runs = _keep_earlier_runs(runs, before["runs"], kept)
    published.sort(key=lambda r: (r["dataset"], r["strategy"], r["seed"], r["round"]))
    destination.mkdir(parents=True, exist_ok=True)
    atomic_write_text(destination / RESULTS, rows_to_csv(published))
    if (output / "config.toml").exists():
        atomic_write_text(destination / "config.toml", (output / "config.toml").read_text())
    write_manifest(destination, {**manifest, "runs": runs, "sessions": sessions,
                                 "published_seeds": sorted(seeds + kept)})
    return seeds


def _keep_earlier_runs(runs: list[dict[str, Any]], earlier: list[dict[str, Any]],
                       kept: list[int]) -> list[dict[str, Any]]:
    """``runs``, with the earlier export's record of each run of a ``kept`` seed."""
    earlier_runs = {run["id"]: run for run in earlier}
    return [earlier_runs.get(run["id"], run) if int(run["seed"]) in kept else run
            for run in runs]


def _complete_seeds(runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[int]:
    """The seeds whose every run has all its rounds in ``rows``; each run's
    ``rounds_done`` and ``complete`` are set from its rows on the way."""
    rounds_done: dict[tuple[str, str, int], int] = defaultdict(int)
    for row in rows:
        key = (row["dataset"], row["strategy"], int(row["seed"]))
        rounds_done[key] = max(rounds_done[key], int(row["round"]))
    incomplete = set()
    for run in runs:
        run["rounds_done"] = rounds_done[(run["dataset"], run["strategy"], int(run["seed"]))]
        run["complete"] = run["rounds_done"] >= run["n_round"]
        if not run["complete"]:
            incomplete.add(int(run["seed"]))
    return sorted({int(run["seed"]) for run in runs} - incomplete)


def main(argv: Sequence[str] | None = None) -> int:
    from deepal.errors import DeepALError
    from deepal.experiments.report import load_results

    parser = argparse.ArgumentParser(prog="python -m deepal.experiments.published",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="an experiment's output folder")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95],
                        help="test accuracies to reach (default: 0.90 0.95)")
    parser.add_argument("--export", type=Path, metavar="DIR",
                        help="copy the complete seeds' rows, the config and the manifest to "
                             "DIR (e.g. docs/results/NAME) and tabulate those")
    args = parser.parse_args(argv)
    try:
        if args.export is not None:
            seeds = export_complete_seeds(args.output, args.export)
            held = read_manifest(args.export)["published_seeds"]
            print(f"exported seeds {', '.join(map(str, seeds))} to {args.export}"
                  + (f", which now holds seeds {', '.join(map(str, held))}"
                     if held != seeds else ""))
        source = args.output if args.export is None else args.export
        rows = load_results(source)
        print(protocol_table(rows, args.targets))
        print(seed_table(rows, args.targets), end="")
    except DeepALError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
