"""After ``kill -9`` of a ``deepal experiment --backend ray`` driver that started its own
local Ray, no process of that Ray is left running: Ray's head processes and workers end with
the driver, and its per-node agents as soon as they find their raylet gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason='the Ray backend needs pip install "deepal[ray]"')

CONFIG = """
name = "long"
datasets = ["digits"]
strategies = ["RandomSampling"]
seeds = [1, 2]

[loop]
n_init_labeled = 40
n_query = 20
n_round = 40

[training]
epochs = 30
device = "cpu"
"""

#: Seconds allowed for Ray to start, and for its last process to end after the kill.
START_LIMIT, END_LIMIT = 180.0, 150.0


def session_processes(session: int) -> dict[int, str]:
    """The live processes of a session: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
        if state != "Z":  # a zombie has ended; it waits only for its parent to read it
            found[int(entry.name)] = command
    return found


def wait_for(condition, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_kill_9_of_the_driver_leaves_no_ray_process_running(tmp_path: Path):
    (tmp_path / "long.toml").write_text(CONFIG)
    driver = subprocess.Popen(
        [sys.executable, "-m", "deepal", "experiment", str(tmp_path / "long.toml"),
         "--backend", "ray", "--output", str(tmp_path / "out"), "--quiet"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    session = driver.pid  # the driver leads its own session: Ray's processes join it
    try:
        running = wait_for(lambda: any("ray::_run_as_ray_task" in c for c in
                                       session_processes(session).values()), START_LIMIT)
        assert running, "Ray never started a run"
        assert any("raylet" in c for c in session_processes(session).values())
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        left = wait_for(lambda: not session_processes(session), END_LIMIT)
        assert left, f"still running: {session_processes(session)}"
    finally:
        for pid in session_processes(session):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
