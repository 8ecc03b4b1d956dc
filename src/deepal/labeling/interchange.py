"""Reading label files (CSV, JSON, Label Studio JSON) into rows of ``item, label, annotator``
and where each row is in the file, not yet checked against a project."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, NamedTuple

from deepal.data.sources.tables import read_csv
from deepal.errors import DeepALError
from deepal.labeling.labelstudio import parse_export
from deepal.labeling.safejson import JSONInputError, parse_json

#: Column names accepted for the item and its label.
ITEM_COLUMNS = ("item", "item_id", "id", "ref", "file", "path")
LABEL_COLUMNS = ("label", "class")
#: Deepest nesting read in a JSON label file (a Label Studio export nests about 8 levels).
MAX_DEPTH = 32


class Row(NamedTuple):
    """One label of a file, as written there; ``annotator`` is ``None`` where the file names
    none, and ``where`` says where the row is (``"row 3"``, ``"entry 2"``, ``"task 5"``)."""

    item: Any
    label: Any
    annotator: Any
    where: str


def read_label_rows(path: Path, default_annotator: str) -> list[tuple[Any, Any, Any]]:
    """``(item, label, annotator)`` of each row of a label file (see :func:`read_rows`),
    ``default_annotator`` where the file names none, unchecked.

    Examples
    --------
    ``read_label_rows(Path("answers.csv"), "me")`` gives ``[("img_001.png", "cat", "me"),
    ...]``.
    """
    return [(row.item, row.label, default_annotator if row.annotator is None
             else row.annotator) for row in read_rows(path)]


def read_rows(path: Path) -> list[Row]:
    """The rows of a CSV or JSON label file, unchecked.

    CSV: a header with an item column (``item``, ``item_id``, ``id``, ``ref``, ``file`` or
    ``path``), a ``label`` (or ``class``) column and optionally ``annotator``; rows are
    numbered as lines of the file (the header is row 1). JSON: a list of ``{"item": ...,
    "label": ..., "annotator": ...}`` (entries numbered from 1), or a Label Studio export
    (tasks numbered from 1).

    Examples
    --------
    ``read_rows(Path("answers.csv"))`` gives ``[Row("img_001.png", "cat", None,
    "row 2"), ...]``.
    """
    if path.is_dir():
        raise DeepALError(f"{path} is a folder: give the label file (.csv or .json)")
    if not path.is_file():
        raise DeepALError(f"label file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_rows(path)
    if suffix != ".csv":
        raise DeepALError(f"{path}: label files are .csv or .json")
    return _csv_rows(path)


def _json_rows(path: Path) -> list[Row]:
    try:
        payload = parse_json(path.read_bytes(), MAX_DEPTH)
    except OSError as error:
        raise DeepALError(f"cannot read {path}: {error}") from error
    except JSONInputError as error:
        raise DeepALError(f"{path} is not a label file: {error}") from None
    if not isinstance(payload, list):
        raise DeepALError(f"{path}: expected a JSON list of {{'item', 'label'}} objects")
    if payload and isinstance(payload[0], dict) and "data" in payload[0]:
        try:
            return [Row(item, label, who, f"task {n}")
                    for n, item, label, who in parse_export(payload)]
        except DeepALError as error:
            raise DeepALError(f"{path}: {error}; nothing was imported") from None
    rows = []
    for n, entry in enumerate(payload, start=1):
        if not isinstance(entry, dict) or "item" not in entry or "label" not in entry \
                or not set(entry) <= {"item", "label", "annotator"}:
            got = f"keys {sorted(entry)}" if isinstance(entry, dict) else type(entry).__name__
            raise DeepALError(f"{path}, entry {n}: expected an object with 'item', 'label' "
                              f"and optionally 'annotator', got {got}")
        rows.append(Row(entry["item"], entry["label"], entry.get("annotator"), f"entry {n}"))
    return rows


def _csv_rows(path: Path) -> list[Row]:
    header, table = read_csv(path, "a label file such as item,label")
    names = [name.lower() for name in header]
    item_col = next((names.index(c) for c in ITEM_COLUMNS if c in names), None)
    label_col = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if item_col is None or label_col is None:
        raise DeepALError(f"{path}: the header {header} needs an item column "
                          f"({'/'.join(ITEM_COLUMNS)}) and a label column ("
                          f"{'/'.join(LABEL_COLUMNS)})")
    who_col = names.index("annotator") if "annotator" in names else None
    # The item is kept as written: " 3" is not item 3 (it may be a file name).
    return [Row(row[item_col], row[label_col].strip(),
                row[who_col] if who_col is not None else None, f"row {line}")
            for line, row in zip(_line_numbers(path), table, strict=True)]



def _line_numbers(path: Path) -> list[int]:
    """The file's line where each row :func:`read_csv` returns starts (it skips blank rows;
    a quoted value may hold line breaks)."""
    lines, end = [], 0
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if any(cell.strip() for cell in row):
                lines.append(end + 1)
            end = reader.line_num
    return lines[1:]
