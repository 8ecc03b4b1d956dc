"""A small labelling project for the sharded command-line tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from deepal.cli import main
from deepal.labeling import Project

CLASSES = ["a", "b", "c"]


def make_project(root: Path, strategy: str) -> Path:
    """A project of 150 points in 3 blobs with 24 of them labeled."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    x = (np.eye(3, 4)[y] * 3.0 + rng.normal(size=(150, 4))).astype(np.float32)
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "pool.npz", X=x)
    project = root / "proj"
    assert main(["project", "init", str(project), "--data", str(root / "pool.npz"),
                 "--classes", ",".join(CLASSES), "--strategy", strategy, "--n-epoch", "3"]) == 0
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["item", "label"]] + [[i, CLASSES[y[i]]] for i in range(24)])
    assert main(["import-labels", str(root / "labels.csv"), "-p", str(project)]) == 0
    return project


def picks(project: Path) -> list[int]:
    return Project(project).batch()[1]
