"""Label files (CSV, JSON, Label Studio) and ``deepal export -o``: every bad input is one
``deepal: error:`` line naming the file's row, and the project's database (or the export
folder) is unchanged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, fuzz, refused

from deepal.cli import main
from deepal.errors import DeepALError
from deepal.labeling import Project

N_ITEMS = 12
CLASSES = ["x", "y"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("files")
    np.savez(root / "pool.npz", X=np.random.default_rng(0).normal(size=(N_ITEMS, 3)))
    return Project.init(root / "proj", root / "pool.npz", classes=CLASSES)


def snapshot(project: Project) -> list[str]:
    with sqlite3.connect(project.root / "deepal.sqlite") as db:
        return list(db.iterdump())


def import_refused(project: Project, path: Path, capsys: pytest.CaptureFixture[str],
                   kind: str) -> str:
    """Import ``path`` with the command, which must refuse it in one line and change nothing
    in the project; the line."""
    return command_refuses(["import-labels", str(path), "-p", str(project.root)], capsys,
                           "deepal import-labels", kind, watched=[project.root])


@pytest.mark.parametrize("item", ["--5", "²", " 3", "3 ", "1e3", "+3", "3.0", "-1", "0x3", "٣",
                                  "12", "row 12"])
def test_item_ids_other_than_plain_decimals_or_known_refs_are_refused(project, tmp_path,
                                                                       capsys, item):
    (tmp_path / "bad.csv").write_text(f'item,label\n0,x\n"{item}",y\n', encoding="utf-8")
    err = import_refused(project, tmp_path / "bad.csv", capsys, "bad item id")
    assert f"bad.csv, row 3: unknown item {item!r}" in err and "nothing was imported" in err


@fuzz(40)
@given(item=st.text(min_size=1, max_size=6).filter(
    lambda t: not (t.isascii() and t.isdigit() and int(t) < N_ITEMS)
    and t not in {f"row {i}" for i in range(N_ITEMS)}))
def test_any_other_item_text_is_refused(project, tmp_path, item):
    before = snapshot(project)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps([{"item": 1, "label": "x"}, {"item": item, "label": "y"}]))
    with refused("Project.import_labels", "bad item id", DeepALError,
                 match=r"entry 2: unknown item"):
        project.import_labels(path)
    assert snapshot(project) == before


def test_repeated_rows_for_one_item_are_refused_with_their_rows(project, tmp_path, capsys):
    (tmp_path / "twice.csv").write_text("item,label\n1,x\n2,y\n\n1,y\n")  # conflicting
    err = import_refused(project, tmp_path / "twice.csv", capsys, "repeated item")
    assert "item 1 is labeled twice (row 2 and row 5)" in err
    (tmp_path / "same.csv").write_text("item,label\n1,x\nrow 1,x\n")  # the same, by its ref
    assert "item 1 is labeled twice (row 2 and row 3)" in import_refused(
        project, tmp_path / "same.csv", capsys, "repeated item")
    (tmp_path / "twice.json").write_text(json.dumps([{"item": 4, "label": "x"},
                                                     {"item": "4", "label": "x"}]))
    assert "item 4 is labeled twice (entry 1 and entry 2)" in import_refused(
        project, tmp_path / "twice.json", capsys, "repeated item")


def studio(annotation: dict[str, Any], item: Any = 3) -> list[dict[str, Any]]:
    return [{"data": {"deepal_id": 2}, "annotations": [
        {"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["x"]}}]}]},
            {"data": {"deepal_id": item}, "annotations": [annotation]}]


def choice(value: Any) -> dict[str, Any]:
    return {"completed_by": 1, "result": [{"type": "choices", "value": value}]}


@pytest.mark.parametrize("export, message", [
    (studio(choice(["x"])), "task 2: a choices result needs 'value'"),
    (studio(choice("x")), "task 2: a choices result needs 'value'"),
    (studio(choice({"choices": "x"})), "task 2: a choices result needs 'value'"),
    (studio(choice({"choices": ["x", "y"]})), "task 2: 2 classes chosen, expected one"),
    (studio({"completed_by": 1, "result": {"value": {"choices": ["x"]}}}),
     "task 2: 'result' must be a list of objects"),
    (studio({"completed_by": 1, "result": ["x"]}), "task 2: 'result' must be a list"),
    (studio({"completed_by": [1], "result": [{"value": {"choices": ["x"]}}]}),
     "task 2: 'completed_by' must be a user id"),
    ([{"data": {"deepal_id": 3}, "annotations": {"result": []}}],
     "task 1: 'annotations' must be a list of objects"),
    (studio(choice({"choices": ["cow"]})), "task 2: unknown class 'cow'"),
    (studio(choice({"choices": ["x"]}), item="3.0"), "task 2: unknown item '3.0'"),
    (studio(choice({"choices": ["y"]}), item=2), "item 2 is labeled twice (task 1 and task 2)"),
    ([{"data": {"deepal_id": 3}}, {"data": []}], "task 2 of the Label Studio export has no"),
])
def test_label_studio_exports_of_another_shape_are_refused(project, tmp_path, capsys, export,
                                                          message):
    (tmp_path / "studio.json").write_text(json.dumps(export))
    assert message in import_refused(project, tmp_path / "studio.json", capsys,
                                     "Label Studio export of another shape")


@pytest.mark.parametrize("text, message", [
    ('[{"item": 0, "label": "x", "annotator": {"name": "zoe"}}]', "the annotator must be a name"),
    ('[{"item": 0, "label": "x", "who": "zoe"}]', "entry 1: expected an object with 'item'"),
    ('[{"item": 0, "label": "x", "item": 1}]', "the key 'item' is repeated"),
    ('[{"item": NaN, "label": "x"}]', "NaN is not a number deepal reads"),
    ("[" * 5000 + "]" * 5000, "nested deeper than 32 levels"),
    ('[{"item": 0, "label": "x"}', "not valid JSON"),
    ('[{"item": ' + "7" * 5000 + ', "label": "x"}]', "Exceeds the limit (4300 digits)"),
])
def test_malformed_json_label_files_are_refused(project, tmp_path, capsys, text, message):
    (tmp_path / "bad.json").write_text(text)
    assert message in import_refused(project, tmp_path / "bad.json", capsys, "malformed JSON")
    (tmp_path / "bad.json").write_bytes(b'[{"item": 0, "label": "\xff"}]')
    assert "not UTF-8" in import_refused(project, tmp_path / "bad.json", capsys, "not UTF-8")


@pytest.mark.parametrize("fmt", ["labels", "label-studio"])
def test_export_refuses_an_output_that_is_or_lies_under_a_file(project, tmp_path, capsys, fmt):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "out" / ("labels.csv" if fmt == "labels" else "tasks.json")).mkdir(parents=True)
    for output, message in [(tmp_path / "file.txt", "file.txt is a file, not a folder"),
                            (tmp_path / "file.txt" / "sub", "file.txt is a file, not a folder"),
                            (tmp_path / "out", "is a folder where the export writes a file")]:
        err = command_refuses(["export", "-p", str(project.root), "--format", fmt, "-o",
                               str(output)], capsys, "deepal export", "bad output path",
                              watched=[tmp_path, project.root])
        assert message in err
    assert main(["export", "-p", str(project.root), "--no-model", "-o",
                 str(tmp_path / "new" / "dir")]) == 0
    assert (tmp_path / "new" / "dir" / "labels.csv").is_file()


def test_a_folder_or_a_missing_file_is_not_a_label_file(project, tmp_path, capsys):
    (tmp_path / "labels.csv").mkdir()
    assert "labels.csv is a folder: give the label file" in import_refused(
        project, tmp_path / "labels.csv", capsys, "folder for a file")
    assert "does not exist" in import_refused(project, tmp_path / "missing.csv", capsys,
                                             "missing file")
    (tmp_path / "labels.txt").write_text("item,label\n0,x\n")
    assert "label files are .csv or .json" in import_refused(project, tmp_path / "labels.txt",
                                                              capsys, "unknown file type")
