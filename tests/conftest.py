"""Shared fixtures: a tiny network and small pools, labeled and unlabeled."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import deepal


class TinyNet(nn.Module):
    """A small MLP with dropout and the (logits, embedding) contract, for 4-d blobs."""

    def __init__(self, n_features: int = 4, n_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU())
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.body(x)
        return self.head(self.drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 16


class PlainDataset(Dataset):
    """A user's dataset without the get_batch fast path: served by a DataLoader."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None) -> None:
        self.x, self.y = torch.as_tensor(x), y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return (self.x[i], i) if self.y is None else (self.x[i], int(self.y[i]), i)


def blobs(n: int, seed: int, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian blobs in 4-d, one per class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = np.eye(n_classes, 4) * 4.0
    return (centres[y] + rng.normal(size=(n, 4))).astype(np.float32), y


def three_blobs_file(folder: Path) -> Path:
    """A .npz pool of 60 unlabeled 5-d rows, items 0-19, 20-39 and 40-59 one blob each."""
    rng = np.random.default_rng(0)
    centres = np.repeat(np.array([[0.0] * 5, [6.0] * 5, [-6.0] * 5]), 20, axis=0)
    path = folder / "pool.npz"
    np.savez(path, X=(centres + rng.normal(size=(60, 5))).astype(np.float32))
    return path


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Two cores are shared with other work; one thread keeps small tests fast and stable.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch) -> None:
    # Pretrained features are cached under $DEEPAL_CACHE: never the user's own cache.
    monkeypatch.setenv("DEEPAL_CACHE", str(tmp_path_factory.getbasetemp() / "deepal-cache"))


@pytest.fixture
def pool() -> deepal.Data:
    """A simulated pool: 120 labeled-able examples, a test set of 60, 10 labeled."""
    x, y = blobs(120, seed=0)
    xt, yt = blobs(60, seed=1)
    data = deepal.Data(x, y, xt, yt)
    data.initialize_labels(10, random_state=0)
    return data


@pytest.fixture
def unknown_pool() -> deepal.Data:
    """A real pool: no labels at all except 9 given by hand; no test set."""
    x, y = blobs(90, seed=2)
    data = deepal.Data(x, None, n_classes=3)
    first = np.arange(9)
    data.label(first, y[first])
    return data


@pytest.fixture
def tiny_net() -> deepal.Net:
    return deepal.Net(TinyNet, {"n_epoch": 5, "train_args": {"batch_size": 16},
                                "optimizer": "Adam", "optimizer_args": {"lr": 0.01}},
                      device="cpu")


# The bad-input suite's counts: its module is loaded only when its tests were collected.
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    refusals = sys.modules.get("refusals")
    if refusals is not None:
        refusals.summarise(terminalreporter)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    refusals = sys.modules.get("refusals")
    if refusals is not None:
        refusals.check_minimum(session, exitstatus)
