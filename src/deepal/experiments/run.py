"""One run of an experiment: its pool (with its fixed validation set), its network and
strategy, built the same way whether it starts or resumes, and :func:`execute_run`, which runs
it round by round with a checkpoint after each.

:func:`execute_run` is self-contained and seeded from the run's seed only, so its results are
the same whichever process, worker count or machine executes it, and whether or not it was
interrupted and resumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepal.config.experiment import ExperimentConfig
from deepal.data.pool import _take
from deepal.errors import DeepALError
from deepal.experiments.checkpoint import capture_rng, restore_rng
from deepal.experiments.config import settings_hash
from deepal.experiments.loop import RoundResult, run_loop
from deepal.experiments.pretrained import with_pretraining
from deepal.experiments.spec import Emit, Event, RunSpec
from deepal.experiments.store import RunStore, atomic_write_text
from deepal.experiments.trainer import make_trainer
from deepal.resources import torch_threads
from deepal.sharded.configured import query_function

#: In a run's folder: the original training indices of its fixed validation set.
VALIDATION_FILE = "validation_idxs.txt"


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
    if training.test_batch_size is not None:
        params["test_args"] = {"batch_size": training.test_batch_size}
    optimizer = training.optimizer or defaults["optimizer"]
    params["optimizer"] = optimizer
    # The data set's optimiser keywords (e.g. SGD's momentum) apply only to that optimiser.
    base = defaults["optimizer_args"] if optimizer == defaults["optimizer"] else {}
    args = {**base, **training.optimizer_args}
    if training.lr is not None:
        args["lr"] = training.lr
    params["optimizer_args"] = args
    params.update(warm_start=training.warm_start, patience=training.patience,
                  monitor=training.monitor)
    optional = {"warm_start_epochs": training.warm_start_epochs,
                "epoch_samples": training.epoch_samples,
                "weight_decay_per_example": training.weight_decay_per_example,
                "weight_decay_params": None if training.weight_decay_params is None
                else list(training.weight_decay_params),
                "semi_supervised": None if training.semi_supervised is None
                else training.semi_supervised.model_dump()}
    params.update({key: value for key, value in optional.items() if value is not None})
    return params


def build_net(config: ExperimentConfig, dataset: str, progress: bool = False) -> Any:
    from deepal.nets.registry import get_net

    return get_net(dataset, device=config.training.device, net=config.training.net,
                   params=net_params(config, dataset), progress=progress)


def load_dataset(config: ExperimentConfig, dataset: str) -> Any:
    from deepal.data.registry import get_dataset

    return get_dataset(dataset, data_dir=config.data.data_dir, n_pool=config.data.n_pool)


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
    from deepal.config.base import ConfigError
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
    """The keyword arguments of ``strategy``'s class: its options, and the loop's
    ``max_candidates`` unless they set their own."""
    options = dict(config.strategy_options.get(strategy, {}))
    if config.loop.max_candidates is not None:
        options.setdefault("max_candidates", config.loop.max_candidates)
    return options


@dataclass
class LiveRun:
    """A run's pool and strategy, and the results rows of its rounds so far."""

    pool: RunPool
    strategy: Any
    rows: list[dict[str, Any]]


def build_run(spec: RunSpec, checkpoint: dict[str, Any] | None) -> LiveRun:
    """The run's pool and strategy as they are at the start (``checkpoint`` ``None``) or at
    the end of the checkpoint's round. Both are built by the same steps from the run's seed
    (the order of a fresh run, which ``deepal run`` has always followed); a checkpoint then
    gives back the labeled set, what the strategy learned and the random states."""
    from deepal.seeding import seed_everything
    from deepal.strategies.registry import get_strategy

    config = spec.config
    seed_everything(spec.seed)
    pool = run_pool(config, spec.dataset, spec.seed)
    net = build_net(config, spec.dataset, progress=spec.progress)
    pool.data.initialize_labels(config.loop.n_init_labeled, random_state=spec.seed,
                                balanced=config.loop.initial == "balanced")
    options = with_pretraining(config, spec.dataset, pool, net,
                               strategy_options(config, spec.strategy))
    strategy = get_strategy(spec.strategy)(pool.data, net, **options)
    if checkpoint is None:
        return LiveRun(pool, strategy, [])
    pool.data.labeled_idxs[:] = checkpoint["labeled"].numpy()
    try:
        strategy.load_state_dict(checkpoint["strategy"])
    except DeepALError as error:
        raise DeepALError(f"cannot resume run {spec.id} ({error}): delete "
                          f"{Path(spec.output) / 'runs' / spec.id} to run it again from the "
                          "start") from error
    restore_rng(checkpoint["rng"])
    return LiveRun(pool, strategy, list(checkpoint["rounds"]))


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
    with torch_threads(spec.threads), store.claim():  # a second process on it is refused
        return _execute_run(spec, store, emit or _ignore)


def _ignore(event: Event) -> None:
    pass


def _execute_run(spec: RunSpec, store: RunStore, emit: Emit) -> dict[str, Any]:
    store.remove_stale()
    sizes = spec.config.query_sizes()
    checkpoint = store.load()
    start = None if checkpoint is None else int(checkpoint["round"])
    if start is not None and start >= len(sizes):
        emit({"event": "done", "run": spec.id, "rounds": start, "skipped": True})
        return {"run": spec.id, "rounds": start, "resumed_from": start}
    live = build_run(spec, checkpoint)
    if start is None and len(live.pool.validation_idxs):
        atomic_write_text(store.folder / VALIDATION_FILE,
                          " ".join(map(str, live.pool.validation_idxs.tolist())) + "\n")
    data, net = live.strategy.dataset, live.strategy.net
    emit({"event": "start", "run": spec.id, "round": start or 0, "n_round": len(sizes),
          "n_pool": data.n_pool, "n_test": data.n_test, "device": str(net.device),
          "threads": spec.threads, "strategy_class": type(live.strategy).__name__})
    with query_function(spec.config.query, live.strategy) as query:
        run_loop(live.strategy, sizes, len(sizes), on_round=_Recorder(spec, store, live, emit),
                 resume_after=start,
                 train=make_trainer(live.strategy, spec.config.training, spec.seed,
                                    live.pool.validation_data()),
                 test_mc_samples=spec.config.loop.test_mc_samples, query=query)
    emit({"event": "done", "run": spec.id, "rounds": len(sizes)})
    return {"run": spec.id, "rounds": len(sizes), "resumed_from": start}


class _Recorder:
    """After each round: its results row, the checkpoint, and a progress event."""

    def __init__(self, spec: RunSpec, store: RunStore, live: LiveRun, emit: Emit) -> None:
        from deepal import __version__

        self.spec, self.store, self.live, self.emit = spec, store, live, emit
        self.n_round = len(spec.config.query_sizes())
        self.fixed = {"dataset": spec.dataset, "strategy": spec.strategy, "seed": spec.seed,
                      "config_hash": settings_hash(spec.config.run_settings(spec.strategy)),
                      "deepal_version": __version__, "threads": spec.threads}

    def __call__(self, result: RoundResult) -> None:
        strategy = self.live.strategy
        self.live.rows.append({
            **self.fixed, "round": result.round, "n_labeled": result.n_labeled,
            "n_queried": len(result.queried), "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss, "train_seconds": round(result.train_seconds, 4),
            "query_seconds": round(result.query_seconds, 4),
            "epochs_trained": getattr(strategy.net, "epochs_trained", None),
            "queried": self.live.pool.pool_idxs[result.queried].tolist(),
        })
        self.store.save({
            "settings": self.fixed["config_hash"], "round": result.round,
            "labeled": torch_bool(strategy.dataset.labeled_idxs), "rng": capture_rng(),
            "strategy": strategy.state_dict(), "rounds": self.live.rows,
        })
        self.emit({"event": "round", "run": self.spec.id, "round": result.round,
                   "n_round": self.n_round, "n_labeled": result.n_labeled,
                   "test_accuracy": result.test_accuracy,
                   "train_seconds": result.train_seconds, "query_seconds": result.query_seconds})


def torch_bool(mask: np.ndarray) -> Any:
    """A copy of the boolean numpy ``mask`` as a tensor (what a checkpoint may hold)."""
    import torch

    return torch.from_numpy(np.array(mask, dtype=bool))
