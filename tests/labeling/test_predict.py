"""Predictions of a project's model: for the unlabeled items and for new files (images and
table rows), written as CSV or JSON; ``model.pt`` used without deepal's project code; bad
requests refused before anything is written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.cli import main
from deepal.errors import DeepALError
from deepal.labeling import Project
from deepal.labeling.predict import prediction_rows

from _own_data import CLASSES, write_images

pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[int], Path]:
    """A project over 40 unlabeled images, 16 of them labeled and a model trained."""
    root = tmp_path_factory.mktemp("predict")
    truth = write_images(root / "photos", 40, labeled=False, size=16)
    project = Project.init(root / "proj", root / "photos", classes=CLASSES, image_size=16,
                           n_epoch=15)
    for item in range(16):
        project.label(item, CLASSES[truth[item]], "ann")
    project.train_and_save(threads=1)
    return project, truth, root


def test_rows_list_the_top_classes_and_flag_the_doubtful():
    probs = np.array([[0.1, 0.6, 0.3], [0.34, 0.33, 0.33]])
    rows = prediction_rows(probs, ["a", "b", "c"], ["x", "y"], [4, None], top_k=2,
                           review_below=0.5)
    assert [r["label"] for r in rows] == ["b", "a"]
    assert rows[0]["top"] == [["b", 0.6], ["c", 0.3]] and rows[0]["item"] == 4
    assert [r["needs_review"] for r in rows] == [False, True]
    assert len(prediction_rows(probs, ["a", "b", "c"], ["x", "y"], [0, 1], top_k=9)[0]["top"]) == 3


def test_predictions_for_the_unlabeled_pool_and_for_new_files(trained, tmp_path):
    project, truth, _ = trained
    rows = project.predict(top_k=2)
    assert [r["item"] for r in rows] == list(range(16, 40))   # the unlabeled items only
    assert all(r["ref"] == f"img_{r['item']:03d}.png" for r in rows)
    correct = sum(r["label"] == CLASSES[truth[r["item"]]] for r in rows)
    assert correct >= 0.9 * len(rows)
    assert all(len(r["top"]) == 2 and r["top"][0][1] >= r["top"][1][1] for r in rows)

    new_truth = write_images(tmp_path / "new", 10, labeled=False, seed=7, size=20)
    single = tmp_path / "new" / "img_003.png"
    rows = project.predict(files=[tmp_path / "new", single])
    assert len(rows) == 11 and all(r["item"] is None for r in rows)
    assert rows[-1]["ref"] == str(single)
    expected = [CLASSES[t] for t in new_truth] + [CLASSES[new_truth[3]]]
    assert sum(r["label"] == e for r, e in zip(rows, expected, strict=True)) >= 10
    assert rows[3]["probability"] == pytest.approx(rows[-1]["probability"])


def test_the_command_writes_csv_and_json(trained, tmp_path, capsys):
    project, _, root = trained
    out = tmp_path / "predictions.csv"
    assert main(["predict", "-p", str(project.root), "-o", str(out), "--review-below",
                 "0.99"]) == 0
    assert "Wrote 24 predictions" in capsys.readouterr().out
    with out.open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 24 and set(table[0]) == {"item", "ref", "label", "probability", "top",
                                                   "needs_review"}
    assert all(row["needs_review"] == str(int(float(row["probability"]) < 0.99))
               for row in table)
    out_json = tmp_path / "p.json"
    assert main(["predict", "-p", str(project.root), "--files", str(root / "photos"),
                 "-o", str(out_json), "--format", "json", "--top-k", "1"]) == 0
    rows = json.loads(out_json.read_text())
    assert len(rows) == 40 and all(len(r["top"]) == 1 for r in rows)


def test_model_pt_is_usable_without_the_project(trained):
    project, _, _ = trained
    from deepal.nets import MLP
    from deepal.nets.defaults import SmallCNN

    saved = torch.load(project.root / "model.pt", weights_only=True)
    assert saved["architecture"] == "SmallCNN" and saved["input_shape"] == [3, 16, 16]
    assert saved["input_dtype"] == "uint8" and saved["classes"] == CLASSES
    model = {"SmallCNN": SmallCNN, "MLP": MLP}[saved["architecture"]](
        **saved["architecture_args"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    norm = saved["normalisation"]
    x = torch.as_tensor(project.arrays()["X"][16:]).float() / 255
    x = (x - torch.tensor(norm["mean"]).view(-1, 1, 1)) / torch.tensor(norm["std"]).view(-1, 1, 1)
    with torch.no_grad():
        probs = model(x)[0].softmax(1)
    rows = project.predict()
    assert [saved["classes"][c] for c in probs.argmax(1)] == [r["label"] for r in rows]
    assert probs.max(1).values.numpy() == pytest.approx([r["probability"] for r in rows],
                                                        abs=1e-5)


def test_table_rows_are_scaled_as_the_pool_was(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)) * [1.0, 100.0] + [0.0, 1000.0]
    lines = ["a,b"] + [f"{u:.4f},{v:.4f}" for u, v in x]
    (tmp_path / "pool.csv").write_text("\n".join(lines) + "\n")
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=["low", "high"],
                           n_epoch=60)
    for item in range(40):
        project.label(item, "high" if x[item, 1] > 1000 else "low", "ann")
    project.train_and_save(threads=1)
    (tmp_path / "new.csv").write_text("b,a,label\n1300,0,x\n700,0,y\n")  # other column order
    rows = project.predict(files=[tmp_path / "new.csv"])
    assert [r["label"] for r in rows] == ["high", "low"]
    assert rows[0]["ref"] == f"{tmp_path / 'new.csv'} row 1"


def test_bad_requests_are_refused_before_anything_is_written(trained, tmp_path):
    project, _, root = trained
    with pytest.raises(DeepALError, match="no such file"):
        project.predict(files=[tmp_path / "missing"])
    with pytest.raises(DeepALError, match="--top-k"):
        project.predict(top_k=0)
    with pytest.raises(DeepALError, match="--review-below"):
        project.predict(review_below=1.5)
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DeepALError, match="cannot read image"):
        project.predict(files=[tmp_path / "t.csv"])
    assert main(["predict", "-p", str(project.root), "-o", str(tmp_path)]) == 2
    assert main(["predict", "-p", str(project.root), "-o", str(tmp_path / "no" / "p.csv")]) == 2
    fresh = Project.init(tmp_path / "fresh", root / "photos", classes=CLASSES, image_size=8)
    with pytest.raises(DeepALError, match="no trained model"):
        fresh.predict(files=[tmp_path / "missing"])   # named before any file is read
    fresh.label(0, "cat", "ann")
    fresh.label(1, "dog", "ann")
    assert len(fresh.predict(retrain=True, review_below=0.0)) == 38
    assert (fresh.root / "model.pt").is_file()
