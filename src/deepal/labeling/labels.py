"""Labels given to a project's items: names and ids checked against the project, label files
checked whole before one transaction records them, and the labels written out as CSV."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError
from deepal.labeling.store import Store

#: Longest annotator name kept with a label.
MAX_ANNOTATOR = 100
_DECIMAL = re.compile(r"[0-9]{1,18}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about what was given."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    raise DeepALError(f"unknown class {shown(label)}: the classes are {', '.join(classes)}")


def item_id(n_items: int, item: Any, refs: Mapping[str, int] | None = None) -> int:
    """The id of an item given by id or by reference (its file path), or a clear error.

    An id is an integer or a string of plain decimal digits (``"7"``, not ``" 7"``, ``"+7"``,
    ``"7.0"`` or ``"1e3"``); a reference is matched exactly.

    Examples
    --------
    >>> item_id(10, "7"), item_id(10, 7), item_id(10, "a.png", {"a.png": 3})
    (7, 7, 3)
    """
    if isinstance(item, str):
        if refs is not None and item in refs:
            return refs[item]
        number = int(item) if _DECIMAL.fullmatch(item) else None
    else:
        number = item if isinstance(item, int) and not isinstance(item, bool) else None
    if number is not None and 0 <= number < n_items:
        return number
    raise DeepALError(f"unknown item {shown(item)}: items are 0..{n_items - 1} (plain decimal "
                      "numbers) or their file names")


def annotator_name(value: Any, default: str) -> str:
    """The annotator's name: a short string of printable characters, ``default`` if empty.

    Examples
    --------
    >>> annotator_name(" zoe ", "import"), annotator_name(None, "import")
    ('zoe', 'import')
    """
    if value is None:
        return default
    if not isinstance(value, str):
        raise DeepALError(f"the annotator must be a name (a string), got {shown(value)}")
    name = value.strip()
    if len(name) > MAX_ANNOTATOR or _CONTROL.search(name):
        raise DeepALError(f"the annotator {shown(value)} must be at most {MAX_ANNOTATOR} "
                          "printable characters")
    return name or default


def import_label_file(store: Store, classes: Sequence[str], path: str | os.PathLike[str],
                      annotator: str = "import") -> int:
    """Record the labels of a CSV / JSON / Label Studio file in one transaction.

    Every row is checked first (the item exists, the class is one of ``classes``, no item
    is labeled twice); one bad row refuses the whole file and changes nothing.

    Returns
    -------
    int
        The number of labels recorded.

    Examples
    --------
    ``import_label_file(project.store, project.classes, "answers.csv")`` gives ``120``.
    """
    from deepal.labeling.interchange import read_rows

    file = Path(path)
    rows = read_rows(file)
    refs = store.item_ids_by_ref()
    n_items = store.n_items()
    checked = []
    seen: dict[int, str] = {}
    for row in rows:
        try:
            item = item_id(n_items, row.item, refs)
            checked.append((item, class_index(classes, row.label),
                            annotator_name(row.annotator, annotator)))
        except DeepALError as error:
            raise DeepALError(f"{file}, {row.where}: {error}; nothing was imported") from None
        if item in seen:
            raise DeepALError(f"{file}: item {item} is labeled twice ({seen[item]} and "
                              f"{row.where}): keep one row per item; nothing was imported")
        seen[item] = row.where
    if not checked:
        raise DeepALError(f"{file} holds no labels; nothing was imported")
    from_studio = any(who.startswith("label-studio") for _, _, who in checked)
    store.add_labels(checked, "label-studio" if from_studio else "import")
    return len(checked)


def export_label_file(store: Store, classes: Sequence[str], path: Path) -> int:
    """Write every current label as CSV ``item,ref,label,annotator,labeled_at,kept_because``
    (the label kept is the latest; ``kept_because`` says whether other annotators agreed);
    returns how many."""
    from deepal.labeling.agreement import kept_because, votes

    labels = store.current_labels()
    refs = store.refs(sorted(labels))
    by_item = votes(store.label_history())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "ref", "label", "annotator", "labeled_at", "kept_because"])
        for item in sorted(labels):
            label = labels[item]
            writer.writerow([item, refs[item], classes[label.class_index], label.annotator,
                             label.created_at,
                             kept_because(label.annotator, by_item.get(item, {}), classes)])
    os.replace(tmp, path)
    return len(labels)
