"""Tiny experiment configs on digits for the experiment tests (a few seconds each)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from deepal import Strategy
from deepal.strategies.random_sampling import RandomSampling

TINY = """
name = "tiny"
datasets = ["digits"]
strategies = {strategies}
seeds = {seeds}

[loop]
n_init_labeled = 40
n_query = 20
{budget_line}

[training]
epochs = {epochs}
device = "cpu"
{extra_training}
"""


def write_config(folder: Path, strategies: str = '["RandomSampling", "MarginSampling"]',
                 seeds: str = "[1, 2]", budget_line: str = "budget = 90", epochs: int = 1,
                 extra_training: str = "", name: str = "tiny.toml") -> Path:
    """A config file in ``folder``; the defaults give 2 strategies x 2 seeds, labels
    40, 60, 80, 90 (a budget that is not a multiple of the query size)."""
    path = folder / name
    path.write_text(TINY.format(strategies=strategies, seeds=seeds, budget_line=budget_line,
                                epochs=epochs, extra_training=extra_training))
    return path


def comparable(rows: list[dict]) -> list[tuple]:
    """The rows without their timings, in a fixed order."""
    keys = ("dataset", "strategy", "seed", "round", "n_labeled", "test_accuracy", "test_loss",
            "epochs_trained")
    return sorted(tuple(r[k] for k in keys) + (tuple(r["queried"]),) for r in rows)


class BrokenSampling(Strategy):
    """A strategy whose every query fails: one run of an experiment that breaks. Named
    ``_experiment_configs:BrokenSampling`` in a config (tests/ is on the path of pytest and
    of the worker processes it spawns)."""

    def query(self, n: int) -> np.ndarray:
        raise RuntimeError("this strategy breaks on purpose")


class GatedSampling(RandomSampling):
    """Random sampling whose every query first waits (up to 5 minutes) for the file named by
    the environment variable ``DEEPAL_TEST_GATE`` to exist: a run that stays mid-way, after
    its round-0 checkpoint, for as long as a test needs. ``_experiment_configs:GatedSampling``
    in a config; the process running it needs tests/ on its ``PYTHONPATH``."""

    def query(self, n: int) -> np.ndarray:
        gate = Path(os.environ["DEEPAL_TEST_GATE"])
        deadline = time.monotonic() + 300
        while not gate.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test never created {gate}")
            time.sleep(0.05)
        return super().query(n)
