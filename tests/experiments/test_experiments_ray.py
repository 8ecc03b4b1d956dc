"""The Ray backend, on a local Ray instance started here, gives the local results, and
finishes an experiment that local processes began."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import deepal
from deepal import seed_everything
from deepal.experiments.config import load_config
from deepal.experiments.runner import run_experiment
from deepal.experiments.store import RunStore, read_rows

from _experiment_configs import comparable, write_config

ray = pytest.importorskip("ray", reason='the Ray backend needs pip install "deepal[ray]"')


class _Stop(Exception):
    pass


def _stop_after_round_1(event: dict) -> None:
    if event["event"] == "round" and event["round"] == 1:
        raise _Stop


def test_ray_backend_gives_the_same_results_as_local_processes(tmp_path: Path):
    config = load_config(write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1, 2]",
                                      epochs=2))
    run_experiment(config, tmp_path / "local", workers=1)
    # Begun locally and interrupted after round 1 of the first run...
    with pytest.raises(_Stop):
        run_experiment(config, tmp_path / "ray", workers=1, emit=_stop_after_round_1)
    assert RunStore(tmp_path / "ray", "digits-MarginSampling-seed1").load()["round"] == 1  # type: ignore[index]
    seed_everything(999)
    # ... and finished by Ray tasks: one run resumed, the other run whole.
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        events: list[dict] = []
        summaries = run_experiment(config, tmp_path / "ray", backend="ray", emit=events.append)
    finally:
        ray.shutdown()
    assert [(s["run"], s["resumed_from"]) for s in summaries] == [
        ("digits-MarginSampling-seed1", 1), ("digits-MarginSampling-seed2", None)]
    assert sum(e["event"] == "round" for e in events) == 2 + 4
    local = comparable(read_rows(tmp_path / "local" / "results.csv"))
    assert local == comparable(read_rows(tmp_path / "ray" / "results.csv"))


def test_ray_keep_going_finishes_the_other_runs_then_names_the_failed_one(tmp_path: Path):
    from deepal.errors import RunsFailedError

    config = load_config(write_config(
        tmp_path, strategies='["_experiment_configs:BrokenSampling", "RandomSampling"]',
        seeds="[1]"))
    tests = str(Path(__file__).parents[1])  # where Ray's workers import the broken strategy from
    sources = str(Path(deepal.__file__).resolve().parents[1])  # and deepal, the one under test
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests, sources])}})
    try:
        with pytest.raises(RunsFailedError) as caught:
            run_experiment(config, tmp_path / "ray", backend="ray", keep_going=True)
    finally:
        ray.shutdown()
    broken = "digits-_experiment_configs_BrokenSampling-seed1"
    assert list(caught.value.failures) == [broken]
    assert isinstance(caught.value.failures[broken], RuntimeError)
    assert f"{broken}: RuntimeError: this strategy breaks on purpose)" in str(caught.value)
    rows = read_rows(tmp_path / "ray" / "results.csv")
    assert [r["n_labeled"] for r in rows if r["strategy"] == "RandomSampling"] == [40, 60, 80, 90]
