"""Reading label files (CSV, JSON, Label Studio JSON) into checked labels."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError
from deepal.labeling.labelstudio import parse_export

#: Column names accepted for the item and its label.
ITEM_COLUMNS = ("item", "item_id", "id", "ref", "file", "path")
LABEL_COLUMNS = ("label", "class")


def read_label_rows(path: Path, default_annotator: str) -> list[tuple[Any, Any, str]]:
    """``(item, label, annotator)`` rows of a CSV or JSON label file, unchecked.

    CSV: a header with an item column (``item``, ``item_id``, ``id``, ``ref``, ``file`` or
    ``path``), a ``label`` (or ``class``) column and optionally ``annotator``. JSON: a list of
    ``{"item": ..., "label": ..., "annotator": ...}``, or a Label Studio export.
    """
    if not path.is_file():
        raise DeepALError(f"label file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DeepALError(f"cannot read {path}: {error}") from error
    if suffix == ".json":
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise DeepALError(f"{path} is not valid JSON: {error}") from error
        if isinstance(payload, list) and payload and isinstance(payload[0], dict) and \
                "data" in payload[0]:
            return parse_export(payload)
        if not isinstance(payload, list):
            raise DeepALError(f"{path}: expected a JSON list of {{'item', 'label'}} objects")
        rows = []
        for n, entry in enumerate(payload):
            if not isinstance(entry, dict) or "item" not in entry or "label" not in entry:
                raise DeepALError(f"{path}, entry {n}: expected an object with 'item' and "
                                  f"'label', got {entry!r}")
            rows.append((entry["item"], entry["label"],
                         str(entry.get("annotator") or default_annotator)))
        return rows
    if suffix != ".csv":
        raise DeepALError(f"{path}: label files are .csv or .json")
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DeepALError(f"{path} is not a valid CSV file: {error}") from error
    if not table:
        raise DeepALError(f"{path} is empty: expected a header such as item,label")
    header = [h.strip().lower() for h in table[0]]
    item_col = next((header.index(c) for c in ITEM_COLUMNS if c in header), None)
    label_col = next((header.index(c) for c in LABEL_COLUMNS if c in header), None)
    if item_col is None or label_col is None:
        raise DeepALError(f"{path}: the header {table[0]} needs an item column "
                          f"({'/'.join(ITEM_COLUMNS)}) and a label column ("
                          f"{'/'.join(LABEL_COLUMNS)})")
    who_col = header.index("annotator") if "annotator" in header else None
    rows = []
    for line, row in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DeepALError(f"{path}, line {line}: {len(row)} values for {len(header)} "
                              "columns")
        annotator = row[who_col].strip() if who_col is not None and row[who_col].strip() \
            else default_annotator
        rows.append((row[item_col].strip(), row[label_col].strip(), annotator))
    return rows
