"""Running an experiment: check it, plan its runs, execute each run (resuming from its last
checkpoint), gather the results.

A run is one (data set, strategy, seed). :func:`execute_run` is self-contained and seeded
from the run's seed only, so its results are the same whichever process, worker count or
machine executes it, and whether or not it was interrupted and resumed.
"""

from __future__ import annotations

import io
import os
import pickle
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepal.data.pool import _take
from deepal.errors import DeepALError
from deepal.experiments.config import ConfigError, ExperimentConfig, settings_hash
from deepal.experiments.loop import RoundResult, run_loop
from deepal.experiments.store import (
    MANIFEST,
    SESSION_KEYS,
    RunStore,
    atomic_write_text,
    read_manifest,
    run_id,
    sessions_of,
    write_manifest,
    write_results,
)

#: In a run's folder: the original training indices of its fixed validation set.
VALIDATION_FILE = "validation_idxs.txt"

#: A progress event: ``{"event": "start" | "round" | "done", "run": RUN_ID, ...}``.
Event = dict[str, Any]
Emit = Callable[[Event], None]


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment and where it writes."""

    dataset: str
    strategy: str
    seed: int
    config: ExperimentConfig
    output: str
    threads: int = 1  # torch threads of the run: the config's cpus_per_run

    @property
    def id(self) -> str:
        return run_id(self.dataset, self.strategy, self.seed)


# -- building the pieces ------------------------------------------------------------------------


def net_params(config: ExperimentConfig, dataset: str) -> dict[str, Any]:
    """The :class:`~deepal.Net` parameters for ``dataset``: its defaults overridden by the
    config's training options."""
    from deepal.nets.registry import NET_DEFAULTS

    training = config.training
    defaults = NET_DEFAULTS[dataset][1]
    params: dict[str, Any] = {}
    if training.epochs is not None:
        params["n_epoch"] = training.epochs
    if training.batch_size is not None:
        params["train_args"] = {"batch_size": training.batch_size}
    optimizer = training.optimizer or defaults["optimizer"]
    params["optimizer"] = optimizer
    # The data set's optimiser keywords (e.g. SGD's momentum) apply only to that optimiser.
    base = defaults["optimizer_args"] if optimizer == defaults["optimizer"] else {}
    args = {**base, **training.optimizer_args}
    if training.lr is not None:
        args["lr"] = training.lr
    params["optimizer_args"] = args
    params["warm_start"] = training.warm_start
    params["patience"] = training.patience
    params["monitor"] = training.monitor
    if training.epoch_samples is not None:
        params["epoch_samples"] = training.epoch_samples
    if training.weight_decay_per_example is not None:
        params["weight_decay_per_example"] = training.weight_decay_per_example
    if training.weight_decay_params is not None:
        params["weight_decay_params"] = list(training.weight_decay_params)
    return params


def build_net(config: ExperimentConfig, dataset: str) -> Any:
    from deepal.nets.registry import get_net

    return get_net(dataset, device=config.training.device, net=config.training.net,
                   params=net_params(config, dataset))


def load_dataset(config: ExperimentConfig, dataset: str) -> Any:
    from deepal.data.registry import get_dataset

    return get_dataset(dataset, data_dir=config.data_dir, n_pool=config.n_pool)


@dataclass(frozen=True)
class RunPool:
    """A run's pool after its fixed validation set (if any) is set aside.

    Attributes
    ----------
    data:
        The pool the strategy sees: the data set without the validation examples.
    pool_idxs:
        The original training index of each of ``data``'s pool positions.
    validation_idxs:
        Original training indices of the validation set (empty without one).
    full:
        The data set as loaded, validation examples included.
    """

    data: Any
    pool_idxs: np.ndarray
    validation_idxs: np.ndarray
    full: Any

    def validation_data(self) -> Any:
        """The validation examples with their labels, or ``None``."""
        if not len(self.validation_idxs):
            return None
        return self.full.handler(_take(self.full.X_train, self.validation_idxs),
                                 self.full.Y_train[self.validation_idxs])


def run_pool(config: ExperimentConfig, dataset: str, seed: int) -> RunPool:
    """Load ``dataset`` and set aside ``validation_size`` examples drawn from ``seed`` (the
    same at every call, so a resumed run has the same validation set and pool positions)."""
    from deepal.data.pool import Data

    full = load_dataset(config, dataset)
    size = config.training.validation_size
    everything = np.arange(full.n_pool)
    if size == 0:  # the data set itself, so `deepal run` and a one-run config still agree
        return RunPool(full, everything, np.empty(0, dtype=np.int64), full)
    if size >= full.n_pool:
        raise ConfigError(f"[training] validation_size = {size} leaves nothing of the pool of "
                          f"{full.n_pool} {dataset} examples")
    order = np.random.default_rng([seed, 0x7A11D]).permutation(full.n_pool)
    validation, keep = np.sort(order[:size]), np.sort(order[size:])
    data = Data(_take(full.X_train, keep), full.Y_train[keep], full.X_test, full.Y_test,
                handler=full.handler, n_classes=full.n_classes, class_names=full.class_names)
    return RunPool(data, keep, validation, full)


def strategy_options(config: ExperimentConfig, strategy: str) -> dict[str, Any]:
    options = dict(config.strategy_options.get(strategy, {}))
    if config.max_candidates is not None:
        options.setdefault("max_candidates", config.max_candidates)
    return options


# -- checking before anything runs --------------------------------------------------------------


def check_experiment(config: ExperimentConfig, output: Path) -> list[RunSpec]:
    """Check everything a run could fail on at its start, and list the runs.

    Names of data sets, strategies, networks, optimisers and devices, the strategies'
    options, the data files, the budget against each pool, and earlier results in ``output``
    (a resumed run must have the same settings) are all checked here, so a bad config fails
    before any run starts.

    Raises
    ------
    DeepALError
        With a message naming the problem and the fix.
    """
    from deepal.nets.net import DROPOUT_TYPES, OPTIMIZERS, weight_decay_groups
    from deepal.nets.registry import NET_DEFAULTS
    from deepal.plugins import canonical_name
    from deepal.strategies.registry import get_strategy

    datasets = [canonical_name(name, list(NET_DEFAULTS), "data set") for name in config.datasets]
    classes = {name: get_strategy(name) for name in config.strategies}
    for name, cls in classes.items():
        if config.n_init_labeled == 0 and cls.needs_model:
            raise ConfigError(f"{name} needs a trained model before its first query: set "
                              "[loop] n_init_labeled > 0 (or use RandomSampling only)")
    if config.training.optimizer is not None and config.training.optimizer not in OPTIMIZERS:
        raise ConfigError(f"[training] optimizer {config.training.optimizer!r} is unknown: "
                          f"choose one of {', '.join(OPTIMIZERS)}")
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        raise ConfigError(f"[data] data_dir {config.data_dir!r} does not exist: create it or "
                          "fix the path (relative paths start from the current folder)")
    for dataset_name in datasets:
        data = run_pool(config, dataset_name, config.seeds[0]).data
        if config.budget > data.n_pool:
            aside = config.training.validation_size
            raise ConfigError(f"[loop] the budget of {config.budget} labels exceeds the pool of "
                              f"{data.n_pool} {dataset_name} examples"
                              + (f" left beside the validation set of {aside}" if aside else ""))
        if config.initial == "balanced" and config.n_init_labeled % data.n_classes:
            raise ConfigError(f"[loop] initial = \"balanced\" draws the same number of each of "
                              f"the {data.n_classes} {dataset_name} classes: n_init_labeled = "
                              f"{config.n_init_labeled} must be a multiple of {data.n_classes}")
        net = build_net(config, dataset_name)
        module = net.net()
        if config.training.weight_decay_params is not None:  # names must exist in the net
            weight_decay_groups(module, list(config.training.weight_decay_params), [])
        if config.test_mc_samples and not any(isinstance(m, DROPOUT_TYPES)
                                              for m in module.modules()):
            raise ConfigError(f"[loop] test_mc_samples needs dropout layers, and "
                              f"{type(module).__name__} has none: remove the key or choose a "
                              "net with nn.Dropout layers")
        for name, cls in classes.items():
            try:
                strategy = cls(data, net, random_state=0, **strategy_options(config, name))
            except TypeError as error:
                raise ConfigError(f"[strategy_options.{name}] does not fit {name}: {error}"
                                  ) from error
            validated = config.training.validation_fraction or config.training.validation_size
            if validated and _validated_training(strategy) is None:
                raise ConfigError(f"{name} trains its own way, without a validation split: "
                                  "set [training] validation_fraction and validation_size to 0 "
                                  "for it")

    # Runs made before a run's settings held only its own strategy's options carry the hash
    # of every strategy's options; the same config still resumes them.
    whole = settings_hash(config.run_settings())
    accepted = {name: (settings_hash(config.run_settings(name)), whole)
                for name in config.strategies}
    specs = []
    # seed-major: an interrupted experiment has every strategy of its first seeds, which
    # compare, rather than every seed of its first strategies, which do not
    for dataset_name in datasets:
        for seed in config.seeds:
            for name in config.strategies:
                spec = RunSpec(dataset_name, name, seed, config, str(output.resolve()),
                               threads=max(1, round(config.cpus_per_run)))
                checkpoint = RunStore(output, spec.id).load()
                if checkpoint is not None and checkpoint["settings"] not in accepted[name]:
                    raise ConfigError(
                        f"{output} holds run {spec.id} made with other settings (loop, data, "
                        f"training or {name}'s options changed): choose another --output "
                        "folder, or delete that one to start again"
                    )
                specs.append(spec)
    return specs


# -- one run ------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """The global random states the next round draws from: Python's, numpy's and torch's
    (CPU and CUDA). The strategy's own generator is saved with the strategy."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _validated_training(strategy: Any) -> Callable[[Any, Any], None] | None:
    """How to train ``strategy`` on a labeled part with early stopping on the rest, or
    ``None`` when it trains its own way (e.g. with pseudo-labels) and cannot."""
    from deepal.strategies.base import Strategy

    estimate = getattr(strategy, "posterior_estimate", None)
    if estimate is not None:  # ensembles and MC dropout train through their estimate
        return lambda fit, val: estimate.train(fit, val_data=val)
    if type(strategy).train is Strategy.train:
        return lambda fit, val: strategy.net.train(fit, val_data=val)
    return None


def make_trainer(strategy: Any, config: ExperimentConfig, seed: int,
                 validation: Any | None = None) -> Callable[[], None]:
    """Training for one round: the strategy's own; or on the whole labeled set with early
    stopping on the fixed ``validation`` set (``[training] validation_size``); or, with a
    validation fraction, on the rest of the labeled set with early stopping on a held-out
    part (drawn from the seed and the number of labels, so the same at every repetition)."""
    fraction = config.training.validation_fraction
    train_validated = _validated_training(strategy)
    if train_validated is None:
        return strategy.train  # type: ignore[no-any-return]
    if validation is not None:
        return lambda: train_validated(strategy.dataset.get_labeled_data()[1], validation)
    if fraction == 0:
        return strategy.train  # type: ignore[no-any-return]

    def train() -> None:
        data = strategy.dataset
        idxs = np.flatnonzero(data.labeled_idxs)
        n_val = int(round(fraction * len(idxs)))
        if n_val == 0 or n_val == len(idxs):
            strategy.train()
            return
        order = np.random.default_rng([seed, len(idxs)]).permutation(idxs)
        val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
        subset = lambda part: data.handler(_take(data.X_train, part), data.Y_train[part])  # noqa: E731
        train_validated(subset(fit), subset(val))

    return train


def _shared(dataset: Any) -> dict[str, Any]:
    """Objects a checkpointed strategy refers to but that are not saved with it: the data
    set (reloaded from its files) and its arrays."""
    return {"dataset": dataset, "X_train": dataset.X_train, "X_test": dataset.X_test}


class _Pickler(pickle.Pickler):
    def __init__(self, file: Any, shared: dict[str, Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = [(key, value) for key, value in shared.items() if value is not None]

    def persistent_id(self, obj: Any) -> str | None:
        for key, value in self.shared:
            if obj is value:
                return key
        return None


def _tensor_bytes_on_cpu(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, shared: dict[str, Any]) -> None:
        super().__init__(file)
        self.shared = shared

    def persistent_load(self, pid: Any) -> Any:
        return self.shared[pid]

    def find_class(self, module: str, name: str) -> Any:
        # A run checkpointed on a GPU resumes on a machine without one: the tensors' storages
        # load onto the CPU (and Net.__setstate__ moves the net there).
        if (module, name) == ("torch.storage", "_load_from_bytes") and \
                not torch.cuda.is_available():
            return _tensor_bytes_on_cpu
        return super().find_class(module, name)


def dump_strategy(strategy: Any) -> bytes:
    """The strategy with everything it learned (its network, ensemble members, training
    hooks, pseudo-labels, bandit weights, random generator...), without its data set."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, _shared(strategy.dataset)).dump(strategy)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise DeepALError(
            f"cannot checkpoint {type(strategy).__name__}: its state must be picklable "
            f"(no lambdas or local classes; a network is best given by class): {error}"
        ) from error
    return buffer.getvalue()


def load_strategy(blob: bytes, dataset: Any) -> Any:
    """A strategy saved by :func:`dump_strategy`, attached to the live ``dataset``."""
    return _Unpickler(io.BytesIO(blob), _shared(dataset)).load()


def execute_run(spec: RunSpec, emit: Emit | None = None) -> dict[str, Any]:
    """Run (or resume, or skip if complete) one run, checkpointing after every round, with
    ``spec.threads`` torch threads (the caller's setting is restored afterwards). Raises
    :class:`~deepal.errors.RunBusyError` if another process is running the same run into
    the same folder.

    Returns
    -------
    dict
        ``{"run": id, "rounds": number of rounds done, "resumed_from": round or None}``.
    """
    store = RunStore(Path(spec.output), spec.id)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, spec.threads))
    try:
        with store.claim():  # a second process on this run is refused
            return _execute_run(spec, store, emit)
    finally:
        torch.set_num_threads(threads)


def _execute_run(spec: RunSpec, store: RunStore, emit: Emit | None) -> dict[str, Any]:
    from deepal import __version__
    from deepal.seeding import seed_everything
    from deepal.strategies.registry import get_strategy

    emit = emit or (lambda event: None)
    config = spec.config
    store.remove_stale()
    sizes = config.query_sizes()
    checkpoint = store.load()
    start = 0 if checkpoint is None else int(checkpoint["round"])
    if checkpoint is not None and start >= len(sizes):
        emit({"event": "done", "run": spec.id, "rounds": start, "skipped": True})
        return {"run": spec.id, "rounds": start, "resumed_from": start}

    rows: list[dict[str, Any]] = []
    if checkpoint is None:
        # The same sequence as `deepal run`, so a one-run experiment reproduces it.
        seed_everything(spec.seed)
        pool = run_pool(config, spec.dataset, spec.seed)
        dataset = pool.data
        net = build_net(config, spec.dataset)
        dataset.initialize_labels(config.n_init_labeled, random_state=spec.seed,
                                  balanced=config.initial == "balanced")
        if len(pool.validation_idxs):
            atomic_write_text(store.folder / VALIDATION_FILE,
                              " ".join(map(str, pool.validation_idxs.tolist())) + "\n")
        strategy = get_strategy(spec.strategy)(dataset, net,
                                               **strategy_options(config, spec.strategy))
    else:
        pool = run_pool(config, spec.dataset, spec.seed)
        dataset = pool.data
        dataset.labeled_idxs[:] = checkpoint["labeled"]
        try:
            strategy = load_strategy(checkpoint["strategy"], dataset)
        except Exception as error:  # another deepal version, a CUDA model on a CPU machine...
            raise DeepALError(
                f"cannot resume run {spec.id} from {store.checkpoint_path} ({error}): "
                f"delete {store.folder} to run it again from the start"
            ) from error
        net = strategy.net
        restore_rng(checkpoint["rng"])
        rows = list(checkpoint["rounds"])

    fingerprint = settings_hash(config.run_settings(spec.strategy))
    emit({"event": "start", "run": spec.id, "round": start, "n_round": len(sizes)})

    def on_round(result: RoundResult) -> None:
        rows.append({
            "dataset": spec.dataset, "strategy": spec.strategy, "seed": spec.seed,
            "round": result.round, "n_labeled": result.n_labeled,
            "n_queried": len(result.queried), "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss, "train_seconds": round(result.train_seconds, 4),
            "query_seconds": round(result.query_seconds, 4),
            "epochs_trained": getattr(net, "epochs_trained", None),
            "queried": pool.pool_idxs[result.queried].tolist(), "config_hash": fingerprint,
            "deepal_version": __version__,
        })
        store.save({
            "settings": fingerprint, "round": result.round,
            "labeled": dataset.labeled_idxs.copy(), "rng": capture_rng(),
            "strategy": dump_strategy(strategy), "rounds": rows,
        })
        emit({"event": "round", "run": spec.id, "round": result.round, "n_round": len(sizes),
              "n_labeled": result.n_labeled, "test_accuracy": result.test_accuracy})

    run_loop(strategy, sizes, len(sizes), on_round=on_round,
             resume_after=None if checkpoint is None else start,
             train=make_trainer(strategy, config, spec.seed, pool.validation_data()),
             test_mc_samples=config.test_mc_samples)
    emit({"event": "done", "run": spec.id, "rounds": len(sizes)})
    return {"run": spec.id, "rounds": len(sizes),
            "resumed_from": None if checkpoint is None else start}


# -- the whole experiment -----------------------------------------------------------------------


def check_seeds(config: ExperimentConfig, seeds: Sequence[int]) -> list[int]:
    """``seeds`` in the config's order, or a clear error naming any the config lacks."""
    unknown = sorted(set(seeds) - set(config.seeds))
    if unknown or not seeds:
        raise DeepALError(
            f"seeds {unknown} are not among the config's seeds {list(config.seeds)}: choose "
            "some of those, or add them to `seeds` in the config"
        )
    return [seed for seed in config.seeds if seed in set(seeds)]


def describe_device(name: str | None) -> str:
    """The device runs of this config use on this machine, e.g. ``"cuda (NVIDIA H200)"``."""
    from deepal.nets.net import default_device

    device = torch.device(name) if name is not None else default_device()
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def earlier_sessions(output: Path) -> list[dict[str, Any]]:
    """The sessions recorded by the manifest already in ``output`` (none if there is none)."""
    path = output / MANIFEST
    if not path.exists():
        return []
    try:
        previous = read_manifest(output)
    except (OSError, ValueError) as error:
        raise DeepALError(
            f"cannot read {path} ({error}): it records where the runs so far were made; move "
            "it aside to start a new record, or restore it"
        ) from error
    return sessions_of(previous)


def timestamp() -> str:
    """Now, as the manifest records times: local time with its UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def manifest(config: ExperimentConfig, specs: list[RunSpec], config_text: str | None,
             started: str, earlier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What produced the results: the config, the versions, and every run's progress.

    ``sessions`` lists every call that ran the experiment (``earlier`` ones first), with its
    start, last update (see :func:`record_round`), versions, platform and device, so an
    experiment resumed on another machine says so; the top-level versions are the latest
    session's, ``started`` the first's."""
    from deepal import __version__

    runs = []
    for spec in specs:
        checkpoint = RunStore(Path(spec.output), spec.id).load()
        done = 0 if checkpoint is None else int(checkpoint["round"])
        runs.append({"id": spec.id, "dataset": spec.dataset, "strategy": spec.strategy,
                     "seed": spec.seed, "rounds_done": done, "n_round": config.n_round,
                     "complete": checkpoint is not None and done >= config.n_round})
    session = {
        "started": started, "updated": timestamp(),
        "deepal_version": __version__,
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "device": describe_device(config.training.device),
    }
    sessions = [*(earlier or []), session]
    return {
        **{key: session[key] for key in SESSION_KEYS},
        "started": sessions[0]["started"],
        "sessions": sessions,
        "config_hash": settings_hash(config.run_settings()),
        "config": config.to_dict(), "config_text": config_text,
        "runs": runs,
    }


def record_round(record: dict[str, Any], event: Event) -> None:
    """Bring a manifest made by :func:`manifest` up to date with a run's completed round.

    Written after every round, so that a session stopped without warning (a killed
    process, a machine taken back) still shows how far each run got and when it last
    made progress."""
    for run in record["runs"]:
        if run["id"] == event["run"]:
            run["rounds_done"] = event["round"]
            run["complete"] = event["round"] >= run["n_round"]
    record["updated"] = record["sessions"][-1]["updated"] = timestamp()


def run_experiment(
    config: ExperimentConfig,
    output: str | os.PathLike[str],
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    emit: Emit | None = None,
    config_text: str | None = None,
    seeds: Sequence[int] | None = None,
    keep_going: bool = False,
) -> list[dict[str, Any]]:
    """Run every (data set, strategy, seed) of ``config`` into ``output``, resuming what an
    earlier, interrupted call left; returns one summary per run.

    Parameters
    ----------
    seeds:
        Run only these of the config's seeds (to share the seeds out between machines or
        sessions); ``results.csv`` and the manifest still cover every run of the config found
        in ``output``. Default: all of them.
    workers:
        Local processes running runs in parallel (``backend="local"``); 1 runs them in this
        process. Results do not depend on it.
    backend:
        ``"local"`` or ``"ray"`` (each run a Ray task; ``address`` names the cluster, default
        a local Ray instance or the one already initialised).
    emit:
        Called with progress events (see :data:`Event`).
    config_text:
        The config file's text, kept in the output folder.
    keep_going:
        When a run fails, let the others run to the end, then raise
        :class:`~deepal.errors.RunsFailedError` naming every failed run. By default the
        first failure stops the other runs (each keeps its completed rounds) and is raised.
    """
    from deepal.experiments import backends

    if workers < 1:
        raise DeepALError(f"--workers must be >= 1, got {workers}")
    if backend not in backends.BACKENDS:
        raise DeepALError(f"unknown backend {backend!r}: choose one of "
                          f"{', '.join(backends.BACKENDS)}")
    out = Path(output)
    specs = check_experiment(config, out)
    chosen = specs
    if seeds is not None:
        wanted = set(check_seeds(config, seeds))
        chosen = [spec for spec in specs if spec.seed in wanted]
    earlier = earlier_sessions(out)
    out.mkdir(parents=True, exist_ok=True)
    if config_text is not None:
        (out / "config.toml").write_text(config_text)
    started = timestamp()
    record = manifest(config, specs, config_text, started, earlier)
    write_manifest(out, record)
    ids = [spec.id for spec in specs]

    def forward(event: Event) -> None:
        if event["event"] == "round":
            record_round(record, event)
            write_manifest(out, record)
        if event["event"] == "done":  # results.csv grows as runs finish
            write_results(out, ids)
        if emit is not None:
            emit(event)

    try:
        if backend == "ray":
            summaries = backends.run_ray(chosen, forward, address=address,
                                         keep_going=keep_going)
        else:
            summaries = backends.run_local(chosen, forward, workers=workers,
                                           keep_going=keep_going)
    finally:
        # Whatever happened, the folder reflects every round completed so far.
        for spec in chosen:
            RunStore(out, spec.id).catch_up_rows()
        write_results(out, ids)
        write_manifest(out, manifest(config, specs, config_text, started, earlier))
    return summaries
