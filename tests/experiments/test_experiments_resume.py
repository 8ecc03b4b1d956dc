"""A killed experiment, run again, continues from its checkpoints to the same results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepal import seed_everything
from deepal.errors import RunBusyError
from deepal.experiments.config import load_config
from deepal.experiments.runner import run_experiment
from deepal.experiments.store import RunStore, read_rows

from _experiment_configs import comparable, write_config

TESTS = Path(__file__).parents[1]  # where _experiment_configs is


def _experiment(config: Path, output: Path, gate: Path | None = None) -> subprocess.Popen:
    """`deepal experiment` in a new process; ``gate`` is the file GatedSampling waits for."""
    env = None
    if gate is not None:
        env = {**os.environ, "DEEPAL_TEST_GATE": str(gate),
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "deepal", "experiment", str(config), "--output", str(output),
         "--workers", "1", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_killed_process_resumes_to_identical_results(tmp_path: Path):
    config = write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1, 2]",
                          budget_line="n_round = 6", epochs=20)
    # Every run in a fresh process, as a user runs it; the uninterrupted one meanwhile.
    reference = _experiment(config, tmp_path / "reference")
    output = tmp_path / "out"
    killed = _experiment(config, output)
    first = RunStore(output, "digits-MarginSampling-seed1")
    deadline = time.monotonic() + 300
    while not first.checkpoint_path.exists():  # kill it as soon as a round is saved
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    killed.kill()
    killed.communicate()

    interrupted = first.load()
    assert interrupted is not None and interrupted["round"] < 6, "it must be killed mid-run"
    assert RunStore(output, "digits-MarginSampling-seed2").load() is None

    resumed = _experiment(config, output)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "2 runs complete (1 resumed or already done)" in out
    assert reference.wait(timeout=300) == 0
    rows = read_rows(output / "results.csv")
    assert len(rows) == 2 * 7
    assert comparable(rows) == comparable(read_rows(tmp_path / "reference" / "results.csv"))
    reference.communicate()


def _running_until(config: Path, output: Path, workers: str, run: RunStore,
                   rounds: int) -> subprocess.Popen:
    """`deepal experiment` in a new process, once ``run`` has checkpointed ``rounds`` rounds."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deepal", "experiment", str(config), "--output", str(output),
         "--workers", workers, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while run.load() is None or run.load()["round"] < rounds:  # type: ignore[index]
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return process


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_cleanly_with_the_results_so_far(tmp_path: Path, workers: str):
    # As a cluster's scheduler stops a job: the results and manifest are brought up to date.
    config = write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1, 2]",
                          budget_line="n_round = 30", epochs=20)
    output = tmp_path / "out"
    first = RunStore(output, "digits-MarginSampling-seed1")
    process = _running_until(config, output, workers, first, rounds=1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted; run the same command again to resume" in err
    assert "leaked" not in err, err  # no semaphore of a stopped worker left to the tracker
    saved = first.load()
    assert saved is not None and 1 <= saved["round"] < 30, "it must be stopped mid-run"
    rows = read_rows(output / "results.csv")
    done = [r["round"] for r in rows if r["seed"] == 1]
    assert done == list(range(saved["round"] + 1))  # every saved round, written at the stop
    runs = json.loads((output / "manifest.json").read_text())["runs"]
    assert runs[0]["rounds_done"] == saved["round"]


def test_rows_a_stop_left_behind_their_checkpoint_are_caught_up(tmp_path: Path):
    # A stop between the checkpoint's write and the rows' leaves rounds.csv a round short;
    # the next call (here one with nothing left to run) must bring it and results.csv back.
    config = load_config(write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1]",
                                      budget_line="n_round = 2", epochs=2))
    output = tmp_path / "out"
    run_experiment(config, output)
    store = RunStore(output, "digits-MarginSampling-seed1")
    complete = store.rounds_path.read_text()
    store.rounds_path.write_text("".join(complete.splitlines(keepends=True)[:-1]))
    assert [r["round"] for r in read_rows(store.rounds_path)] == [0, 1]
    run_experiment(config, output)
    assert store.rounds_path.read_text() == complete
    assert [r["round"] for r in read_rows(output / "results.csv")] == [0, 1, 2]


def test_a_killed_session_leaves_a_manifest_that_says_how_far_it_got(tmp_path: Path):
    # SIGKILL, as when a machine is taken back: nothing runs at the stop, so the manifest
    # must already be current from the last completed round.
    config = write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1]",
                          budget_line="n_round = 30", epochs=20)
    output = tmp_path / "out"
    run = RunStore(output, "digits-MarginSampling-seed1")
    process = _running_until(config, output, "1", run, rounds=3)
    process.kill()
    process.communicate(timeout=60)
    saved = run.load()
    assert saved is not None and saved["round"] < 30, "it must be killed mid-run"
    manifest = json.loads((output / "manifest.json").read_text())
    # Round r's manifest is written before round r + 1 starts; the kill may fall between a
    # checkpoint and its manifest.
    assert manifest["runs"][0]["rounds_done"] in (saved["round"] - 1, saved["round"])
    assert manifest["runs"][0]["complete"] is False
    session = manifest["sessions"][-1]
    assert manifest["updated"] == session["updated"] >= session["started"]


def test_a_second_process_on_a_running_run_is_refused_and_the_first_is_unharmed(
        tmp_path: Path):
    # Two `deepal experiment` calls on one folder and seed: the second must not delete the
    # first one's temporary files or write over its checkpoints.
    config = write_config(tmp_path, strategies='["_experiment_configs:GatedSampling"]',
                          seeds="[1]", budget_line="n_round = 3", epochs=2)
    run_name = "digits-_experiment_configs_GatedSampling-seed1"
    open_gate, gate = tmp_path / "open", tmp_path / "gate"
    open_gate.touch()
    reference = _experiment(config, tmp_path / "reference", open_gate)
    output = tmp_path / "out"
    first = _experiment(config, output, gate)  # waits at its first query
    deadline = time.monotonic() + 300
    while RunStore(output, run_name).load() is None:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = _experiment(config, output, open_gate)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2, err
    assert f"run {run_name} is being run by another process (pid {first.pid} on " in err
    assert RunStore(output, run_name).load()["round"] == 0  # type: ignore[index]
    gate.touch()
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    assert comparable(read_rows(output / "results.csv")) == comparable(
        read_rows(tmp_path / "reference" / "results.csv"))


def test_a_claimed_run_is_refused_in_process_and_runs_once_released(tmp_path: Path):
    config = load_config(write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1]",
                                      budget_line="n_round = 2", epochs=2))
    output = tmp_path / "out"
    with RunStore(output, "digits-MarginSampling-seed1").claim():
        with pytest.raises(RunBusyError, match="digits-MarginSampling-seed1"):
            run_experiment(config, output)
    assert RunStore(output, "digits-MarginSampling-seed1").load() is None
    run_experiment(config, output)  # the claim ended with its block
    assert RunStore(output, "digits-MarginSampling-seed1").load()["round"] == 2  # type: ignore[index]


class _Stop(Exception):
    pass


def _stop_after_round_1(event: dict) -> None:
    if event["event"] == "round" and event["round"] == 1:
        raise _Stop  # after round 1 was checkpointed


@pytest.mark.parametrize("strategy", [
    "MarginSampling", "CEAL", "ActiveLearningByLearning", "LossPrediction", "KCenterGreedy",
])
def test_strategies_with_state_resume_to_identical_results(tmp_path: Path, strategy: str):
    """What a strategy learned (pseudo-labels, bandit weights, a loss-prediction module, its
    random generator) is checkpointed with it."""
    config = load_config(write_config(tmp_path, strategies=f'["{strategy}"]', seeds="[1]",
                                      budget_line="n_round = 3", epochs=2))
    run_experiment(config, tmp_path / "reference")
    with pytest.raises(_Stop):
        run_experiment(config, tmp_path / "out", emit=_stop_after_round_1)
    run = f"digits-{strategy}-seed1"
    assert RunStore(tmp_path / "out", run).load()["round"] == 1  # type: ignore[index]
    seed_everything(12345)  # as a fresh process would be: the saved states must be restored
    assert run_experiment(config, tmp_path / "out")[0]["resumed_from"] == 1
    assert comparable(read_rows(tmp_path / "out" / "results.csv")) == comparable(
        read_rows(tmp_path / "reference" / "results.csv"))


def test_a_checkpoint_is_read_onto_the_cpu_and_as_data_only(tmp_path: Path, monkeypatch):
    """A run checkpointed on a GPU resumes on a machine without one: every tensor of the file
    is mapped to the CPU, and the file is loaded weights-only."""
    import torch

    config = load_config(write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]",
                                      budget_line="n_round = 1"))
    run_experiment(config, tmp_path / "out")
    loads = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        loads.append((kwargs.get("map_location"), kwargs.get("weights_only")))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    checkpoint = RunStore(tmp_path / "out", "digits-RandomSampling-seed1").load()
    assert checkpoint is not None and checkpoint["format"] == 2
    assert loads == [("cpu", True)]


_PARENT = """
import multiprocessing as mp, os, time
from concurrent.futures import ProcessPoolExecutor
from deepal.experiments import backends
context = mp.get_context("spawn")
pool = ProcessPoolExecutor(1, mp_context=context, initializer=backends._init_worker,
                           initargs=(context.Queue(), os.getpid()))
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_of_a_killed_experiment_stop_too():
    # SIGKILL gives the parent no chance to stop its workers; they must notice by themselves
    # rather than go on writing into the output folder.
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert _running(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker)


def test_a_continued_semi_supervised_training_resumes_to_identical_results(tmp_path: Path):
    """With warm_start, the next round continues from the checkpointed weights: a resumed run
    trains on from them exactly as the uninterrupted one, for warm_start_epochs epochs."""
    extra = ("warm_start = true\nwarm_start_epochs = 1\n"
             "semi_supervised = { method = \"pseudo_label\", steps_per_epoch = 2 }")
    config = load_config(write_config(tmp_path, strategies='["MarginSampling"]', seeds="[1]",
                                      budget_line="n_round = 3", epochs=3,
                                      extra_training=extra))
    run_experiment(config, tmp_path / "reference")
    with pytest.raises(_Stop):
        run_experiment(config, tmp_path / "out", emit=_stop_after_round_1)
    seed_everything(12345)
    assert run_experiment(config, tmp_path / "out")[0]["resumed_from"] == 1
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert [r["epochs_trained"] for r in sorted(rows, key=lambda r: r["round"])] == [3, 1, 1, 1]
    assert comparable(rows) == comparable(read_rows(tmp_path / "reference" / "results.csv"))
