"""An experiment's configuration: data sets x strategies x seeds, the loop's budget and the
training options, read from a TOML file and checked before any run starts."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


#: How the initial labels are drawn: uniformly, or the same number from each class.
INITIAL = ("random", "balanced")


class ConfigError(DeepALError):
    """An experiment configuration is malformed or asks for something impossible."""


@dataclass(frozen=True)
class TrainingConfig:
    """How the network is trained at every round (``None``: the data set's default).

    Attributes
    ----------
    net:
        Architecture name or ``package.module:ClassName``.
    epochs, optimizer, lr, batch_size:
        Training parameters; ``optimizer_args`` adds optimiser keywords (e.g. ``momentum``).
    warm_start:
        Continue from the previous round's weights instead of retraining from scratch.
    validation_fraction:
        Hold out this fraction of the labeled set for early stopping (0: no validation, train
        all ``epochs``).
    validation_size:
        Instead, a fixed validation set of this many pool examples, drawn once per run from
        the run's seed before the initial labels: it never enters the labeled set, is never
        queried, does not count as labels, and early-stops every round's training (as in Gal
        et al., 2017 and Kirsch et al., 2019). 0: none.
    weight_decay_per_example:
        ``c``: train with weight decay ``c / N`` for ``N`` labeled examples (Gal et al., 2017
        scale the prior's weight decay with the training set); ``None``: fixed.
    weight_decay_params:
        Names or name prefixes of the network's parameters that weight decay applies to (e.g.
        ``["fc1.weight"]``, a Keras regulariser on one layer); ``None``: all of them.
    patience:
        Stop after this many epochs without a better validation score, keeping the best
        weights.
    monitor:
        The validation score early stopping watches: ``"loss"`` (lower is better) or
        ``"accuracy"`` (higher is better, as Kirsch et al., 2019).
    epoch_samples:
        An epoch trains on this many examples drawn from the labeled set (each about
        ``epoch_samples / N`` times) while they outnumber its ``N`` labels, so a few labels
        still make many optimiser steps (Kirsch et al., 2019 use 5,056); ``None``: one pass.
    device:
        ``cpu``, ``cuda``...; default CUDA when available.
    """

    net: str | None = None
    epochs: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    warm_start: bool = False
    validation_fraction: float = 0.0
    validation_size: int = 0
    weight_decay_per_example: float | None = None
    weight_decay_params: tuple[str, ...] | None = None
    patience: int = 3
    monitor: str = "loss"
    epoch_samples: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: every combination of ``datasets`` x ``strategies`` x ``seeds`` is a
    run of the active learning loop with the same budget and training options.

    The loop starts from ``n_init_labeled`` random labels (``initial = "balanced"``: the
    same number of each class) and queries ``n_query`` examples per
    round, for ``n_round`` rounds or until ``budget`` labels (initial ones included) are
    reached; a budget that is not a multiple of ``n_query`` ends with a smaller round.
    Test accuracy is that of the trained network, or with ``test_mc_samples``, of the mean
    of that many MC-dropout samples (as Kirsch et al., 2019 report it).
    """

    name: str
    datasets: tuple[str, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    n_init_labeled: int
    n_query: int
    n_round: int
    budget: int
    data_dir: str | None = None
    n_pool: int | None = None
    max_candidates: int | None = None
    test_mc_samples: int | None = None
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    target_accuracy: float | None = None
    output: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    initial: str = "random"

    def query_sizes(self) -> list[int]:
        """Examples queried at rounds 1..n: ``n_query`` each, the last one possibly smaller so
        the labels end exactly at ``budget``."""
        extra = self.budget - self.n_init_labeled
        full, rest = divmod(extra, self.n_query)
        return [self.n_query] * full + ([rest] if rest else [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def run_settings(self, strategy: str | None = None) -> dict[str, Any]:
        """What decides a run's results, besides its data set, strategy and seed (so a resumed
        run must have the same): everything but the lists of runs, paths, device and
        resources. With ``strategy``, of the strategies' options only that one's count: adding
        another strategy with its options to an experiment leaves the earlier runs
        resumable."""
        settings = self.to_dict()
        if strategy is not None:
            own = settings["strategy_options"].get(strategy)
            settings["strategy_options"] = {} if own is None else {strategy: own}
        for key in ("name", "datasets", "strategies", "seeds", "data_dir", "output",
                    "target_accuracy", "cpus_per_run", "gpus_per_run"):
            settings.pop(key)
        settings["training"].pop("device")
        # Options added later are left out at their defaults, so earlier results resume.
        for key, default in (("validation_size", 0), ("weight_decay_per_example", None),
                             ("weight_decay_params", None), ("monitor", "loss"),
                             ("epoch_samples", None)):
            if settings["training"][key] == default:
                settings["training"].pop(key)
        if settings["initial"] == "random":
            settings.pop("initial")
        if settings["test_mc_samples"] is None:
            settings.pop("test_mc_samples")
        return settings


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable fingerprint of ``settings`` (JSON with sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- reading ----------------------------------------------------------------------------------

_TOP = {"name", "datasets", "strategies", "seeds", "target_accuracy", "output",
        "loop", "data", "training", "strategy_options", "resources"}
_SECTIONS: dict[str, set[str]] = {
    "loop": {"n_init_labeled", "n_query", "n_round", "budget", "max_candidates", "initial",
             "test_mc_samples"},
    "data": {"data_dir", "n_pool"},
    "training": {"net", "epochs", "optimizer", "lr", "optimizer_args", "batch_size",
                 "warm_start", "validation_fraction", "validation_size",
                 "weight_decay_per_example", "weight_decay_params", "patience", "monitor",
                 "epoch_samples", "device"},
    "resources": {"cpus_per_run", "gpus_per_run"},
}


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and check an experiment's TOML file (see ``examples/digits.toml``).

    Raises
    ------
    ConfigError
        The file is missing, is not TOML, has an unknown key or an impossible value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    return parse_config(raw, default_name=path.stem)


def parse_config(raw: dict[str, Any], default_name: str = "experiment") -> ExperimentConfig:
    """An :class:`ExperimentConfig` from the parsed TOML tables ``raw``, with every value
    checked; names of data sets, strategies and networks are only checked by
    :func:`deepal.experiments.runner.check_experiment`, which imports them."""
    _no_unknown_keys(raw, _TOP, "the config")
    for section, keys in _SECTIONS.items():
        _no_unknown_keys(_table(raw, section), keys, f"[{section}]")
    loop, data, training = _table(raw, "loop"), _table(raw, "data"), _table(raw, "training")
    resources = _table(raw, "resources")

    datasets = _names(raw, "datasets")
    strategies = _names(raw, "strategies")
    seeds = raw.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
        raise ConfigError("seeds must be a non-empty list of integers, e.g. seeds = [1, 2, 3]")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds has duplicates: {seeds}")

    # required=True raises when absent, so these are ints
    n_init: int = _int(loop, "n_init_labeled", "[loop]", minimum=0, required=True) or 0
    n_query: int = _int(loop, "n_query", "[loop]", minimum=1, required=True) or 1
    n_round = _int(loop, "n_round", "[loop]", minimum=0)
    budget = _int(loop, "budget", "[loop]")
    if (n_round is None) == (budget is None):
        raise ConfigError("[loop] needs exactly one of n_round (rounds of querying) and budget "
                          "(labels at the end, initial ones included)")
    if budget is None:
        budget = n_init + n_query * (n_round or 0)
    elif budget < n_init:
        raise ConfigError(f"[loop] budget = {budget} must be at least n_init_labeled = {n_init}"
                          + (" (it is negative)" if budget < 0 else ""))
    n_round = math.ceil((budget - n_init) / n_query)
    max_candidates = _int(loop, "max_candidates", "[loop]", minimum=1)
    if max_candidates is not None and max_candidates < n_query:
        raise ConfigError(f"[loop] max_candidates = {max_candidates} is below n_query = "
                          f"{n_query}: a query cannot pick more examples than it scores")

    options = raw.get("strategy_options", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError("[strategy_options.NAME] tables hold keyword arguments of strategy NAME")
    for name in options:
        if name not in strategies:
            raise ConfigError(f"[strategy_options.{name}] names no strategy of this experiment "
                              f"({', '.join(strategies)})")

    initial = loop.get("initial", "random")
    if initial not in INITIAL:
        raise ConfigError(f"[loop] initial must be one of {', '.join(INITIAL)}, got {initial!r}")
    fraction = training.get("validation_fraction", 0.0)
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not (
        0.0 <= fraction < 1.0
    ):
        raise ConfigError(f"[training] validation_fraction must be in [0, 1), got {fraction!r}")
    validation_size = _int(training, "validation_size", "[training]", minimum=0) or 0
    if validation_size and fraction:
        raise ConfigError("[training] has both validation_fraction and validation_size: keep "
                          "one (a fraction of the labels, or a fixed set drawn from the pool)")
    per_example = training.get("weight_decay_per_example")
    if per_example is not None and (isinstance(per_example, bool) or not isinstance(
            per_example, (int, float)) or per_example < 0):
        raise ConfigError("[training] weight_decay_per_example must be a number >= 0, got "
                          f"{per_example!r}")
    decayed = training.get("weight_decay_params")
    if decayed is not None and (not isinstance(decayed, list) or not decayed
                                or not all(isinstance(p, str) and p for p in decayed)):
        raise ConfigError("[training] weight_decay_params must be a non-empty list of parameter "
                          f"names or prefixes, e.g. [\"fc1.weight\"], got {decayed!r}")
    from deepal.nets.net import MONITORS

    monitor = training.get("monitor", "loss")
    if monitor not in MONITORS:
        raise ConfigError(f"[training] monitor must be one of {', '.join(MONITORS)}, got "
                          f"{monitor!r}")
    lr = training.get("lr")
    if lr is not None and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0):
        raise ConfigError(f"[training] lr must be a positive number, got {lr!r}")
    optimizer_args = training.get("optimizer_args", {})
    if not isinstance(optimizer_args, dict):
        raise ConfigError("[training] optimizer_args must be a table, e.g. {momentum = 0.9}")
    warm_start = training.get("warm_start", False)
    if not isinstance(warm_start, bool):
        raise ConfigError(f"[training] warm_start must be true or false, got {warm_start!r}")
    train = TrainingConfig(
        net=_str(training, "net", "[training]"),
        epochs=_int(training, "epochs", "[training]", minimum=1),
        optimizer=_str(training, "optimizer", "[training]"),
        lr=None if lr is None else float(lr),
        optimizer_args=dict(optimizer_args),
        batch_size=_int(training, "batch_size", "[training]", minimum=1),
        warm_start=warm_start,
        validation_fraction=float(fraction),
        validation_size=validation_size,
        weight_decay_per_example=None if per_example is None else float(per_example),
        weight_decay_params=None if decayed is None else tuple(decayed),
        patience=_int(training, "patience", "[training]", minimum=1) or 3,
        monitor=monitor,
        epoch_samples=_int(training, "epoch_samples", "[training]", minimum=1),
        device=_str(training, "device", "[training]"),
    )

    target = raw.get("target_accuracy")
    if target is not None and (not isinstance(target, (int, float)) or not 0 < target <= 1):
        raise ConfigError(f"target_accuracy must be in (0, 1], got {target!r}")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name must be a non-empty string, got {name!r}")
    return ExperimentConfig(
        name=name,
        datasets=datasets,
        strategies=strategies,
        seeds=tuple(int(s) for s in seeds),
        n_init_labeled=n_init,
        n_query=n_query,
        n_round=n_round,
        budget=budget,
        data_dir=_str(data, "data_dir", "[data]"),
        n_pool=_int(data, "n_pool", "[data]", minimum=1),
        max_candidates=max_candidates,
        strategy_options={k: dict(v) for k, v in options.items()},
        training=train,
        target_accuracy=None if target is None else float(target),
        output=_str(raw, "output", "the config"),
        cpus_per_run=_number(resources, "cpus_per_run", 1.0),
        gpus_per_run=_number(resources, "gpus_per_run", 0.0),
        initial=initial,
        test_mc_samples=_int(loop, "test_mc_samples", "[loop]", minimum=1),
    )


def smoke_config(config: ExperimentConfig, n_round: int = 2, n_pool: int | None = 3000,
                 epochs: int = 1, n_seeds: int = 1, max_candidates: int = 200
                 ) -> ExperimentConfig:
    """A tiny version of ``config`` to check it end to end in seconds: its first ``n_seeds``
    seeds, ``n_round`` rounds, the first ``n_pool`` training examples (``None``: all), at
    most ``epochs`` epochs, at most ``max_candidates`` scored per query, at most 4 MC-dropout
    samples (test included) and 1,000 BatchBALD configurations, and a name ending in
    ``-smoke``. Everything else (networks, strategies, validation, initial labels) is
    unchanged."""
    if n_round < 1 or n_seeds < 1 or epochs < 1:
        raise ConfigError("a smoke test needs n_round, n_seeds and epochs >= 1")
    caps = {"n_drop": 4, "n_configurations": 1000, "max_candidates": max_candidates}
    options = {name: {key: min(value, caps[key]) if key in caps else value
                      for key, value in opts.items()}
               for name, opts in config.strategy_options.items()}
    training = replace(config.training, epochs=min(config.training.epochs or epochs, epochs))
    rounds = min(n_round, config.n_round)
    return replace(
        config, name=f"{config.name}-smoke", seeds=config.seeds[:n_seeds], n_round=rounds,
        budget=min(config.budget, config.n_init_labeled + rounds * config.n_query),
        n_pool=n_pool if config.n_pool is None or n_pool is None else min(n_pool, config.n_pool),
        training=training, output=None, strategy_options=options,
        max_candidates=min(config.max_candidates or max_candidates, max_candidates),
        test_mc_samples=None if config.test_mc_samples is None else min(config.test_mc_samples,
                                                                        caps["n_drop"]),
    )


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table: write it as [{key}] followed by its keys")
    return value


def _no_unknown_keys(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}: known keys are "
                          f"{', '.join(sorted(known))}")


def _names(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a non-empty list of names, e.g. {key} = [\"...\"]")
    if len(set(value)) != len(value):
        raise ConfigError(f"{key} lists a name twice: {value}")
    return tuple(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(table: dict[str, Any], key: str, where: str, minimum: int | None = None,
         required: bool = False) -> int | None:
    value = table.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where} needs {key} (an integer)")
        return None
    if not _is_int(value):
        raise ConfigError(f"{where} {key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where} {key} must be >= {minimum}, got {value}")
    return int(value)


def _str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} {key} must be a string, got {value!r}")
    return value


def _number(table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"[resources] {key} must be a number >= 0, got {value!r}")
    return float(value)
