"""Class labels given as names or numbers, turned into class indices (``-1`` = not labeled)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from deepal.errors import DeepALError

#: Label values that mean "not labeled yet".
MISSING = ("", "?", "none", "null", "nan", "unlabeled", "unknown")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING


def encode_labels(
    values: Iterable[Any] | None,
    n: int,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Class indices of ``values`` and the class names they refer to.

    Parameters
    ----------
    values:
        One label per example: a class name, a class index, or a missing value (``None``,
        NaN, an empty string...) for an example nobody has labelled. ``None``: no labels.
    n:
        The number of examples.
    class_names:
        The classes, index = class. Without them, integer labels are used as they are (no
        names), and other labels name the classes, sorted alphabetically.

    Returns
    -------
    labels, class_names
        ``int64`` indices with ``-1`` for missing labels, and the class names (or ``None``).

    Raises
    ------
    DeepALError
        A label is not one of ``class_names``, a number is not a whole number in the range of
        ``int64`` (``1.7``, infinity), or the count is wrong.

    Examples
    --------
    >>> labels, names = encode_labels(["dog", "", "cat"], 3)
    >>> labels.tolist(), names
    ([1, -1, 0], ['cat', 'dog'])
    """
    if values is None:
        return np.full(n, -1, dtype=np.int64), None if class_names is None else list(class_names)
    raw = list(values)
    if len(raw) != n:
        raise DeepALError(f"got {len(raw)} labels for {n} examples")
    present = [v for v in raw if not _is_missing(v)]
    _refuse_fractions(present)
    if class_names is None:
        if all(_as_int(v) is not None for v in present):
            return _integer_labels(raw), None
        class_names = sorted({str(v).strip() for v in present})
    names = [str(c) for c in class_names]
    return _named_labels(raw, names), names


def _refuse_fractions(present: list[Any]) -> None:
    """Numbers must be class indices: a label of 1.7 or infinity is a mistake, not a name."""
    for value in present:
        number = isinstance(value, (int, float, np.integer, np.floating)) and \
            not isinstance(value, (bool, np.bool_))
        if number and _as_int(value) is None:
            raise DeepALError(
                f"label {value!r} is not a class index (a whole number from 0 to 2**63 - 1): "
                "give class indices, or class names as strings"
            )


def _integer_labels(raw: list[Any]) -> np.ndarray:
    """Labels that are class indices already (``-1`` for missing ones)."""
    out = np.array([-1 if _is_missing(v) else _as_int(v) for v in raw], dtype=np.int64)
    if out.size and out.min() < -1:
        raise DeepALError(f"negative class index {out.min()} among the labels")
    return out


def _named_labels(raw: list[Any], names: list[str]) -> np.ndarray:
    """Labels given by class name, or by index into ``names`` (``-1`` for missing ones)."""
    index = {name: i for i, name in enumerate(names)}
    out = np.full(len(raw), -1, dtype=np.int64)
    for row, value in enumerate(raw):
        if _is_missing(value):
            continue
        key = str(value).strip()
        number = _as_int(value)
        if key in index:
            out[row] = index[key]
        elif number is not None and 0 <= number < len(names):
            out[row] = number
        else:
            raise DeepALError(f"label {value!r} (example {row}) is not a class: the classes "
                              f"are {', '.join(names)}")
    return out


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``3``, ``3.0``, ``"3"``), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    number: int | None = None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        number = int(value) if float(value).is_integer() else None
    elif isinstance(value, str):
        text = value.strip()
        number = int(text) if text.removeprefix("-").isdecimal() else None
    # Labels are stored as int64: a larger number is no class index.
    return number if number is not None and -(2**63) <= number < 2**63 else None
