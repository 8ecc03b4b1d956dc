"""Running an experiment: check it, write its manifest, hand its runs to a backend, gather
the results.

A run is one (data set, strategy, seed): see :mod:`deepal.experiments.run`. The pieces live
in their own modules: :mod:`~deepal.experiments.preflight` (checks before anything is
written), :mod:`~deepal.experiments.run` (one run), :mod:`~deepal.experiments.checkpoint`,
:mod:`~deepal.experiments.manifest` and :mod:`~deepal.experiments.backends`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepal.config.experiment import ExperimentConfig
from deepal.errors import DeepALError
from deepal.experiments import backends
from deepal.experiments.manifest import earlier_sessions, manifest, record_round, timestamp
from deepal.experiments.preflight import check_experiment, check_seeds
from deepal.experiments.pretrained import pretrain_dataset, uses_pretraining
from deepal.experiments.run import (
    VALIDATION_FILE,
    build_net,
    execute_run,
    load_dataset,
    run_pool,
)
from deepal.experiments.spec import Emit, Event, RunSpec
from deepal.experiments.store import RunStore, write_results, write_shared_manifest

__all__ = ["VALIDATION_FILE", "Emit", "Event", "RunSpec", "check_experiment", "check_seeds",
           "execute_run", "run_experiment", "run_pool"]


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
    progress: bool = False,
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
        Called with progress events (see :data:`~deepal.experiments.spec.Event`).
    config_text:
        The config file's text, kept in the output folder.
    keep_going:
        When a run fails, let the others run to the end, then raise
        :class:`~deepal.errors.RunsFailedError` naming every failed run. By default the
        first failure stops the other runs (each keeps its completed rounds) and is raised.
    progress:
        Show each network's training progress bars.

    Examples
    --------
    >>> from deepal.experiments.config import load_config
    >>> run_experiment(load_config("examples/digits.toml"), "results/digits")  # doctest: +SKIP
    """
    if workers < 1:
        raise DeepALError(f"--workers must be >= 1, got {workers}")
    if backend not in backends.BACKENDS:
        raise DeepALError(f"unknown backend {backend!r}: choose one of "
                          f"{', '.join(backends.BACKENDS)}")
    out = Path(output)
    specs = check_experiment(config, out, progress=progress)
    chosen = specs
    if seeds is not None:
        wanted = set(check_seeds(config, seeds))
        chosen = [spec for spec in specs if spec.seed in wanted]
    earlier = earlier_sessions(out)
    out.mkdir(parents=True, exist_ok=True)
    if uses_pretraining(config):  # once, so that parallel runs find it cached
        for dataset in dict.fromkeys(spec.dataset for spec in chosen):
            pretrain_dataset(config, dataset, load_dataset(config, dataset),
                             build_net(config, dataset))
    if config_text is not None:
        (out / "config.toml").write_text(config_text)
    started = timestamp()
    record = manifest(config, specs, config_text, started, earlier)
    session_id = record["sessions"][-1]["session_id"]
    write_shared_manifest(out, record)
    ids = [spec.id for spec in specs]

    def forward(event: Event) -> None:
        if event["event"] == "round":
            record_round(record, event, session_id)
            write_shared_manifest(out, record)
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
        write_shared_manifest(out, manifest(config, specs, config_text, started, earlier,
                                            session_id))
    return summaries
