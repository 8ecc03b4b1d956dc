"""Torch threads per run on a shared CPU: ``deepal run`` on digits with 1 and 2 threads and
OpenMP's wait policy passive or active, on an idle machine and on one whose cores are all
busy with other processes (spinning workers started by the benchmark), each time as a fresh
``python -m deepal run`` process. The reference is one thread with the passive wait policy
(deepal's default), measured in the same run."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

#: A short digits run: 100 labels, 3 rounds of 50, 30 epochs each.
COMMAND = [sys.executable, "-m", "deepal", "run", "--dataset-name", "digits", "--n-round", "3",
           "--device", "cpu", "--quiet"]
SETTINGS = [(1, "PASSIVE"), (1, "ACTIVE"), (2, "PASSIVE"), (2, "ACTIVE")]


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_cores(n: int) -> Any:
    """``n`` processes spinning on the CPU while the block runs."""
    workers = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def seconds(threads: int, policy: str) -> float:
    """Wall time of one ``deepal run --threads THREADS`` process, OpenMP's wait policy set."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": policy}
    start = time.perf_counter()
    subprocess.run([*COMMAND, "--threads", str(threads)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(full: bool) -> None:
    repeat = 3 if full else 1
    print("\n== threads: `deepal run` on digits (100 labels + 3 rounds of 50, 30 epochs), "
          f"fresh process each, best of {repeat}, settings run in turn")
    for load, spinners in (("idle", 0), ("busy", os.cpu_count() or 2)):
        with busy_cores(spinners):
            best = {setting: float("inf") for setting in SETTINGS}
            for _ in range(repeat):
                for setting in SETTINGS:
                    best[setting] = min(best[setting], seconds(*setting))
        reference = best[(1, "PASSIVE")]
        cells = ", ".join(f"{t} thread{'s' if t > 1 else ''} {p.lower()}: "
                          f"{best[(t, p)]:.1f} s ({best[(t, p)] / reference:.2f}x)"
                          for t, p in SETTINGS)
        print(f"  {load} ({spinners} spinning processes): {cells}")


if __name__ == "__main__":
    run("--full" in sys.argv)
