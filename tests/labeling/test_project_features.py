"""A project that asks for self-supervised features: TypiClust picks even its first batch
from features pretrained on the items, kept in the project folder and read back."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from deepal.cli import main
from deepal.config import ConfigError
from deepal.labeling import Project

from conftest import three_blobs_file

# The module, not the function of the same name that deepal.pretraining exports.
pretraining = importlib.import_module("deepal.pretraining.pretrain")


def deepal(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """A .npz pool of 60 feature rows in three blobs, without labels."""
    return three_blobs_file(tmp_path)


def test_typiclust_picks_the_first_batch_from_the_items_features(tmp_path, pool, monkeypatch):
    root = tmp_path / "p"
    assert deepal("project", "init", root, "--data", pool, "--classes", "a,b,c",
                  "--strategy", "TypiClust", "--features", "self-supervised",
                  "--n-epoch", "1") == 0
    project = Project(root)
    assert project.settings.features == "self-supervised"
    first = project.query(6)
    # No label yet, and still TypiClust's own picks: no random first batch.
    assert first.strategy == "TypiClust" and first.note is None
    assert len(set(first.item_ids)) == 6
    entries = list((root / "pretraining").iterdir())
    assert len(entries) == 1 and (entries[0] / "features.npy").exists()
    # The next rounds read the features back instead of pretraining again.
    monkeypatch.setattr(pretraining, "_train", lambda *a: pytest.fail("pretrained again"))
    for item in first.item_ids:
        project.label(item, "abc"[item // 20], "me")
    second = project.query(3)
    assert second.strategy == "TypiClust" and not set(second.item_ids) & set(first.item_ids)
    # A strategy that takes no features still works in the project, on the network.
    assert project.query(2, strategy="MarginSampling").strategy == "MarginSampling"


@pytest.mark.parametrize(("options", "message"), [
    (["--strategy", "MarginSampling"], "MarginSampling takes no features"),
    (["--model", "logistic_regression", "--strategy", "MarginSampling"],
     "pass one of --model and --features"),
])
def test_features_that_would_do_nothing_are_refused_before_anything_is_written(
        tmp_path, pool, capsys, options, message):
    root = tmp_path / "p"
    assert deepal("project", "init", root, "--data", pool, "--classes", "a,b",
                  "--features", "self-supervised", *options) == 2
    assert message in capsys.readouterr().err and not root.exists()


def test_features_are_refused_for_texts(tmp_path):
    texts = tmp_path / "reviews.txt"
    texts.write_text("good\nbad\nfine\n")
    with pytest.raises(ConfigError, match="this project's data is texts"):
        Project.init(tmp_path / "p", texts, classes="pos,neg", strategy="TypiClust",
                     features="self-supervised")
    assert not (tmp_path / "p").exists()
