"""Checks before an experiment writes anything: every name, the data files, each network
against its data (one forward pass), the optimiser, the strategies' options, the budget
against each pool, the query backend (Ray installed, its cluster answering), and earlier runs
in the output folder.

A bad setting fails here with one :class:`~deepal.errors.DeepALError` naming it and the fix,
before any folder is created."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepal.config.base import ConfigError
from deepal.config.experiment import ExperimentConfig
from deepal.config.pretraining import SELF_SUPERVISED
from deepal.data.pool import _take
from deepal.errors import DeepALError, first_line
from deepal.experiments.config import settings_hash
from deepal.experiments.pretrained import settings_of, uses_pretraining, wants_features
from deepal.experiments.run import build_net, run_pool, strategy_options
from deepal.experiments.spec import RunSpec
from deepal.experiments.store import RunStore
from deepal.experiments.trainer import validated_training
from deepal.sharded.configured import check_query_settings
from deepal.strategies.features import feature_strategies, takes_features


def check_experiment(config: ExperimentConfig, output: Path,
                     progress: bool = False) -> list[RunSpec]:
    """Check everything a run could fail on at its start, and list the runs (seed-major).

    Raises
    ------
    DeepALError
        With a message naming the problem and the fix.

    Examples
    --------
    >>> specs = check_experiment(load_config("examples/digits.toml"), Path("out"))  # doctest: +SKIP
    >>> [spec.id for spec in specs][:1]                                            # doctest: +SKIP
    ['digits-RandomSampling-seed1']
    """
    from deepal.nets.registry import NET_DEFAULTS
    from deepal.plugins import canonical_name
    from deepal.strategies.registry import get_strategy

    datasets = [canonical_name(name, list(NET_DEFAULTS), "data set") for name in config.datasets]
    classes = {name: get_strategy(name) for name in config.strategies}
    for name, cls in classes.items():
        # a strategy given fixed features needs no model (its instance says so)
        fixed = wants_features(config.strategy_options.get(name, {}))
        if config.loop.n_init_labeled == 0 and cls.needs_model and not fixed:
            raise ConfigError(f"{name} needs a trained model before its first query: set "
                              "[loop] n_init_labeled > 0 (or use RandomSampling only)")
    check_query_settings(config.query)
    data_dir = config.data.data_dir
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"[data] data_dir {data_dir!r} does not exist: create it or "
                          "fix the path (relative paths start from the current folder)")
    for dataset in datasets:
        _check_dataset(config, dataset, classes)
    # seed-major: an interrupted experiment has every strategy of its first seeds, which
    # compare, rather than every seed of its first strategies, which do not
    specs = [RunSpec(dataset, name, seed, config, str(output.resolve()),
                     threads=config.resources.threads, progress=progress)
             for dataset in datasets for seed in config.seeds for name in config.strategies]
    _check_earlier_runs(config, output, specs)
    return specs


def _check_dataset(config: ExperimentConfig, dataset: str, classes: dict[str, Any]) -> None:
    data = run_pool(config, dataset, config.seeds[0]).data
    loop = config.loop
    if config.query.sharded and config.query.n_shards > data.n_pool:
        raise ConfigError(f"[query] shards = {config.query.n_shards} exceeds the pool of "
                          f"{data.n_pool} {dataset} examples: use at most {data.n_pool}")
    if config.budget > data.n_pool:
        aside = config.training.validation_size
        raise ConfigError(f"[loop] the budget of {config.budget} labels exceeds the pool of "
                          f"{data.n_pool} {dataset} examples"
                          + (f" left beside the validation set of {aside}" if aside else ""))
    if loop.initial == "balanced" and loop.n_init_labeled % data.n_classes:
        raise ConfigError(f"[loop] initial = \"balanced\" draws the same number of each of "
                          f"the {data.n_classes} {dataset} classes: n_init_labeled = "
                          f"{loop.n_init_labeled} must be a multiple of {data.n_classes}")
    try:
        net = build_net(config, dataset)
    except ConfigError as error:  # the net's parameters, made of the [training] table
        raise ConfigError(f"[training] {error}") from None
    check_net_fits(config, net, data, dataset)
    check_pretraining(config, net, data, dataset)
    for name, cls in classes.items():
        _check_strategy(config, name, cls, data, net)


def _check_strategy(config: ExperimentConfig, name: str, cls: Any, data: Any, net: Any) -> None:
    """The strategy ``name`` can be built with its options over ``data`` and ``net``, and
    trains as the config asks."""
    options = strategy_options(config, name)
    if wants_features(options):  # the features' shape is checked when they are made
        if not takes_features(cls):
            raise ConfigError(f"[strategy_options.{name}] features = "
                              f"\"{SELF_SUPERVISED}\": {name} takes no features; "
                              f"these do: {', '.join(feature_strategies())}")
        options["features"] = np.zeros((data.n_pool, 1), dtype=np.float32)
    try:
        strategy = cls(data, net, random_state=0, **options)
    except TypeError as error:
        raise ConfigError(f"[strategy_options.{name}] does not fit {name}: {error}"
                          ) from error
    except DeepALError as error:  # an option's value, checked by the strategy
        raise ConfigError(f"[strategy_options.{name}] {error}") from None
    validated = config.training.validation_fraction or config.training.validation_size
    if validated and validated_training(strategy) is None:
        raise ConfigError(f"{name} trains its own way, without a validation split: "
                          "set [training] validation_fraction and validation_size to 0 "
                          "for it")


def check_pretraining(config: ExperimentConfig, net: Any, data: Any, dataset: str) -> None:
    """Where pretraining is used: its cache folder can be one, and its network (``[pretraining]
    net``, else the classifier's) takes the pool's inputs."""
    from deepal.nets.registry import get_architecture
    from deepal.pretraining.cache import checked_cache_dir

    if not uses_pretraining(config):
        return
    settings = settings_of(config)
    try:
        checked_cache_dir(settings.cache_dir)
        builder = net.net if settings.net is None else get_architecture(settings.net)
    except DeepALError as error:
        raise ConfigError(f"[pretraining] {error}") from None
    try:
        with torch.no_grad():
            builder().eval()(_first_inputs(data))
    except Exception as error:  # noqa: BLE001 - a user's class may fail in any way
        raise ConfigError(f"[pretraining] net cannot pretrain on {dataset}'s examples "
                          f"({first_line(error)}): choose a net for this data set") from None


def _first_inputs(data: Any) -> torch.Tensor:
    from deepal.data.batches import iter_batches

    first = np.arange(min(2, data.n_pool))
    return next(iter_batches(data.get_inputs(first), 2))[0]  # type: ignore[no-any-return]


def check_net_fits(config: ExperimentConfig, net: Any, data: Any, dataset: str) -> None:
    """The network's module takes a batch of the pool and gives one logit per class, its
    optimiser accepts its parameters and arguments, and the options that name its layers
    find them."""
    from deepal.nets.net import DROPOUT_TYPES, OPTIMIZERS, weight_decay_groups

    module = _built(net)
    name = type(module).__name__
    if config.training.weight_decay_params is not None:  # names must exist in the net
        weight_decay_groups(module, list(config.training.weight_decay_params), [])
    if config.loop.test_mc_samples and not any(isinstance(m, DROPOUT_TYPES)
                                               for m in module.modules()):
        raise ConfigError(f"[loop] test_mc_samples needs dropout layers, and {name} has none: "
                          "remove the key or choose a net with nn.Dropout layers")
    _forward_one_batch(module, data, dataset)
    try:
        OPTIMIZERS[net.params["optimizer"]](module.parameters(), **net.params["optimizer_args"])
    except (ValueError, TypeError) as error:
        raise ConfigError(f"[training] optimizer {net.params['optimizer']} refuses "
                          f"{name}'s parameters or its arguments "
                          f"{net.params['optimizer_args']}: {error}") from None


def _built(net: Any) -> torch.nn.Module:
    """The net's module, built as training will build it; a failure is the config's error."""
    try:
        module = net.net()
    except Exception as error:  # noqa: BLE001 - a user's class may fail in any way
        reason = first_line(error)
        raise ConfigError(f"[training] net cannot be built without arguments ({reason}): give "
                          "a torch.nn.Module class whose arguments all have defaults") from None
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"[training] net gives a {type(module).__name__}, not a "
                          "torch.nn.Module: give a module class or a function returning one")
    return module


def _forward_one_batch(module: torch.nn.Module, data: Any, dataset: str) -> None:
    from deepal.data.batches import iter_batches

    name = type(module).__name__
    first = np.arange(min(2, data.n_pool))
    x = next(iter_batches(data.handler(_take(data.X_train, first), data.Y_train[first]), 2))[0]
    shape = tuple(x.shape[1:])
    try:
        with torch.no_grad():
            output = module.eval()(x)
    except Exception as error:  # noqa: BLE001 - any failure here is a misfit
        reason = first_line(error)
        raise ConfigError(f"[training] net {name} does not take {dataset}'s examples of shape "
                          f"{shape} ({reason}): choose a net for this data set, or the data "
                          "set's default by removing `net`") from None
    logits = output[0] if isinstance(output, (tuple, list)) else None
    if logits is None or logits.ndim != 2:
        raise ConfigError(f"[training] net {name} must return (logits, embedding) with logits "
                          f"of shape (batch, classes); it returned {type(output).__name__}: "
                          "see deepal.Net for the contract")
    if logits.shape[1] != data.n_classes:
        raise ConfigError(f"[training] net {name} gives {logits.shape[1]} logits per example "
                          f"and {dataset} has {data.n_classes} classes: choose a net with one "
                          "output per class")


def _check_earlier_runs(config: ExperimentConfig, output: Path, specs: list[RunSpec]) -> None:
    # Runs made before a run's settings held only its own strategy's options carry the hash
    # of every strategy's options; the same config still resumes them.
    whole = settings_hash(config.run_settings())
    accepted = {name: (settings_hash(config.run_settings(name)), whole)
                for name in config.strategies}
    for spec in specs:
        checkpoint = RunStore(output, spec.id).load()  # refuses a file it cannot load safely
        if checkpoint is not None and checkpoint["settings"] not in accepted[spec.strategy]:
            raise ConfigError(
                f"{output} holds run {spec.id} made with other settings (loop, data, "
                f"training or {spec.strategy}'s options changed): choose another --output "
                "folder, or delete that one to start again"
            )


def check_seeds(config: ExperimentConfig, seeds: Sequence[int]) -> list[int]:
    """``seeds`` in the config's order, or a clear error naming any the config lacks."""
    unknown = sorted(set(seeds) - set(config.seeds))
    if unknown or not seeds:
        raise DeepALError(
            f"seeds {unknown} are not among the config's seeds {list(config.seeds)}: choose "
            "some of those, or add them to `seeds` in the config"
        )
    return [seed for seed in config.seeds if seed in set(seeds)]
