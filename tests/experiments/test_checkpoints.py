"""Checkpoints hold state, not objects: what a run writes loads weights-only, an older
format is refused by name, and a planted file that would run code runs nothing."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.cli import main
from deepal.experiments.checkpoint import CheckpointError, capture_rng, read, restore_rng
from deepal.experiments.config import load_config
from deepal.experiments.runner import run_experiment
from deepal.experiments.store import RunStore

from _experiment_configs import write_config

RUN = "digits-RandomSampling-seed1"


class _Payload:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _config(folder: Path) -> Path:
    return write_config(folder, strategies='["RandomSampling"]', seeds="[1]",
                        budget_line="n_round = 1")


def _plant(output: Path, payload: bytes) -> Path:
    path = RunStore(output, RUN).checkpoint_path
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    return path


def _torch_saved(obj: object) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("wrap", ["torch archive", "bare pickle"])
def test_a_planted_checkpoint_runs_nothing_and_is_a_clear_error(tmp_path: Path, capsys,
                                                                 wrap: str):
    marker = tmp_path / "marker"
    payload = {"format": 2, "round": _Payload(marker)}
    # The payload is real: loaded the unsafe way, it creates the marker.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()
    output = tmp_path / "out"
    blob = _torch_saved(payload) if wrap == "torch archive" else pickle.dumps(payload)
    planted = _plant(output, blob)

    code = main(["experiment", str(_config(tmp_path)), "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("deepal: error: ")
    assert f"{planted} is not a checkpoint deepal can load safely" in err
    assert "nothing of it was run" in err and f"delete {planted.parent}" in err
    if wrap == "torch archive":
        assert "system" in err  # names what it would have called
    assert not marker.exists()
    assert sorted(p.name for p in output.iterdir()) == ["runs"]  # no manifest, no results


def test_a_format_1_checkpoint_is_refused_by_name(tmp_path: Path, capsys):
    output = tmp_path / "out"
    # What an earlier deepal wrote: numpy arrays and RNG states, the strategy pickled.
    _plant(output, _torch_saved({
        "format": 1, "settings": "0123456789ab", "round": 1,
        "labeled": np.zeros(10, dtype=bool), "rng": {"numpy": np.random.get_state()},
        "strategy": pickle.dumps({"pretend": "strategy"}), "rounds": [],
    }))
    code = main(["experiment", str(_config(tmp_path)), "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "checkpoint format 1 (a pickled strategy)" in err
    assert "delete" in err and "resume it with the deepal that wrote it" in err


def test_a_checkpoint_of_an_unknown_format_is_refused(tmp_path: Path):
    path = _plant(tmp_path, _torch_saved({"format": 3, "round": 1}))
    with pytest.raises(CheckpointError, match="has checkpoint format 3, and this deepal reads "
                                              "format 2"):
        read(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint deepal can load safely"):
        read(path)


def test_a_run_writes_state_only_and_resumes_from_it(tmp_path: Path):
    run_experiment(load_config(_config(tmp_path)), tmp_path / "out")
    path = RunStore(tmp_path / "out", RUN).checkpoint_path
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"format", "settings", "round", "labeled", "rng", "strategy",
                               "rounds"}
    assert checkpoint["format"] == 2 and checkpoint["round"] == 1
    assert checkpoint["labeled"].dtype == torch.bool and int(checkpoint["labeled"].sum()) == 60
    assert checkpoint["strategy"]["strategy"] == "RandomSampling"
    assert [row["round"] for row in checkpoint["rounds"]] == [0, 1]
    assert all(row["threads"] == 1 for row in checkpoint["rounds"])


def test_captured_random_states_come_back():
    state = capture_rng()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    # the states are data a weights-only load accepts
    restore_rng(torch.load(_as_file(state), weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def _as_file(obj: object):
    import io

    return io.BytesIO(_torch_saved(obj))
