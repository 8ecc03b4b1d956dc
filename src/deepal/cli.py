"""The ``deepal`` command."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepal import __version__
from deepal.errors import DeepALError, PoolExhaustedError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    add_option(run, "output", metavar="FILE", help="write the arguments and rounds as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
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


def command_run(args: argparse.Namespace) -> int:
    from deepal.data.registry import get_dataset
    from deepal.experiments.loop import RoundResult, run_loop
    from deepal.nets.registry import NET_DEFAULTS, get_net
    from deepal.plugins import canonical_name
    from deepal.seeding import seed_everything
    from deepal.strategies.registry import get_strategy

    dataset_name = canonical_name(args.dataset_name, list(NET_DEFAULTS), "data set")
    strategy_cls = get_strategy(args.strategy_name)
    n_init, n_query, n_round = RUN_DEFAULTS[dataset_name]
    n_init = n_init if args.n_init_labeled is None else args.n_init_labeled
    n_query = n_query if args.n_query is None else args.n_query
    n_round = n_round if args.n_round is None else args.n_round
    for option, value in (("n-init-labeled", n_init), ("n-query", n_query), ("n-round", n_round)):
        if value < 0:
            raise DeepALError(f"--{option} must be >= 0, got {value}")
    if args.n_epoch is not None and args.n_epoch < 1:
        raise DeepALError(f"--n-epoch must be >= 1, got {args.n_epoch}")
    if n_init == 0 and strategy_cls.needs_model:
        raise DeepALError(
            f"{strategy_cls.__name__} needs a trained model before its first query: "
            "use --n-init-labeled > 0 (or RandomSampling)"
        )
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise DeepALError(
            f"data folder {args.data_dir!r} does not exist: create it or fix --data-dir"
        )

    seed_everything(args.seed)
    dataset = get_dataset(dataset_name, data_dir=args.data_dir, n_pool=args.n_pool)
    budget = n_init + n_query * n_round
    if budget > dataset.n_pool:
        raise PoolExhaustedError(
            f"the budget n_init_labeled + n_query * n_round = {budget} exceeds the pool of "
            f"{dataset.n_pool} {dataset_name} examples"
        )
    if args.test_batch_size is not None and args.test_batch_size < 1:
        raise DeepALError(f"--test-batch-size must be >= 1, got {args.test_batch_size}")
    params: dict[str, Any] = {} if args.n_epoch is None else {"n_epoch": args.n_epoch}
    if args.test_batch_size is not None:
        params["test_args"] = {"batch_size": args.test_batch_size}
    net = get_net(dataset_name, device=args.device, net=args.net, params=params,
                  progress=not args.quiet)
    dataset.initialize_labels(n_init, random_state=args.seed)
    options = {} if args.max_candidates is None else {"max_candidates": args.max_candidates}
    strategy = strategy_cls(dataset, net, **options)

    print(f"deepal {__version__}: {strategy_cls.__name__} on {dataset_name} "
          f"({dataset.n_pool} pool, {dataset.n_test} test), device {net.device}, seed {args.seed}")

    def report(result: RoundResult) -> None:
        accuracy = "-" if result.test_accuracy is None else f"{result.test_accuracy:.4f}"
        print(f"Round {result.round}: {result.n_labeled} labeled, test accuracy {accuracy} "
              f"(train {result.train_seconds:.1f} s, query {result.query_seconds:.1f} s)",
              flush=True)

    results = run_loop(strategy, n_query=n_query, n_round=n_round, on_round=report)
    if args.output:
        arguments = {**{k: v for k, v in vars(args).items() if k != "handler"},
                     "dataset_name": dataset_name, "strategy_name": args.strategy_name,
                     "n_init_labeled": n_init, "n_query": n_query, "n_round": n_round,
                     "device": str(net.device)}
        _write_json(Path(args.output), {
            "deepal_version": __version__,
            "arguments": arguments,
            "rounds": [r.to_dict() for r in results],
        })
    return 0


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
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
