"""``deepal experiment`` and ``deepal report``: sub-commands registered in ``deepal.cli``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``experiment`` and ``report`` parsers to the ``deepal`` sub-parsers."""
    from deepal.cli import add_option, add_query_options

    experiment = commands.add_parser(
        "experiment",
        help="run strategies x data sets x seeds from a TOML config, resumable",
        description="Run every (data set, strategy, seed) of a TOML config (see "
        "examples/digits.toml) and write per-round results (results.csv), checkpoints and a "
        "manifest to the output folder. Running the same command again resumes an "
        "interrupted experiment from the last completed round of each run.",
    )
    experiment.add_argument("config", metavar="CONFIG.toml", help="the experiment's config")
    add_option(experiment, "output", metavar="DIR",
               help="output folder (default: the config's `output`, else results/NAME)")
    add_option(experiment, "workers", type=int, metavar="N",
               help="local processes running runs in parallel (default: CPU cores / "
               "cpus_per_run, at most the number of runs); results do not depend on it")
    add_option(experiment, "backend", choices=("local", "ray"), default="local",
               help="where whole runs go: local processes (default) or Ray tasks (needs "
               "deepal[ray]); --query-backend says where each query is computed")
    add_option(experiment, "address", metavar="ADDRESS",
               help="Ray cluster address of the runs (e.g. auto, ray://head:10001); default: "
               "a local Ray")
    add_query_options(experiment)
    experiment.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                            help="run only these of the config's seeds, e.g. to share them out "
                            "between machines (the output still lists every run; `python -m "
                            "deepal.experiments.published OUT --export DIR` adds them to an "
                            "export of the others)")
    experiment.add_argument("--keep-going", action="store_true",
                            help="when a run fails, let the other runs finish, then list every "
                            "failed run (default: the first failure stops the others; either "
                            "way completed rounds are kept and the same command resumes)")
    experiment.add_argument("--smoke", action="store_true",
                            help="a tiny version to check the config end to end: one seed, "
                            "2 rounds, 3000 pool examples, 1 epoch (into results/NAME-smoke)")
    experiment.add_argument("--quiet", action="store_true",
                            help="no progress output, only the final summary (for logs)")
    experiment.set_defaults(handler=command_experiment)

    report = commands.add_parser(
        "report",
        help="learning-curve plots and a Markdown report of an experiment's output folder",
        description="Write OUTPUT_DIR/report/: one learning-curve figure per data set (PNG "
        "and SVG, mean and standard deviation over seeds) and report.md with AUBC, final "
        "accuracy, labels to reach a target, time per round and the config. Plots need "
        'matplotlib: pip install "deepal[plot]".',
    )
    report.add_argument("output", metavar="OUTPUT_DIR", help="an experiment's output folder")
    add_option(report, "target", type=float, metavar="ACC",
               help="accuracy for the labels-to-reach column (default: the config's "
               "target_accuracy, else 98%% of the best final mean accuracy of each data set)")
    add_option(report, "no-plots", action="store_true",
               help="write the Markdown report without figures (no matplotlib needed)")
    report.set_defaults(handler=command_report)


def command_experiment(args: argparse.Namespace) -> int:
    """``deepal experiment``: check the config, say what will run, run it with progress."""
    from deepal.cli import query_settings
    from deepal.experiments.config import load_config, smoke_config
    from deepal.experiments.preflight import check_seeds
    from deepal.experiments.progress import Progress
    from deepal.experiments.runner import run_experiment

    config = load_config(args.config)
    if (args.query_backend, args.shards, args.query_address) != (None, None, None):
        config = config.replaced(query=query_settings(args, config.query).model_dump())
    if args.smoke:
        config = smoke_config(config)
    output = Path(args.output or config.output or Path("results") / config.name)
    seeds = config.seeds if args.seeds is None else check_seeds(config, args.seeds)
    n_runs = len(config.datasets) * len(config.strategies) * len(seeds)
    cores_per_run = (os.cpu_count() or 1) // config.resources.threads
    workers = args.workers if args.workers is not None else max(1, min(cores_per_run, n_runs))
    done = _rounds_done(config, seeds, output)
    if not args.quiet:
        print(f"{config.name}: {n_runs} runs ({len(config.datasets)} data sets x "
              f"{len(config.strategies)} strategies x {len(seeds)} seeds), "
              f"{config.n_round} rounds each, into {output}"
              + (f", resuming ({done} rounds done)" if done else ""), flush=True)
    # After the header: a live bar drawn first would share its line.
    progress = Progress(n_runs * (config.n_round + 1), done,
                        mode="quiet" if args.quiet else None)
    try:
        with _sigterm_interrupts():
            summaries = run_experiment(
                config, output, workers=workers, backend=args.backend, address=args.address,
                emit=progress, config_text=Path(args.config).read_text(), seeds=args.seeds,
                keep_going=args.keep_going)
    except KeyboardInterrupt:
        progress.close()
        print(f"deepal: interrupted; run the same command again to resume ({output})",
              file=sys.stderr)
        return 130
    finally:
        progress.close()
    resumed = sum(1 for s in summaries if s["resumed_from"] is not None)
    print(f"{len(summaries)} runs complete ({resumed} resumed or already done): "
          f"{output / 'results.csv'}; `deepal report {output}` writes the plots and report")
    return 0


def _rounds_done(config: Any, seeds: Sequence[int], output: Path) -> int:
    """Rounds the runs of ``seeds`` already completed in ``output``."""
    from deepal.experiments.store import RunStore, run_id

    done = 0
    for dataset in config.datasets:
        for strategy in config.strategies:
            for seed in seeds:
                checkpoint = RunStore(output, run_id(dataset, strategy, seed)).load()
                done += 0 if checkpoint is None else len(checkpoint["rounds"])
    return done


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the experiment runs: a cluster's scheduler or ``kill``
    stops it the same clean way (workers stopped, results.csv and manifest brought up to
    date), not in the middle of writing them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command_report(args: argparse.Namespace) -> int:
    from deepal.config import ConfigError
    from deepal.experiments.report import write_report

    if args.target is not None and not 0 < args.target <= 1:
        raise ConfigError(f"--target must be an accuracy in (0, 1], got {args.target}")
    path = write_report(Path(args.output), target=args.target, plots=not args.no_plots)
    print(f"report: {path}")
    return 0
