"""Labels given to a project's items: names and ids checked against the project, label files
checked whole before one transaction records them, and the labels written out as CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError
from deepal.labeling.store import Store


def class_index(classes: Sequence[str], label: Any) -> int:
    """The index of a class given by name (or index), or a clear error.

    Examples
    --------
    >>> class_index(["cat", "dog"], "dog"), class_index(["cat", "dog"], 0)
    (1, 0)
    """
    if isinstance(label, str) and label in classes:
        return list(classes).index(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(classes):
        return label
    raise DeepALError(f"unknown class {label!r}: the classes are {', '.join(classes)}")


def item_id(n_items: int, item: Any, refs: dict[str, int] | None = None) -> int:
    """The id of an item given by id or by reference (its file path), or a clear error.

    Examples
    --------
    >>> item_id(10, "7"), item_id(10, "a.png", {"a.png": 3})
    (7, 3)
    """
    text = str(item).strip()
    if refs is not None and text in refs:
        return refs[text]
    if text.lstrip("-").isdigit() and 0 <= int(text) < n_items:
        return int(text)
    raise DeepALError(f"unknown item {item!r}: items are 0..{n_items - 1} or their file names")


def import_label_file(store: Store, classes: Sequence[str], path: str | os.PathLike[str],
                      annotator: str = "import") -> int:
    """Record the labels of a CSV / JSON / Label Studio file in one transaction.

    Every row is checked first (the item exists, the class is one of ``classes``); one bad
    row refuses the whole file and changes nothing.

    Returns
    -------
    int
        The number of labels recorded.
    """
    from deepal.labeling.interchange import read_label_rows

    file = Path(path)
    rows = read_label_rows(file, annotator)
    refs = store.item_ids_by_ref()
    n_items = store.n_items()
    checked = []
    for n, (item, label, who) in enumerate(rows, start=1):
        try:
            checked.append((item_id(n_items, item, refs), class_index(classes, label), who))
        except DeepALError as error:
            raise DeepALError(f"{file}, label {n}: {error}; nothing was imported") from None
    if not checked:
        raise DeepALError(f"{file} holds no labels; nothing was imported")
    from_studio = any(who.startswith("label-studio") for _, _, who in checked)
    store.add_labels(checked, "label-studio" if from_studio else "import")
    return len(checked)


def export_label_file(store: Store, classes: Sequence[str], path: Path) -> int:
    """Write every current label as CSV ``item,ref,label,annotator,labeled_at``; returns how
    many."""
    labels = store.current_labels()
    refs = store.refs(sorted(labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "ref", "label", "annotator", "labeled_at"])
        for item in sorted(labels):
            label = labels[item]
            writer.writerow([item, refs[item], classes[label.class_index], label.annotator,
                             label.created_at])
    os.replace(tmp, path)
    return len(labels)
