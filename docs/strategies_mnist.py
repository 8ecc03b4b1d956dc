"""Tables and figures of docs/strategies-mnist.md: deepal's strategies beside RandomSampling
and MarginSampling on MNIST, at a low and a mid budget, from the experiments' per-run CSVs.

Reads the rounds of ``docs/results/modern_low`` and ``docs/results/modern_mid``: each holds the
experiment's ``manifest.json`` and ``rounds.csv``, every completed round of every run (finished
or not, without the queried indices), gathered from the ``runs/<RUN>/rounds.csv`` files that
``deepal experiment experiments/modern_low.toml`` (and ``modern_mid.toml``) wrote; pass
``--results results`` to read an experiment's own output folders instead. It writes:

- ``docs/strategies-mnist.md``: one table per budget (test accuracy at each label count as
  mean ± sample standard deviation over the seeds that reached it, AUBC over the runs that
  reached the budget, mean query and train seconds per round), the figures, the incomplete
  runs, observations computed from the same tables, and how to reproduce;
- ``docs/figures/strategies-mnist-low.png`` and ``-mid.png``: mean accuracy against labels with
  a band of one standard deviation over seeds, one colour and line style per strategy, the
  same in both figures.

AUBC is :func:`deepal.experiments.metrics.aubc`; the means and standard deviations are
:func:`deepal.experiments.metrics.mean_std` (``ddof=1``). :func:`deepal.experiments.report.
plot_dataset` is not reused: it takes summaries of complete runs only, puts its legend inside
the axes, and its 13 colours would repeat over these 20 strategies.

Usage (from the repository root; light: pandas and matplotlib only, no training)::

    .venv/bin/python docs/strategies_mnist.py
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from deepal.experiments.metrics import aubc, mean_std  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS_WANTED = 3
REFERENCES = ("RandomSampling", "MarginSampling")
#: Strategies that train networks of their own with the classifier (the net's training hook).
HOOKED = ("LossPrediction", "VAAL", "WAAL")


@dataclass(frozen=True)
class Budget:
    """One experiment: its key, title, output folder and config file."""

    key: str
    title: str
    output: Path
    config: str
    note: str = ""


BUDGETS = (
    Budget("low", "Low budget: 20 random initial labels + 10 per round, to 100",
           Path("modern_low"), "experiments/modern_low.toml"),
    Budget("mid", "Mid budget: 1,000 random initial labels + 1,000 per round, to 3,000",
           Path("modern_mid"), "experiments/modern_mid.toml"),
)

VAAL_NOTE = (
    "VAAL's only change from the GPU configs: `[strategy_options.VAAL] n_steps = 3000`, its VAE "
    "and discriminator trained for 3,000 steps a round (64 labeled + 64 unlabeled inputs each, "
    "3.2 passes over the pool) instead of its default, the paper's iteration count "
    "(the net's 50 epochs over the pool: 46,900 steps, which no run finished on the GPU in "
    "the time). Its train seconds include those steps.")

BATCHBALD_NOTE = (
    "BatchBALD with its current default posterior, consistent MC dropout (20 masks drawn once "
    "per query and shared by the whole pool, so sample k is one network, as its joint "
    "entropy assumes); the GPU tables above drew fresh masks per example, the former default. "
    "Otherwise the GPU configs' settings (the mid budget scores a random 5,000 candidates).")

# Runs completed on a 2-core CPU (torch 2.13, one run at a time) for what did not finish
# on the GPU, each experiment with RandomSampling and MarginSampling of its own.
SUPPLEMENTS = (
    Budget("low-cpu", "Low budget, the unfinished strategies completed on the CPU",
           Path("modern_low_cpu"), "experiments/modern_low_cpu.toml"),
    Budget("mid-cpu", "Mid budget, the unfinished strategies completed on the CPU",
           Path("modern_mid_cpu"), "experiments/modern_mid_cpu.toml"),
    Budget("low-ensemble-cpu", "Low budget, BALD on a deep ensemble (5 nets), on the CPU",
           Path("modern_low_ensemble_cpu"), "experiments/modern_low_ensemble.toml",
           ("BALDDropout here scores and predicts with the 5-net ensemble: its test accuracy is "
            "that of the mean prediction of its members, which is why it differs from the "
            "single nets already at round 0 (same labels), and its training costs 5 nets.")),
    Budget("mid-ensemble-cpu", "Mid budget, BALD on a deep ensemble (5 nets), on the CPU",
           Path("modern_mid_ensemble_cpu"), "experiments/modern_mid_ensemble.toml",
           ("BALDDropout here scores and predicts with the 5-net ensemble: its test accuracy is "
            "that of the mean prediction of its members, which is why it differs from the "
            "single nets already at round 0 (same labels), and its training costs 5 nets.")),
    Budget("low-vaal-cpu",
           "Low budget, VAAL with 3,000 VAE/discriminator steps a round, on the CPU",
           Path("modern_vaal_low_cpu"), "experiments/modern_vaal_low_cpu.toml", VAAL_NOTE),
    Budget("mid-vaal-cpu",
           "Mid budget, VAAL with 3,000 VAE/discriminator steps a round, on the CPU",
           Path("modern_vaal_mid_cpu"), "experiments/modern_vaal_mid_cpu.toml", VAAL_NOTE),
    Budget("low-batchbald-cpu", "Low budget, BatchBALD with consistent MC dropout, on the CPU",
           Path("modern_batchbald_low_cpu"), "experiments/modern_batchbald_low_cpu.toml",
           BATCHBALD_NOTE),
    Budget("mid-batchbald-cpu", "Mid budget, BatchBALD with consistent MC dropout, on the CPU",
           Path("modern_batchbald_mid_cpu"), "experiments/modern_batchbald_mid_cpu.toml",
           BATCHBALD_NOTE),
)

# An earlier CPU measurement with another protocol (low budget:
# 20 + 10 per round to 70 labels; mid: 1,000 + 1,000 to 3,000; 3 seeds; Adam 1e-3, 50
# epochs). Its CSVs are not in this repository: these numbers are quoted as reported then,
# only for the strategies that did not finish on the GPU, and are not comparable cell by cell
# with the tables above them.
EARLIER_CPU = {
    "RandomSampling": (0.644, 0.910),
    "MarginSampling": (0.666, 0.934),
    "VAAL": (0.596, 0.899),
    "CEAL": (0.550, 0.911),
    "ActiveLearningByLearning": (0.696, 0.922),
}


def read_rounds(output: Path) -> pd.DataFrame:
    """Every completed round of every run (finished or not): ``output/rounds.csv`` where the
    rounds were gathered into one file, else every ``output/runs/<RUN>/rounds.csv``."""
    if (output / "rounds.csv").is_file():
        return pd.read_csv(output / "rounds.csv")
    frames = [pd.read_csv(path).drop(columns=["queried"])
              for path in sorted((output / "runs").glob("*/rounds.csv"))]
    if not frames:
        raise SystemExit(f"{output} holds no runs/*/rounds.csv: run the experiment first")
    return pd.concat(frames, ignore_index=True)


def read_manifest(output: Path) -> dict[str, object]:
    return json.loads((output / "manifest.json").read_text())  # type: ignore[no-any-return]


def strategy_order(manifest: dict[str, object]) -> list[str]:
    """The config's strategies, RandomSampling and MarginSampling first."""
    config = manifest["config"]
    assert isinstance(config, dict)
    names = list(config["strategies"])
    return [s for s in REFERENCES if s in names] + [s for s in names if s not in REFERENCES]


def n_rounds(manifest: dict[str, object]) -> int:
    config = manifest["config"]
    assert isinstance(config, dict)
    return int(config["n_round"])


def cell(values: list[float]) -> str:
    """``mean ± std`` over seeds, with the seed count when fewer than three."""
    if not values:
        return "—"
    mean, std = mean_std(values)
    text = f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ± {std:.3f}"
    return text if len(values) >= SEEDS_WANTED else f"{text} ({len(values)})"


@dataclass
class Row:
    """One strategy at one budget."""

    strategy: str
    started: int            # runs with at least one completed round
    finished: int           # runs that reached the budget
    accuracy: dict[int, list[float]]   # label count -> accuracy per seed
    aubc: list[float]       # per finished run
    query_seconds: float | None   # mean over completed query rounds
    train_seconds: float | None   # mean over completed rounds (round 0 included)


def summarise(rounds: pd.DataFrame, order: list[str], last_round: int) -> list[Row]:
    rows = []
    for strategy in order:
        mine = rounds[rounds["strategy"] == strategy].sort_values(["seed", "round"])
        runs = {seed: run for seed, run in mine.groupby("seed")}
        finished = [run for run in runs.values() if run["round"].max() == last_round]
        accuracy = {int(n): group["test_accuracy"].tolist()
                    for n, group in mine.groupby("n_labeled")}
        querying = mine[mine["round"] > 0]
        rows.append(Row(
            strategy=strategy,
            started=len(runs),
            finished=len(finished),
            accuracy=accuracy,
            aubc=[aubc(run["n_labeled"].tolist(), run["test_accuracy"].tolist())
                  for run in finished],
            query_seconds=float(querying["query_seconds"].mean()) if len(querying) else None,
            train_seconds=float(mine["train_seconds"].mean()) if len(mine) else None,
        ))
    return rows


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table(rows: list[Row], labels: list[int]) -> list[str]:
    head = (["strategy", "runs (done/started)"] + [f"{n:,}" for n in labels]
            + ["AUBC", "query s/round", "train s/round"])
    lines = ["| " + " | ".join(head) + " |",
             "| --- | :---: | " + " | ".join("---:" for _ in head[2:]) + " |"]
    for row in rows:
        cells = ([f"`{row.strategy}`", f"{row.finished}/{row.started}"]
                 + [cell(row.accuracy.get(n, [])) for n in labels]
                 + [cell(row.aubc), seconds(row.query_seconds), seconds(row.train_seconds)])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def style_of(strategy: str, order: list[str]) -> dict[str, object]:
    """Random and Margin in black (solid, dashed); the others a tab10 colour by config order,
    solid for the first ten, dashed after, so every strategy looks the same in both figures."""
    if strategy in REFERENCES:
        return {"color": "black", "linestyle": "-" if strategy == REFERENCES[0] else "--",
                "linewidth": 2.2, "marker": "o" if strategy == REFERENCES[0] else "s"}
    others = [s for s in order if s not in REFERENCES]
    i = others.index(strategy)
    return {"color": plt.get_cmap("tab10")(i % 10), "linestyle": "-" if i < 10 else "--",
            "linewidth": 1.4, "marker": "ovs^D<>pP*h"[i % 10]}


def plot(rounds: pd.DataFrame, order: list[str], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for strategy in order:
        mine = rounds[rounds["strategy"] == strategy]
        if mine.empty:
            continue
        stats = mine.groupby("n_labeled")["test_accuracy"].agg(["mean", "std", "count"])
        std = stats["std"].fillna(0.0)
        style = style_of(strategy, order)
        few = int((stats["count"] < SEEDS_WANTED).sum())
        label = strategy if not few else f"{strategy} ({few} point(s) on < 3 seeds)"
        ax.plot(stats.index, stats["mean"], markersize=3.5, label=label, **style)  # type: ignore[arg-type]
        ax.fill_between(stats.index, stats["mean"] - std, stats["mean"] + std,
                        color=style["color"], alpha=0.10, linewidth=0)  # type: ignore[arg-type]
    ax.set_xticks(sorted(rounds["n_labeled"].unique()))
    ax.set_xlabel("labeled examples")
    ax.set_ylabel("test accuracy (MNIST, 10,000 test images)")
    ax.set_title(f"{title}\nmean over seeds, band: ± one standard deviation")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def observations(rows: list[Row], rounds: pd.DataFrame, labels: list[int]) -> list[str]:
    """Comparisons with Random and Margin read off the table (strategies with 3 finished
    runs), query-time outliers, and the spread of one and the same training's seconds."""
    by_name = {r.strategy: r for r in rows}
    complete = [r for r in rows if r.finished >= SEEDS_WANTED and r.strategy not in REFERENCES]
    last = labels[-1]

    def clear(values: list[float], ref: list[float]) -> bool:
        """Mean above the reference's by more than both standard deviations."""
        (mean, std), (ref_mean, ref_std) = mean_std(values), mean_std(ref)
        return mean - ref_mean > max(std, ref_std)

    lines = []
    for ref in REFERENCES:
        ref_row = by_name[ref]
        ref_aubc = mean_std(ref_row.aubc)[0]
        ref_last = mean_std(ref_row.accuracy[last])[0]
        above = sorted((r for r in complete if mean_std(r.aubc)[0] > ref_aubc),
                       key=lambda r: -mean_std(r.aubc)[0])
        names = ", ".join(f"`{r.strategy}` ({mean_std(r.aubc)[0]:.3f}"
                          + (", clear" if clear(r.aubc, ref_row.aubc) else "") + ")"
                          for r in above) or "none"
        lines.append(f"- AUBC above `{ref}` ({ref_aubc:.3f}), of the strategies with "
                     f"{SEEDS_WANTED} finished runs: {names}.")
        at_last = [r for r in complete if mean_std(r.accuracy[last])[0] > ref_last]
        names = ", ".join(f"`{r.strategy}`" + (" (clear)" if clear(r.accuracy[last],
                                                                 ref_row.accuracy[last]) else "")
                          for r in at_last) or "none"
        lines.append(f"- Accuracy at {last:,} labels above `{ref}` ({ref_last:.3f}): {names}.")
    best_aubc = max(complete, key=lambda r: mean_std(r.aubc)[0])
    worst_aubc = min(complete, key=lambda r: mean_std(r.aubc)[0])
    lines.append(f"- Highest AUBC: `{best_aubc.strategy}` ({cell(best_aubc.aubc)}); lowest: "
                 f"`{worst_aubc.strategy}` ({cell(worst_aubc.aubc)}).")
    margin_q = by_name["MarginSampling"].query_seconds or 0.0
    slow = sorted((r for r in rows if r.query_seconds is not None
                   and r.query_seconds > 10 * margin_q), key=lambda r: -(r.query_seconds or 0))
    names = ", ".join(f"`{r.strategy}` {seconds(r.query_seconds)} s" for r in slow) or "none"
    lines.append(f"- Query time over 10× MarginSampling's ({seconds(margin_q)} s/round): "
                 f"{names}.")
    first = rounds[(rounds["round"] == 0) & ~rounds["strategy"].isin(HOOKED)]
    fast, slow_ = first.loc[first["train_seconds"].idxmin()], first.loc[
        first["train_seconds"].idxmax()]
    lines.append(
        "- Train seconds reflect what else was running more than the strategy: round 0 is "
        f"the same training (the seed's {labels[0]:,} initial labels) for every strategy without a "
        f"training hook (all but {', '.join(f'`{h}`' for h in HOOKED)}), yet it took from "
        f"{fast['train_seconds']:.2f} s (`{fast['strategy']}` seed {fast['seed']}) to "
        f"{slow_['train_seconds']:.2f} s (`{slow_['strategy']}` seed {slow_['seed']}).")
    return lines


def incomplete(rows: list[Row], rounds: pd.DataFrame, last_round: int) -> list[str]:
    lines = []
    for row in rows:
        if row.finished >= SEEDS_WANTED:
            continue
        mine = rounds[rounds["strategy"] == row.strategy]
        done = mine.groupby("seed")["round"].max()
        per_seed = ", ".join(f"seed {seed}: {done[seed] if seed in done else 'no round'}"
                             for seed in range(1, SEEDS_WANTED + 1))
        if mine.empty:
            lines.append(f"- `{row.strategy}`: no run completed a round (not even round 0).")
        else:
            lines.append(f"- `{row.strategy}`: query rounds completed of {last_round} — "
                         f"{per_seed}.")
    return lines


def earlier_cpu_table(missing: list[str]) -> list[str]:
    names = [s for s in EARLIER_CPU if s in REFERENCES or s in missing]
    lines = ["| strategy | accuracy at 70 labels | accuracy at 3,000 labels |",
             "| --- | ---: | ---: |"]
    for name in names:
        low, mid = EARLIER_CPU[name]
        lines.append(f"| `{name}` | {low:.3f} | {mid:.3f} |")
    return lines


INTRO = """\
# Strategies on MNIST: accuracy per round and query time

deepal's strategies beside `RandomSampling` and `MarginSampling`, all from the
same two experiments (same initial labels per seed, same network and training), at a low and a
mid budget. Every number below is computed by
`docs/strategies_mnist.py` from the experiments' per-run
`runs/<RUN>/rounds.csv` files (kept in `docs/results/`); nothing is typed in by hand except
the earlier CPU measurement, which is labelled as such.

## What was run

- **Configs**: `experiments/modern_low.toml` (20 random
  initial labels, then 10 per round up to 100 labels: 8 query rounds) and
  `experiments/modern_mid.toml` (1,000 random initial
  labels, then 1,000 per round up to 3,000: 2 query rounds). Both: DeepAL's `MNIST_Net`,
  retrained from scratch every round with Adam (lr 0.001, batch 64, 50 epochs), each
  strategy with its defaults (10 MC-dropout samples), scoring the whole unlabeled pool; in the
  mid config `BatchBALD` and `BAIT` pick their greedy batch of 1,000 from a random 5,000
  candidates. Seeds 1, 2 and 3: a seed fixes the initial labels, so the round-0 models of a
  seed start from the same labeled set for every strategy.
- **BatchBALD's posterior**: in these runs `BatchBALD` drew fresh dropout masks per
  example, as every MC-dropout strategy here did; its default is now one set of masks for the
  whole pool, as its paper does, and these BatchBALD numbers are those of the former default.
  BatchBALD with the current default was run on the CPU at both budgets (see "Completed on
  the CPU").
- **Commands**:
  `deepal experiment experiments/modern_low.toml --workers 8 --quiet` and
  `deepal experiment experiments/modern_mid.toml --workers 8 --quiet`.
- **Hardware**: one NVIDIA H100 GPU with 16 CPU cores, torch 2.11.0+cu130, deepal 0.1.0;
  8 runs in parallel per experiment, each run with 1 CPU thread; {started}.
- **Time**: each experiment was stopped after about 9 minutes of wall time; the
  runs that had not reached the budget by then are listed below, and the tables use every
  round they completed.
- **Elsewhere on this page**: BALD on a deep-ensemble posterior
  (`experiments/modern_low_ensemble.toml`, `modern_mid_ensemble.toml`) was run on the CPU,
  with the runs that did not finish on the GPU (see "Completed on the CPU"). VAAL, which no
  GPU run finished, is there too, with its VAE and discriminator bounded to 3,000 steps a
  round (`experiments/modern_vaal_low_cpu.toml`, `modern_vaal_mid_cpu.toml`).

How to read the tables: each accuracy cell is the test accuracy (10,000 MNIST test images)
after training on that many labels, as mean ± sample standard deviation over the seeds that
reached it; a count in parentheses means fewer than 3 seeds. AUBC is the area under the
accuracy-vs-labels curve divided by the label range
(`deepal.experiments.metrics.aubc`), over the runs that reached the budget only. Query seconds
are the mean over completed query rounds; train seconds the mean over completed rounds,
round 0 included. Seconds are wall time of a run sharing the machine with the other runs, so
they compare strategies only roughly (see the notes).
"""

def span(values: pd.Series) -> str:
    """``min–max`` of some seconds (one value: that value)."""
    low, high = float(values.min()), float(values.max())
    return f"{low:.0f}" if f"{low:.0f}" == f"{high:.0f}" else f"{low:.0f}–{high:.0f}"


def why_incomplete(rounds: dict[str, pd.DataFrame], epochs: int) -> list[str]:
    """Why the unfinished strategies did not finish, with their seconds from the CSVs."""
    low, mid = rounds["low"], rounds["mid"]

    def of(frame: pd.DataFrame, strategy: str, round_: int | None = None) -> pd.DataFrame:
        mine = frame[frame["strategy"] == strategy]
        return mine if round_ is None else mine[mine["round"] == round_]

    queries = low[low["round"] > 0].groupby("strategy")["query_seconds"].mean()
    steps = epochs * -(-60_000 // 64)
    kcgr, ceal = "KCenterGreedyRobust", "CEAL"
    albl = "ActiveLearningByLearning"
    albl_low, albl_mid = of(low, albl), of(mid, albl)
    return [
        "Why they did not finish: runs are started in config order, strategy by strategy and "
        "seed by seed, 8 at a time, so the last strategies of the list started last; and:",
        "",
        "- `VAAL`: after the classifier, every round (round 0 included) trains a VAE and a "
        "discriminator from scratch for the net's epochs' worth of steps over the "
        f"60,000-example pool (`n_steps=None`: {epochs} × ⌈60,000 / 64⌉ = {steps:,} steps), "
        "so no VAAL run completed even round 0 in the time, in either budget. "
        "`[strategy_options.VAAL] n_steps = ...` bounds it: the CPU section below has VAAL "
        "with 3,000 steps a round at both budgets.",
        f"- `{kcgr}` (low budget): its query, a robust k-center search over the embeddings of "
        f"the whole pool, took {span(of(low, kcgr)[lambda d: d['round'] > 0]['query_seconds'])} s "
        f"per round, the {'slowest' if queries.idxmax() == kcgr else 'a slow'} query of the "
        "low budget, so its 8 rounds did not fit.",
        f"- `{ceal}` (mid budget): after its first query it trains on the labeled set plus the "
        "pool examples it pseudo-labels as confident (predictive entropy below `delta`); "
        f"that training took {span(of(mid, ceal, 1)['train_seconds'])} s, against "
        f"{span(of(mid, ceal, 0)['train_seconds'])} s at round 0 on the 1,000 labels alone.",
        f"- `{albl}`: last in the config, so its runs started last; each of its queries also "
        "runs its held strategies (random, margin, k-center greedy) over the pool: "
        f"{span(albl_low[albl_low['round'] > 0]['query_seconds'])} s per query at the low "
        f"budget, {span(albl_mid[albl_mid['round'] > 0]['query_seconds'])} s at the mid one.",
    ]


REPRODUCE = """\
## Reproduce

```bash
deepal experiment experiments/modern_low.toml --workers 8 --quiet   # -> results/modern_low
deepal experiment experiments/modern_mid.toml --workers 8 --quiet   # -> results/modern_mid
.venv/bin/python docs/strategies_mnist.py --results results  # this page and its figures
```

An interrupted experiment resumes where it stopped when the same command is run again with the
same output folder, so the unfinished runs above can be completed by re-running the commands.
`deepal report results/modern_low` writes the library's own report (complete runs only).
The rounds behind this page (without the queried indices) and the manifests are kept in
[`docs/results/modern_low`](results/modern_low/rounds.csv) and
[`modern_mid`](results/modern_mid/rounds.csv);
`.venv/bin/python docs/strategies_mnist.py` rebuilds the page from them (it reads them with
pandas: `pip install pandas`).
"""


def supplements(results: Path) -> list[str]:
    """A section per CPU-completed experiment present under ``results``: its table, beside its
    own RandomSampling and MarginSampling runs (CPU and GPU numbers differ even for the same
    seed and labels, e.g. round 0 at 20 labels: 0.434 on the GPU, 0.429 on the CPU, so they
    are not mixed into the tables above)."""
    present = [replace(b, output=results / b.output) for b in SUPPLEMENTS
               if (results / b.output / "manifest.json").is_file()]
    if not present:
        return []
    lines = ["", "## Completed on the CPU", "",
             "What did not finish on the GPU, run with the same configs on "
             "a 2-core CPU (torch 2.13.0+cpu, one run at a time, "
             "`--workers 1`), each experiment with RandomSampling and MarginSampling of its "
             "own, so each table compares within one machine."]
    for budget in present:
        manifest = read_manifest(budget.output)
        rounds = read_rounds(budget.output)
        labels = sorted(int(n) for n in rounds["n_labeled"].unique())
        rows = summarise(rounds, strategy_order(manifest), n_rounds(manifest))
        lines += ["", f"### {budget.title}", "",
                  f"Config `{budget.config}`, started "
                  f"{manifest['started']}; columns: labels.", ""]
        lines += table(rows, labels)
        if budget.note:
            lines += ["", budget.note]
        left = incomplete(rows, rounds, n_rounds(manifest))
        if left:
            lines += ["", "Not finished when this page was made:", "", *left]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "strategies-mnist.md")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results",
                        help="the folder holding modern_low/ and modern_mid/")
    args = parser.parse_args()
    budgets = [replace(b, output=args.results / b.output) for b in BUDGETS]

    manifests = {b.key: read_manifest(b.output) for b in budgets}
    starts = {str(manifests[b.key]["started"]) for b in budgets}
    started = (f"both experiments started at {starts.pop()} by their manifests, so they ran "
               "side by side: 16 runs at once" if len(starts) == 1 else
               ", ".join(f"`{b.output.name}` started {manifests[b.key]['started']}"
                         for b in budgets))
    lines = INTRO.format(started=started).splitlines()
    training = manifests["low"]["config"]
    assert isinstance(training, dict)
    epochs = int(training["training"]["epochs"])
    missing: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    for budget in budgets:
        manifest = manifests[budget.key]
        order = strategy_order(manifest)
        last_round = n_rounds(manifest)
        rounds = frames[budget.key] = read_rounds(budget.output)
        labels = sorted(int(n) for n in rounds["n_labeled"].unique())
        rows = summarise(rounds, order, last_round)
        figure = ROOT / "docs" / "figures" / f"strategies-mnist-{budget.key}.png"
        plot(rounds, order, f"MNIST, {budget.title.lower()}", figure)
        missing += [r.strategy for r in rows if r.finished < SEEDS_WANTED]
        lines += ["", f"## {budget.title}", "",
                  f"Config `{budget.config}`; columns: labels.", ""]
        lines += table(rows, labels)
        absent = [f"`{r.strategy}`" for r in rows if r.started == 0]
        lines += ["", f"![{budget.title}](figures/{figure.name})", ""]
        if absent:
            lines += [f"Not plotted (no completed round): {', '.join(absent)}.", ""]
        lines += [
                  "Observations, computed from the table (\"clear\": the gap exceeds both "
                  "standard deviations; with 3 seeds a smaller one is not a difference):", ""]
        lines += observations(rows, rounds, labels)
        incomplete_lines = incomplete(rows, rounds, last_round)
        if incomplete_lines:
            lines += ["", "Runs that did not reach the budget:", ""] + incomplete_lines
    lines += ["", "## Incomplete runs", "", *why_incomplete(frames, epochs), "",
              "### An earlier CPU measurement, for the strategies that did not finish here", "",
              "Another protocol (low budget 20 + 10 per round to **70** labels; mid budget "
              "1,000 + 1,000 to 3,000; 3 seeds; Adam 1e-3, 50 epochs) measured on a CPU, "
              "mean test accuracy over the seeds "
              "(its CSVs are not in the repository). Not comparable cell by cell with the "
              "tables above.", ""]
    lines += earlier_cpu_table(missing)
    lines += supplements(args.results)
    lines += ["", *REPRODUCE.splitlines()]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
