"""``deepal report``: learning-curve figures and a Markdown report of an experiment's output.

Figures need matplotlib (``pip install "deepal[plot]"``); the tables need nothing extra.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepal.errors import DeepALError
from deepal.experiments.metrics import aubc, final_accuracy, labels_to_reach, mean_curve, mean_std
from deepal.experiments.store import (
    MANIFEST,
    RESULTS,
    atomic_write_text,
    collect_rows,
    read_manifest,
    read_rows,
    sessions_of,
)

#: Colour-blind-friendly qualitative colours (Okabe-Ito, then tab10's), assigned to strategies
#: by their order in the config, so a strategy has the same colour in every figure.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd")


@dataclass
class StrategySummary:
    """One strategy on one data set, over its complete seeds."""

    strategy: str
    seeds: int
    aubc: tuple[float, float]
    final: tuple[float, float]
    reach: list[int | None]
    train_seconds: float
    query_seconds: float
    curve: tuple[np.ndarray, np.ndarray, np.ndarray]


def load_results(output: Path) -> list[dict[str, Any]]:
    """The rows of an experiment: ``results.csv``, else gathered from the runs' folders."""
    if (output / RESULTS).exists():
        rows = read_rows(output / RESULTS)
    elif (output / "runs").is_dir():
        rows = collect_rows(output)
    else:
        raise DeepALError(f"{output} holds no experiment results (no {RESULTS} or runs/): "
                          "run `deepal experiment CONFIG.toml` first")
    rows = [r for r in rows if r["test_accuracy"] is not None]
    if not rows:
        raise DeepALError(f"{output} holds no round with a test accuracy yet")
    return rows


def summarise(rows: list[dict[str, Any]], target: float | None,
              order: list[str]) -> dict[str, tuple[float | None, list[StrategySummary]]]:
    """Per data set: the target accuracy used and one summary per strategy (config order).

    Only complete runs (as many rounds as the longest run of that data set) count in the
    metrics, so a run still in progress does not skew the means."""
    result = {}
    for dataset, complete in _complete_runs(rows).items():
        finals = {s: mean_std([r[-1]["test_accuracy"] for r in runs_])[0]
                  for s, runs_ in complete.items()}
        # Without a target, 98% of the best strategy's final accuracy: a level every curve can
        # be compared at.
        goal = target if target is not None else (
            round(0.98 * max(finals.values()), 4) if finals else None)
        summaries = [_summary(strategy, complete[strategy], goal)
                     for strategy in sorted(complete, key=lambda s: _rank(s, order))]
        result[dataset] = (goal, summaries)
    return result


Run = list[dict[str, Any]]


def _complete_runs(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[Run]]]:
    """Per data set and strategy, the runs (rows by round) as long as the data set's
    longest; strategies without one are left out."""
    runs: dict[tuple[str, str, int], Run] = defaultdict(list)
    for row in rows:
        runs[(row["dataset"], row["strategy"], row["seed"])].append(row)
    by_dataset: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for (dataset, strategy, _), run_rows in sorted(runs.items()):
        by_dataset[dataset][strategy].append(sorted(run_rows, key=lambda r: r["round"]))
    complete = {}
    for dataset, strategies in by_dataset.items():
        longest = max(len(r) for runs_ in strategies.values() for r in runs_)
        kept = {s: [r for r in runs_ if len(r) == longest] for s, runs_ in strategies.items()}
        complete[dataset] = {s: r for s, r in kept.items() if r}
    return complete


def _summary(strategy: str, runs: list[Run], goal: float | None) -> StrategySummary:
    curves = [([r["n_labeled"] for r in run], [r["test_accuracy"] for r in run])
              for run in runs]
    querying = [r for run in runs for r in run if r["round"] > 0]
    return StrategySummary(
        strategy=strategy,
        seeds=len(curves),
        aubc=mean_std([aubc(x, y) for x, y in curves]),
        final=mean_std([final_accuracy(y) for _, y in curves]),
        reach=[labels_to_reach(x, y, goal) if goal is not None else None for x, y in curves],
        train_seconds=_mean_of_known([r["train_seconds"] for run in runs for r in run]),
        query_seconds=_mean_of_known([r["query_seconds"] for r in querying]),
        curve=mean_curve(curves),
    )


def _mean_of_known(values: list[float | None]) -> float:
    """The mean of the values recorded (0 if none is)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else 0.0


def _rank(strategy: str, order: list[str]) -> tuple[int, str]:
    return (order.index(strategy) if strategy in order else len(order), strategy)


def colour_of(strategy: str, order: list[str]) -> str:
    """The strategy's colour: by its place in ``order`` (else after it, alphabetically)."""
    return COLOURS[_rank(strategy, order)[0] % len(COLOURS)] if strategy in order else \
        COLOURS[(len(order) + sum(map(ord, strategy))) % len(COLOURS)]


def plot_dataset(dataset: str, summaries: list[StrategySummary], order: list[str],
                 folder: Path) -> list[Path]:
    """The learning curves of one data set: mean accuracy per strategy with a band of one
    standard deviation over seeds; written as PNG and SVG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DeepALError('plots need matplotlib: pip install "deepal[plot]" '
                          "(or pass --no-plots for the tables only)") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seeds = sorted({s.seeds for s in summaries})
    for summary in summaries:
        x, mean, std = summary.curve
        colour = colour_of(summary.strategy, order)
        ax.plot(x, mean, color=colour, marker="o", markersize=3, linewidth=1.6,
                label=f"{summary.strategy} (AUBC {summary.aubc[0]:.3f})")
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
    ax.set_xlabel("labeled examples")
    ax.set_ylabel("test accuracy")
    if seeds == [1]:
        ax.set_title(f"{dataset}: one seed")
    else:
        seeds_text = "/".join(str(s) for s in seeds)
        ax.set_title(f"{dataset}: mean and standard deviation over {seeds_text} seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    paths = [folder / f"{dataset}.png", folder / f"{dataset}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _pm(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.4f} ± {pair[1]:.4f}"


def _reach(values: list[int | None]) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return "never"
    text = f"{np.mean(reached):.0f}"
    return text if len(reached) == len(values) else f"{text} ({len(reached)}/{len(values)} seeds)"


def write_report(output: Path, target: float | None = None, plots: bool = True) -> Path:
    """Write ``output/report/report.md`` (and the figures); returns the report's path.

    Parameters
    ----------
    output:
        An experiment's output folder.
    target:
        Accuracy for the labels-to-reach column; default the config's ``target_accuracy``,
        else 98% of the best final mean accuracy of each data set.
    plots:
        Draw the figures (needs matplotlib).
    """

    output = Path(output)
    rows = load_results(output)
    manifest: dict[str, Any] = {}
    if (output / MANIFEST).exists():
        manifest = read_manifest(output)
    config = manifest.get("config") if manifest else {}
    if not isinstance(config, dict) or not isinstance(config.get("strategies", []), list):
        raise DeepALError(f"{output / MANIFEST} holds no readable config: restore it, or move "
                          "it aside to report the results alone")
    order = list(config.get("strategies", []))
    if target is None:
        target = config.get("target_accuracy")
    folder = output / "report"
    folder.mkdir(parents=True, exist_ok=True)

    lines = [f"# Experiment {config.get('name', output.name)}", ""]
    lines += _session_lines(manifest)
    for dataset, (goal, summaries) in summarise(rows, target, order).items():
        lines += _dataset_lines(dataset, goal, summaries, order, folder if plots else None)
    lines += _config_lines(manifest)
    path = folder / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _session_lines(manifest: dict[str, Any]) -> list[str]:
    """Where and when the experiment ran, and how to read the tables' numbers."""
    lines = []
    sessions = sessions_of(manifest) if manifest else []
    if len(sessions) > 1:
        lines += [f"Run in {len(sessions)} sessions:", ""]
    for session in sessions:
        device = f", {session['device']}" if session.get("device") else ""
        lines += [f"{'- ' if len(sessions) > 1 else ''}deepal {session.get('deepal_version')}, "
                  f"Python {session.get('python')}, torch {session.get('torch')}, on "
                  f"{session.get('platform')}{device}; started {session.get('started')}, "
                  f"updated {session.get('updated')}."]
    if sessions:
        lines += [""]
    lines += ["AUBC: area under the accuracy-vs-labels curve (trapezoidal), divided by the "
              "label range. Values are mean ± standard deviation over seeds (complete runs "
              "only). Seconds are means per round."]
    machines = {(s.get("platform"), s.get("torch"), s.get("device")) for s in sessions}
    if len(machines) > 1:
        # rows do not record their session, so a mean cannot be split by machine
        lines[-1] += (" The sessions above ran on different machines and these means mix "
                      "them: compare seconds only between runs of one session.")
    return [*lines, ""]


def _dataset_lines(dataset: str, goal: float | None, summaries: list[StrategySummary],
                   order: list[str], figures: Path | None) -> list[str]:
    """One data set's section: its figure (drawn into ``figures`` unless ``None``) and table."""
    lines = [f"## {dataset}", ""]
    if figures is not None and summaries:
        png, svg = plot_dataset(dataset, summaries, order, figures)
        lines += [f"![{dataset} learning curves]({png.name})", "", f"([SVG]({svg.name}))", ""]
    goal_text = "-" if goal is None else f"{goal:.4f}"
    lines += [f"| strategy | seeds | AUBC | final accuracy | labels to reach {goal_text} "
              "| train s/round | query s/round |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summaries:
        lines.append(f"| {s.strategy} | {s.seeds} | {_pm(s.aubc)} | {_pm(s.final)} | "
                     f"{_reach(s.reach)} | {s.train_seconds:.3f} | {s.query_seconds:.3f} |")
    return [*lines, ""]


def _config_lines(manifest: dict[str, Any]) -> list[str]:
    """The config as given and as resolved, when the manifest has them."""
    import json

    lines: list[str] = []
    if manifest.get("config_text"):
        lines += ["## Config", "", "```toml", manifest["config_text"].rstrip(), "```", ""]
    config = manifest.get("config", {})
    if config:
        lines += ["Resolved settings:", "", "```json",
                  json.dumps(config, indent=2, default=str), "```", ""]
    return lines
