"""Reading label files (CSV, JSON, Label Studio JSON) into ``(item, label, annotator)`` rows,
not yet checked against a project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepal.data.sources.tables import read_csv
from deepal.errors import DeepALError
from deepal.labeling.labelstudio import parse_export

#: Column names accepted for the item and its label.
ITEM_COLUMNS = ("item", "item_id", "id", "ref", "file", "path")
LABEL_COLUMNS = ("label", "class")

Row = tuple[Any, Any, str]


def read_label_rows(path: Path, default_annotator: str) -> list[Row]:
    """``(item, label, annotator)`` rows of a CSV or JSON label file, unchecked.

    CSV: a header with an item column (``item``, ``item_id``, ``id``, ``ref``, ``file`` or
    ``path``), a ``label`` (or ``class``) column and optionally ``annotator``. JSON: a list of
    ``{"item": ..., "label": ..., "annotator": ...}``, or a Label Studio export.

    Examples
    --------
    ``read_label_rows(Path("answers.csv"), "import")`` gives ``[("img_001.png", "cat",
    "import"), ...]``.
    """
    if not path.is_file():
        raise DeepALError(f"label file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_rows(path, default_annotator)
    if suffix != ".csv":
        raise DeepALError(f"{path}: label files are .csv or .json")
    return _csv_rows(path, default_annotator)


def _json_rows(path: Path, default_annotator: str) -> list[Row]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise DeepALError(f"cannot read {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise DeepALError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(payload, list):
        raise DeepALError(f"{path}: expected a JSON list of {{'item', 'label'}} objects")
    if payload and isinstance(payload[0], dict) and "data" in payload[0]:
        return parse_export(payload)
    rows = []
    for n, entry in enumerate(payload):
        if not isinstance(entry, dict) or "item" not in entry or "label" not in entry:
            raise DeepALError(f"{path}, entry {n}: expected an object with 'item' and "
                              f"'label', got {entry!r}")
        rows.append((entry["item"], entry["label"],
                     str(entry.get("annotator") or default_annotator)))
    return rows


def _csv_rows(path: Path, default_annotator: str) -> list[Row]:
    header, table = read_csv(path, "a label file such as item,label")
    names = [name.lower() for name in header]
    item_col = next((names.index(c) for c in ITEM_COLUMNS if c in names), None)
    label_col = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if item_col is None or label_col is None:
        raise DeepALError(f"{path}: the header {header} needs an item column "
                          f"({'/'.join(ITEM_COLUMNS)}) and a label column ("
                          f"{'/'.join(LABEL_COLUMNS)})")
    who_col = names.index("annotator") if "annotator" in names else None
    return [(row[item_col].strip(), row[label_col].strip(),
             (row[who_col].strip() if who_col is not None else "") or default_annotator)
            for row in table]
