"""A table project whose model is a scikit-learn classifier: chosen by name at init, refitted
at each query, saved as the labeled rows (no pickle), predicted, reviewed and exported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepal.cli import main
from deepal.config.base import ConfigError
from deepal.config.project import MODELS
from deepal.labeling.project import Project
from deepal.nets.sklearn_models import SKLEARN_MODELS, sklearn_model
from deepal.nets.sklearn_net import SklearnNet

pytest.importorskip("sklearn")


def _table(tmp_path, n=120, seed=0):
    """Two well separated blobs in two columns, the second on a large scale."""
    rng = np.random.default_rng(seed)
    side = rng.integers(0, 2, size=n)
    x = np.stack([rng.normal(size=n) + 6 * side, 1000 + 100 * (rng.normal(size=n) + 6 * side)], 1)
    lines = ["a,b"] + [f"{u:.4f},{v:.4f}" for u, v in x]
    path = tmp_path / "pool.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, side


@pytest.fixture
def forest_project(tmp_path):
    path, side = _table(tmp_path)
    project = Project.init(tmp_path / "proj", path, classes=["left", "right"],
                           model="random_forest", strategy="MarginSampling")
    return project, side


def test_every_model_name_builds_a_seeded_classifier():
    assert tuple(SKLEARN_MODELS) == MODELS
    for name in MODELS:
        estimator = sklearn_model(name, seed=3)
        assert hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")
        if "random_state" in estimator.get_params():
            assert estimator.get_params()["random_state"] == 3


def test_the_project_trains_a_scikit_learn_model_and_queries_with_it(forest_project):
    project, side = forest_project
    assert project.settings.model == "random_forest"
    assert isinstance(project.net(), SklearnNet)
    first = project.query(10, threads=1)  # no labels yet: a random first batch
    for item in first.item_ids:
        project.label(item, ["left", "right"][side[item]], "ann")
    second = project.query(10, threads=1)
    assert second.strategy == "MarginSampling"
    assert not set(second.item_ids) & set(first.item_ids)
    assert project.status()["model"] == "random_forest"


def test_the_model_file_holds_the_labeled_rows_and_predictions_refit_them(forest_project):
    project, side = forest_project
    for item in range(30):
        project.label(item, ["left", "right"][side[item]], "ann")
    path = project.train_and_save(threads=1)
    record = torch.load(path, weights_only=True)
    assert record["architecture"] == "scikit-learn" and record["estimator"] == "random_forest"
    assert record["train_labels"].tolist() == side[:30].tolist()
    pool = project.arrays()["X"]
    assert np.array_equal(record["train_inputs"].numpy(), pool[:30])
    rows = project.predict()
    assert len(rows) == 120 - 30
    correct = np.mean([row["label"] == ["left", "right"][side[row["item"]]] for row in rows])
    assert correct > 0.9
    assert project.predict() == rows  # refitting with the project's seed: the same model


def test_the_model_file_refits_outside_deepal(forest_project):
    from sklearn.ensemble import RandomForestClassifier

    project, side = forest_project
    for item in range(30):
        project.label(item, ["left", "right"][side[item]], "ann")
    record = torch.load(project.train_and_save(threads=1), weights_only=True)
    mean = np.array(record["normalisation"]["mean"])
    std = np.array(record["normalisation"]["std"])
    model = RandomForestClassifier(n_estimators=200, random_state=record["seed"])
    model.fit((record["train_inputs"].numpy() - mean) / std, record["train_labels"].numpy())
    pool = project.arrays()["X"][30:]
    outside = model.predict_proba((pool - mean) / std).max(1)
    inside = [row["probability"] for row in project.predict()]
    assert outside == pytest.approx(inside, abs=1e-5)


def test_review_and_export_work_with_a_scikit_learn_model(forest_project, tmp_path):
    project, side = forest_project
    labels = side.copy()
    labels[:3] = 1 - labels[:3]  # three wrong labels among the first 60
    for item in range(60):
        project.label(item, ["left", "right"][labels[item]], "ann")
    rows = project.review(folds=3, threads=1)
    assert {row["item"] for row in rows[:3]} == {0, 1, 2}
    assert main(["export", "-p", str(project.root), "-o", str(tmp_path / "out")]) == 0
    record = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert record["estimator"] == "random_forest" and len(record["train_labels"]) == 60


def test_strategies_that_need_a_network_are_refused_before_anything_is_written(
        forest_project, tmp_path):
    project, _ = forest_project
    with pytest.raises(ConfigError, match="choose one of RandomSampling"):
        project.query(5, strategy="KCenterGreedy", threads=1)
    assert project.store.rounds() == [] and not (project.root / "model.pt").exists()
    path, _ = _table(tmp_path, seed=1)
    with pytest.raises(ConfigError, match="BALDDropout needs a network"):
        Project.init(tmp_path / "other", path, classes=["l", "r"], model="naive_bayes",
                     strategy="BALDDropout")
    assert not (tmp_path / "other").exists()


def test_the_command_line_names_the_model(tmp_path, capsys):
    path, _ = _table(tmp_path)
    assert main(["project", "init", str(tmp_path / "p"), "--data", str(path), "--classes",
                 "l,r", "--model", "logistic_regression", "--strategy", "LeastConfidence"]) == 0
    assert Project(tmp_path / "p").settings.model == "logistic_regression"
    with pytest.raises(SystemExit) as refused:
        main(["project", "init", str(tmp_path / "q"), "--data", str(path), "--classes",
              "l,r", "--model", "svm"])
    assert refused.value.code == 2 and not (tmp_path / "q").exists()
    assert "invalid choice: 'svm'" in capsys.readouterr().err
