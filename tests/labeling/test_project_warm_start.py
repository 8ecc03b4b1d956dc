"""A project whose queries continue training the last saved model instead of retraining
from scratch (``warm_start_epochs``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepal.cli import main
from deepal.config import ConfigError
from deepal.labeling import Project
from deepal.nets.hooks import TrainingHook

from conftest import three_blobs_file


def deepal(*args: object) -> int:
    return main([str(a) for a in args])


class Watch(TrainingHook):
    """Keeps the weights a training starts from and how many epochs it made."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.epochs = -1

    def on_train_start(self, net, model, data):
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return []

    def on_train_end(self, net, model, data):
        self.epochs = net.epochs_trained


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """A .npz pool of 60 feature rows in three blobs, without labels."""
    return three_blobs_file(tmp_path)


def _label(project: Project, items) -> None:
    for item in items:
        project.label(item, "abc"[item // 20], "me")


def _saved_weights(root: Path) -> dict[str, torch.Tensor]:
    return torch.load(root / "model.pt", weights_only=True)["state_dict"]


def test_queries_continue_from_the_last_saved_model(tmp_path, pool):
    root = tmp_path / "p"
    assert deepal("project", "init", root, "--data", pool, "--classes", "a,b,c",
                  "--n-epoch", "4", "--warm-start-epochs", "1",
                  "--semi-supervised", "pseudo_label") == 0
    project = Project(root)
    assert project.settings.warm_start_epochs == 1
    _label(project, project.query(6).item_ids)  # no label yet: nothing trained

    first = Watch()
    _label(project, project.query(6, training_hooks=[first]).item_ids)
    assert first.epochs == 4  # no model yet: n_epoch from scratch
    saved = _saved_weights(root)

    second = Watch()
    result = project.query(6, training_hooks=[second])
    assert result.note is None
    assert second.epochs == 1
    assert second.start.keys() == saved.keys()
    assert all(torch.equal(second.start[k], saved[k]) for k in saved)
    assert not all(torch.equal(v, saved[k]) for k, v in _saved_weights(root).items())


def test_a_model_that_cannot_be_continued_is_said_and_retrained(tmp_path, pool):
    root = tmp_path / "p"
    project = Project.init(root, pool, classes=["a", "b", "c"], n_epoch=3, warm_start_epochs=1)
    _label(project, [0, 1, 20, 21, 40, 41])
    (root / "model.pt").write_bytes(b"not a model")
    watch = Watch()
    result = project.query(4, training_hooks=[watch])
    assert result.note is not None and "trains from scratch" in result.note
    assert watch.epochs == 3
    assert _saved_weights(root).keys() == watch.start.keys()  # a good model saved again


def test_without_the_option_every_query_retrains_from_scratch(tmp_path, pool):
    project = Project.init(tmp_path / "p", pool, classes=["a", "b", "c"], n_epoch=2)
    _label(project, [0, 1, 20, 21, 40, 41])
    project.query(4)
    saved = _saved_weights(tmp_path / "p")
    watch = Watch()
    project.query(4, training_hooks=[watch])
    assert watch.epochs == 2
    assert not all(torch.equal(watch.start[k], v) for k, v in saved.items())


def test_a_scikit_learn_model_cannot_continue(tmp_path, pool):
    with pytest.raises(ConfigError, match="pass one of --model and --warm-start-epochs"):
        Project.init(tmp_path / "p", pool, classes=["a", "b", "c"],
                     model="logistic_regression", strategy="MarginSampling",
                     warm_start_epochs=1)
    assert not (tmp_path / "p").exists()
