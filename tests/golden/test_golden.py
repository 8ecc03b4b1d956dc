"""The golden runs: seeded digits runs give exactly the queried indices and test accuracies
recorded in ``digits_runs.json`` (see ``record.py``), run straight through and resumed from
checkpoints written after every round."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record import HERE, golden_runs, write_config

from deepal.errors import RunsFailedError

GOLDEN = json.loads((HERE / "digits_runs.json").read_text())


def test_the_golden_runs_give_the_recorded_picks_and_accuracies(tmp_path: Path):
    assert golden_runs(tmp_path) == GOLDEN


class _Stop(Exception):
    pass


def test_the_golden_runs_stopped_after_round_one_resume_to_the_recorded_results(
        tmp_path: Path):
    from deepal.experiments.config import load_config
    from deepal.experiments.runner import run_experiment
    from deepal.experiments.store import read_rows

    def stop_after_round_one(event: dict) -> None:
        if event["event"] == "round" and event["round"] == 1:
            raise _Stop  # after round 1's checkpoint is written

    config = load_config(write_config(tmp_path))
    with pytest.raises(RunsFailedError):
        run_experiment(config, tmp_path, emit=stop_after_round_one, keep_going=True)
    for strategy in config.strategies:
        rows = read_rows(tmp_path / "runs" / f"digits-{strategy}-seed7" / "rounds.csv")
        assert [row["round"] for row in rows] == [0, 1]
    assert golden_runs(tmp_path) == GOLDEN
