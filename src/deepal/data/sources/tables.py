"""Tables of features: CSV (standard library) or Parquet (the optional extra ``tables``),
one row per example, an optional label column."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from deepal.data.handlers import TensorHandler
from deepal.data.pool import Data, Handler
from deepal.data.sources import existing_file
from deepal.data.sources.labels import encode_labels
from deepal.errors import CorruptDataError, DeepALError, first_line


def read_csv(path: str | os.PathLike[str], what: str = "a CSV table"
             ) -> tuple[list[str], list[list[str]]]:
    """The header (names stripped) and the rows of a CSV file; blank rows are skipped and
    every other row must have a value per column.

    Parameters
    ----------
    path:
        A CSV file with a header row (UTF-8, with or without a byte order mark).
    what:
        What the file is, for the error when it is empty (e.g. ``"a label file"``).

    Returns
    -------
    header, rows
        The column names and the rows, each a list of strings as long as the header.

    Raises
    ------
    CorruptDataError
        The file cannot be decoded, is empty, repeats a column name, or a row has another
        number of values than the header (the error names the line).
    """
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            numbered = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorruptDataError(f"cannot read CSV file {file}: {error}") from error
    if not numbered or not any(cell.strip() for cell in numbered[0][1]):
        raise CorruptDataError(f"{file} is empty: {what} needs a header row")
    header = [name.strip() for name in numbered[0][1]]
    if len(set(header)) != len(header):
        raise CorruptDataError(f"{file} has repeated column names in its header {header}")
    rows = []
    for line, row in numbered[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CorruptDataError(
                f"{file}, line {line}: {len(row)} values for {len(header)} columns")
        rows.append(row)
    return header, rows


def read_table(path: str | os.PathLike[str]) -> dict[str, list[Any]]:
    """The columns of a CSV (with a header row) or Parquet file, by name."""
    file = existing_file(path, "table")
    if file.suffix.lower() == ".parquet":
        return _read_parquet(file)
    header, rows = read_csv(file)
    return {name: [row[j] for row in rows] for j, name in enumerate(header)}


def _read_parquet(file: Path) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise DeepALError('reading Parquet needs pyarrow: pip install "deepal[tables]"') \
            from error
    try:
        return pq.read_table(file).to_pydict()  # type: ignore[no-any-return]
    except Exception as error:  # pyarrow raises its own error types, often on several lines
        raise CorruptDataError(f"cannot read Parquet file {file}: {first_line(error)}") \
            from error


def features_of(columns: dict[str, list[Any]], names: Sequence[str], source: str) -> np.ndarray:
    """The named columns as a ``float32`` matrix, or an error naming a non-numeric cell."""
    out = np.empty((len(columns[names[0]]) if names else 0, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        for i, value in enumerate(columns[name]):
            try:
                out[i, j] = float(value)
            except (TypeError, ValueError):
                raise CorruptDataError(
                    f"{source}: column {name!r}, row {i + 1} holds {value!r}, not a number "
                    "(name the label column with label_column, or drop text columns)"
                ) from None
    return out


def from_table(
    path: str | os.PathLike[str],
    label_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    test_path: str | os.PathLike[str] | None = None,
    standardize: bool = True,
) -> Data:
    """A :class:`Data` pool from a CSV or Parquet table of numeric features.

    Parameters
    ----------
    path:
        ``.csv`` (header row, comma separated) or ``.parquet``.
    label_column:
        The column of labels (class names or indices); an empty cell means not labeled.
        ``None``: no labels (then ``class_names`` is required).
    feature_columns:
        The feature columns; default every column except ``label_column``.
    class_names:
        The classes, index = class; default the labels found (sorted names, or the indices).
    test_path:
        A labeled test table with the same columns.
    standardize:
        Scale each feature to zero mean and unit variance over the pool (in the handler).

    Returns
    -------
    Data
        The pool, with the test table when given.

    Examples
    --------
    ``data = from_table("measurements.csv", label_column="species")``
    """
    columns = read_table(path)
    features = _feature_names(columns, label_column, feature_columns, path)
    X = features_of(columns, features, str(path))
    labels = None if label_column is None else columns[label_column]
    Y, classes = encode_labels(labels, len(X), class_names)
    if classes is None and (Y < 0).all():
        raise DeepALError(f"{path} has no labels: pass class_names (the classes to label)")
    X_test = Y_test = None
    if test_path is not None:
        if label_column is None:
            raise DeepALError("a test table needs label_column")
        test = read_table(test_path)
        _feature_names(test, label_column, features, test_path)
        X_test = features_of(test, features, str(test_path))
        Y_test, classes = encode_labels(test[label_column], len(X_test),
                                        classes or _int_names(Y))
    data = Data(X, Y, X_test, Y_test, handler=standardizer(X) if standardize else None,
                n_classes=None if classes is None else len(classes), class_names=classes)
    data.feature_names = features  # type: ignore[attr-defined]
    return data


def standardizer(X: np.ndarray) -> Handler | None:
    """A handler scaling each feature (column) of ``X`` to zero mean and unit variance over
    ``X``, a batch at a time; ``None`` for an empty ``X``.

    Examples
    --------
    >>> handler = standardizer(np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32))
    >>> handler.keywords["mean"], handler.keywords["std"]
    ([2.0, 5.0], [1.0, 1.0])
    """
    if not len(X):
        return None
    std = X.std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays 0 instead of dividing by zero
    return partial(TensorHandler, mean=X.mean(axis=0).tolist(), std=std.tolist())


def _feature_names(columns: dict[str, list[Any]], label_column: str | None,
                   feature_columns: Sequence[str] | None, path: str | os.PathLike[str]
                   ) -> list[str]:
    """The feature columns (default: all but the labels'), each checked to be in the table."""
    if label_column is not None and label_column not in columns:
        raise DeepALError(f"{path} has no column {label_column!r}: it has {list(columns)}")
    features = list(feature_columns) if feature_columns is not None else [
        name for name in columns if name != label_column]
    missing = [name for name in features if name not in columns]
    if missing or not features:
        raise DeepALError(f"{path}: feature columns {missing or features} not found in "
                          f"{list(columns)}")
    return features


def _int_names(Y: np.ndarray) -> list[str]:
    return [str(i) for i in range(int(Y.max()) + 1)]
