"""The ``deepal`` command."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from deepal import __version__
from deepal.config.pretraining import SELF_SUPERVISED
from deepal.config.training import SEMI_SUPERVISED_METHODS
from deepal.errors import DeepALError
from deepal.resources import DEFAULT_THREADS, passive_openmp_wait

if TYPE_CHECKING:
    from deepal.config.sharding import QuerySettings

#: Budgets when none is given: DeepAL's demo for the image sets, a small one for digits.
RUN_DEFAULTS: dict[str, tuple[int, int, int]] = {
    "digits": (100, 50, 10),
    "MNIST": (10000, 1000, 10),
    "FashionMNIST": (10000, 1000, 10),
    "SVHN": (10000, 1000, 10),
    "CIFAR10": (10000, 1000, 10),
}


#: Modules that add sub-commands: each has ``register(commands)``, which adds its parsers to the
#: ``argparse`` sub-parsers ``commands`` and sets ``handler=function(args) -> exit status`` on
#: each. Keep their imports light: heavy ones belong inside the handlers.
COMMAND_MODULES: tuple[str, ...] = (
    "deepal.experiments.cli",
    "deepal.labeling.cli",
)


def add_option(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """An option under its dashed name and DeepAL's underscore spelling."""
    spellings = [f"--{name}"]
    if "-" in name:
        spellings.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*spellings, **kwargs)


def add_query_options(parser: argparse.ArgumentParser) -> None:
    """``--query-backend``, ``--shards`` and ``--query-address``: where each query is computed
    (:class:`~deepal.config.sharding.QuerySettings`; read back by :func:`query_settings`)."""
    add_option(parser, "query-backend", metavar="local|ray",
               help="compute each query over a pool split into shards: ray (Ray actors) or "
               "local (workers in this process); the picks are the same (default: the "
               "strategy's own query, in one process)")
    add_option(parser, "shards", type=int, metavar="N",
               help="shards of the pool, one worker each (default 2; with --query-backend)")
    add_option(parser, "query-address", metavar="ADDRESS",
               help="the Ray cluster of the shards: auto, HOST:PORT or ray://HOST:PORT "
               "(default: a Ray started on this machine; with --query-backend ray)")


#: The query options' names in error messages.
_QUERY_OPTIONS = {"backend": "--query-backend", "shards": "--shards", "address": "--query-address"}


def query_settings(args: argparse.Namespace,
                   base: QuerySettings | None = None) -> QuerySettings:
    """The :class:`~deepal.config.sharding.QuerySettings` of :func:`add_query_options`'s
    options over ``base`` (settings read elsewhere, e.g. a config's ``[query]``), checked.

    Raises
    ------
    ConfigError
        Naming the option and the fix.
    """
    from deepal.config.base import validated
    from deepal.config.sharding import QuerySettings

    raw = {} if base is None else base.model_dump(exclude_none=True)
    given = {key: value for key, value in (("backend", args.query_backend),
                                           ("shards", args.shards),
                                           ("address", args.query_address))
             if value is not None}
    # An error names the option typed, or the config's key it was read from.
    names = {key: option if key in given else f"[query] {key}"
             for key, option in _QUERY_OPTIONS.items()}
    return validated(QuerySettings, {**raw, **given}, "", names)


class OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose refusals are one line (no usage block), like every other error
    of the command; sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            # argparse drops a value of "--" (``--seed=--``) without calling the option's type,
            # leaving an empty list where one value belongs.
            if action.nargs is None and action.type is not None and action.option_strings \
                    and getattr(parsed, action.dest, None) == []:
                self.error(f"argument {action.option_strings[0]}: expected one value")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="deepal", description="Deep active learning: the DeepAL loop and its strategies."
    )
    parser.add_argument("--version", action="version", version=f"deepal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        help="run the active learning loop and print the test accuracy of every round",
        description="Run the pool-based active learning loop of the DeepAL paper: train on "
        "the initial labels, then query, label and retrain for every round.",
    )
    add_option(run, "dataset-name", default="digits", metavar="NAME",
                help="MNIST, FashionMNIST, SVHN, CIFAR10 or digits (default: digits, embedded)")
    add_option(run, "strategy-name", default="EntropySampling", metavar="NAME",
                help="a strategy (see `deepal list`) or package.module:ClassName "
                "(default: EntropySampling)")
    add_option(run, "n-init-labeled", type=int, metavar="N",
                help="initial labeled examples, chosen at random (default: 100 for digits, "
                "10000 otherwise)")
    add_option(run, "n-query", type=int, metavar="N",
                help="examples queried per round (default: 50 for digits, 1000 otherwise)")
    add_option(run, "n-round", type=int, metavar="N", help="rounds of querying (default: 10)")
    add_option(run, "seed", type=int, default=1, help="random seed (default: 1)")
    add_option(run, "n-epoch", type=int, metavar="N",
                help="training epochs per round (default: the data set's)")
    add_option(run, "n-pool", type=int, metavar="N",
                help="use only the first N training examples as the pool (DeepAL used 40000)")
    add_option(run, "data-dir", metavar="DIR",
                help="folder with the data sets' files (default: $DEEPAL_DATA or ./data)")
    add_option(run, "device", metavar="DEVICE",
                help="cpu, cuda, cuda:1, mps... (default: cuda when available)")
    add_option(run, "net", metavar="NAME",
                help="network: MNIST_Net, SVHN_Net, CIFAR10_Net, MLP, ResNet18 or "
                "package.module:ClassName (default: the data set's)")
    add_option(run, "max-candidates", type=int, metavar="N",
                help="score only a random N of the unlabeled pool at each query (default: all)")
    add_option(run, "test-batch-size", type=int, metavar="N",
                help="examples per inference and scoring batch: larger is faster and takes "
                "more memory (default: 1000)")
    add_option(run, "semi-supervised", choices=SEMI_SUPERVISED_METHODS,
                help="train on the unlabeled pool too, with its default settings: fixmatch "
                "(augmented views of images; pseudo-labels for other data) or pseudo_label "
                "(default: labels only)")
    add_option(run, "features", choices=[SELF_SUPERVISED],
                help="the strategy embeds the pool with self-supervised features (SimCLR, "
                "pretrained once per data set and cached), so that TypiClust and ProbCover "
                "pick the very first batch as in their papers (default: the network's "
                "embeddings)")
    run.add_argument("--pretrained-init", action="store_true",
                     help="every round's classifier starts from the self-supervised weights "
                     "(pretrained once per data set and cached)")
    add_option(run, "threads", type=_positive_int, default=DEFAULT_THREADS, metavar="N",
               help=f"torch threads of the run (default: {DEFAULT_THREADS}; more help only on an "
               "idle machine), recorded with the results")
    add_option(run, "output", metavar="FILE",
               help="write the arguments, thread count and rounds as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    add_query_options(run)
    run.set_defaults(handler=command_run)

    listing = commands.add_parser("list", help="list data sets, strategies and networks")
    listing.set_defaults(handler=command_list)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def command_list(args: argparse.Namespace) -> int:
    from deepal.data.registry import DATASETS
    from deepal.nets.registry import ARCHITECTURES
    from deepal.strategies.registry import STRATEGIES

    print("data sets: ", ", ".join(DATASETS))
    print("strategies:", ", ".join(STRATEGIES))
    print("networks:  ", ", ".join(ARCHITECTURES))
    return 0


#: Options of ``deepal run`` by the setting they give, to name them in error messages.
RUN_OPTIONS = {
    "[loop] n_init_labeled": "--n-init-labeled", "[loop] n_query": "--n-query",
    "[loop] n_round": "--n-round", "[loop] max_candidates": "--max-candidates",
    "[training] epochs": "--n-epoch", "[training] test_batch_size": "--test-batch-size",
    "[training] device": "--device", "[training] net": "--net", "[data] n_pool": "--n-pool",
    "[data] data_dir": "--data-dir", "seeds.0": "--seed", "[resources] cpus_per_run": "--threads",
    "strategies.0": "--strategy-name", "datasets.0": "--dataset-name",
    "[query] backend": "--query-backend", "[query] shards": "--shards",
    "[query] address": "--query-address",
}


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment config (as its TOML tables) of ``deepal run``'s arguments: one data
    set, one strategy, one seed; unset options keep the data set's defaults."""
    from deepal.nets.registry import NET_DEFAULTS
    from deepal.plugins import canonical_name

    dataset = canonical_name(args.dataset_name, list(NET_DEFAULTS), "data set")
    defaults = dict(zip(("n_init_labeled", "n_query", "n_round"), RUN_DEFAULTS[dataset],
                        strict=True))
    given = {"n_init_labeled": args.n_init_labeled, "n_query": args.n_query,
             "n_round": args.n_round, "max_candidates": args.max_candidates}
    training = {"epochs": args.n_epoch, "test_batch_size": args.test_batch_size,
                "device": args.device, "net": args.net,
                "semi_supervised": None if args.semi_supervised is None
                else {"method": args.semi_supervised}}
    return {
        "name": "run", "datasets": [dataset], "strategies": [args.strategy_name],
        "seeds": [args.seed],
        "loop": {**defaults, **_set(given)},
        "data": _set({"data_dir": args.data_dir, "n_pool": args.n_pool}),
        "training": _set(training),
        "resources": {"cpus_per_run": float(args.threads)},
        "query": _set({"backend": args.query_backend, "shards": args.shards,
                       "address": args.query_address}),
        "strategy_options": ({args.strategy_name: {"features": args.features}}
                             if args.features else {}),
        **({"pretraining": {"init_classifier": True}} if args.pretrained_init else {}),
    }


def _set(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}


class _RunPrinter:
    """Prints ``deepal run``'s lines from its run's progress events."""

    def __init__(self, args: argparse.Namespace, config: Any) -> None:
        self.args, self.config = args, config
        self.device = "?"

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":
            self.device = event["device"]
            print(f"deepal {__version__}: {event['strategy_class']} on {self.config.datasets[0]} "
                  f"({event['n_pool']} pool, {event['n_test']} test), device {event['device']}, "
                  f"seed {self.args.seed}, {event['threads']} thread"
                  + ("s" if event["threads"] > 1 else ""), flush=True)
        elif event["event"] == "round":
            accuracy = event["test_accuracy"]
            shown = "-" if accuracy is None else f"{accuracy:.4f}"
            print(f"Round {event['round']}: {event['n_labeled']} labeled, test accuracy {shown} "
                  f"(train {event['train_seconds']:.1f} s, query {event['query_seconds']:.1f} s)",
                  flush=True)


def command_run(args: argparse.Namespace) -> int:
    """``deepal run``: a one-run experiment, checked and run by the same code as
    ``deepal experiment``, into a temporary folder; ``--output`` keeps its rows as JSON."""
    import tempfile

    from deepal.experiments.config import parse_config, settings_hash
    from deepal.experiments.runner import run_experiment
    from deepal.experiments.store import RESULTS, read_rows

    config = parse_config(run_settings(args), names=RUN_OPTIONS)
    if args.output:
        check_file_path(Path(args.output), "--output")
    printer = _RunPrinter(args, config)
    with tempfile.TemporaryDirectory(prefix="deepal-run-") as folder:
        run_experiment(config, folder, emit=printer, progress=not args.quiet)
        rows = read_rows(Path(folder) / RESULTS)
    if args.output:
        arguments = {**{k: v for k, v in vars(args).items() if k != "handler"},
                     "dataset_name": config.datasets[0], "n_init_labeled":
                     config.loop.n_init_labeled, "n_query": config.loop.n_query,
                     "n_round": config.n_round, "device": printer.device}
        _write_json(Path(args.output), {
            "deepal_version": __version__, "threads": config.resources.threads,
            "config_hash": settings_hash(config.run_settings()), "arguments": arguments,
            "rounds": rows,
        })
    return 0


def check_file_path(path: Path, option: str) -> None:
    """Refuse, before anything runs, a file path that names a folder or lies under a file.

    Raises
    ------
    DeepALError
        Naming the option and the fix.
    """
    if path.is_dir():
        raise DeepALError(f"{option} {path} is a folder: give a file name, e.g. "
                          f"{path / 'run.json'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise DeepALError(f"{option} {path}: {parent} is a file, not a folder: choose "
                              "another path")


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """The ``deepal`` command: parse ``argv`` and run its sub-command; a
    :class:`~deepal.errors.DeepALError` becomes one ``deepal: error:`` line and status 2."""
    passive_openmp_wait()  # before torch starts its thread pool
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except DeepALError as error:
        print(f"deepal: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
