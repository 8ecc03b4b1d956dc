"""Predictions of a project's trained model: for its unlabeled items, or for new files of the
project's kind (images, table rows, texts, arrays), with each item's class, probability, top
classes and whether a person should look at it.

The model is ``model.pt`` (:mod:`deepal.labeling.model_file`), read as data; new inputs go
through the pool's own preprocessing (image size and channels, the pool's feature scaling).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepal.config.base import Settings
from deepal.config.fields import Fraction, PositiveInt
from deepal.errors import DeepALError
from deepal.labeling.model_file import SKLEARN

#: The formats ``deepal predict`` writes.
FORMATS = ("csv", "json")
#: A prediction below this probability is flagged ``needs_review`` by default.
REVIEW_BELOW = 0.5


class PredictOptions(Settings):
    """What ``deepal predict`` is asked.

    Parameters
    ----------
    top_k:
        Classes listed per item.
    review_below:
        Items whose predicted class has a lower probability are flagged ``needs_review``.
    threads:
        CPU threads of torch.

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(PredictOptions, {"top_k": 2, "review_below": 0.7, "threads": 1}).top_k
    2
    """

    top_k: PositiveInt = 3
    review_below: Fraction = REVIEW_BELOW
    threads: PositiveInt = 1


def prediction_rows(probs: np.ndarray, classes: Sequence[str], refs: Sequence[str],
                    item_ids: Sequence[int | None], top_k: int = 3,
                    review_below: float = REVIEW_BELOW) -> list[dict[str, Any]]:
    """One row per item from its class probabilities.

    Parameters
    ----------
    probs:
        ``(N, C)`` class probabilities.
    classes:
        The class names, index = column of ``probs``.
    refs, item_ids:
        Each item's name (file, row) and its project item id (``None`` for a new file).
    top_k:
        How many classes each row lists, most probable first.
    review_below:
        Rows whose top probability is below this are flagged ``needs_review``.

    Returns
    -------
    list of dict
        ``item``, ``ref``, ``label``, ``probability``, ``top`` (``[[class, probability],
        ...]``) and ``needs_review``.

    Examples
    --------
    >>> rows = prediction_rows(np.array([[0.2, 0.8]]), ["cat", "dog"], ["a.png"], [None],
    ...                        top_k=1)
    >>> rows[0]["label"], rows[0]["needs_review"]
    ('dog', False)
    """
    k = max(1, min(int(top_k), len(classes)))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = []
    for n, (ref, item) in enumerate(zip(refs, item_ids, strict=True)):
        top = [[classes[c], round(float(probs[n, c]), 6)] for c in order[n]]
        rows.append({"item": item, "ref": ref, "label": top[0][0], "probability": top[0][1],
                     "top": top, "needs_review": bool(top[0][1] < review_below)})
    return rows


def write_predictions(rows: list[dict[str, Any]], path: Path, fmt: str = "csv") -> None:
    """Write ``rows`` of :func:`prediction_rows` as CSV (the top classes as ``class:prob``
    joined by ``;``) or JSON, atomically.

    Examples
    --------
    ``write_predictions(rows, Path("predictions.csv"))``
    """
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        if fmt == "json":
            json.dump(rows, handle, indent=1)
            handle.write("\n")
        else:
            writer = csv.writer(handle)
            writer.writerow(["item", "ref", "label", "probability", "top", "needs_review"])
            for row in rows:
                top = ";".join(f"{name}:{p:.4f}" for name, p in row["top"])
                writer.writerow(["" if row["item"] is None else row["item"], row["ref"],
                                 row["label"], f"{row['probability']:.6f}", top,
                                 int(row["needs_review"])])
    os.replace(tmp, path)


def check_output(path: Path, fmt: str) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if fmt not in FORMATS:
        raise DeepALError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if path.is_dir():
        raise DeepALError(f"-o {path} is a folder: name the file to write")
    if not path.parent.is_dir():
        raise DeepALError(f"-o {path}: the folder {path.parent} does not exist")


def new_inputs(project: Any, paths: Sequence[str | os.PathLike[str]]
               ) -> tuple[np.ndarray, list[str]]:
    """The inputs of new files of ``project``'s kind, preprocessed as its pool was, and a
    name for each item.

    Images are files or folders of image files, decoded at the project's size and channels;
    tables, arrays and text files are read as at ``deepal project init`` (a table by the
    pool's feature columns; its label column, if any, is ignored).

    Raises
    ------
    DeepALError
        If a path does not exist or its items do not have the pool's shape.
    """
    if not paths:
        raise DeepALError("--files needs at least one file or folder")
    parts, refs = [], []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise DeepALError(f"--files {given}: no such file or folder")
        X, names = _READERS[project.settings.kind](project, path)
        parts.append(X)
        refs += names
    X = np.concatenate(parts)
    pool = project.arrays()["X"]
    if X.shape[1:] != pool.shape[1:]:
        raise DeepALError(f"the items of {', '.join(map(str, paths))} have shape "
                          f"{X.shape[1:]}, and this project's have {pool.shape[1:]}: give "
                          f"files of the project's kind ({project.settings.kind})")
    return X.astype(pool.dtype, copy=False), refs


def _images(project: Any, path: Path) -> tuple[np.ndarray, list[str]]:
    from deepal.data.sources.images import decode_images, list_image_folder

    files = [path] if path.is_file() else list_image_folder(path)[0]
    if not files:
        raise DeepALError(f"--files {path}: the folder holds no image")
    settings = project.settings
    pixels = decode_images(files, settings.image_size, settings.channels)
    return pixels.numpy(), [str(f) for f in files]


def _table(project: Any, path: Path) -> tuple[np.ndarray, list[str]]:
    from deepal.data.sources.tables import from_table

    data = from_table(path, feature_columns=project.settings.feature_names,
                      class_names=project.classes, standardize=False)
    X = np.asarray(data.X_train, dtype=np.float32)
    return X, [f"{path} row {i + 1}" for i in range(len(X))]


def _by_source(project: Any, path: Path) -> tuple[np.ndarray, list[str]]:
    from deepal.labeling.sources import read_source

    settings = project.settings.model_copy(update={"label_column": None})
    source = read_source(settings, path, list(project.classes), previews=False)
    return source.X, [f"{path} {ref}" for ref in source.refs]


_READERS = {"images": _images, "table": _table, "numpy": _by_source, "texts": _by_source}


def predict_probabilities(project: Any, X: np.ndarray, record: dict[str, Any],
                          device: str | None = None) -> np.ndarray:
    """Class probabilities ``(N, C)`` of ``X`` by the model ``record`` of ``project``.

    ``X`` is preprocessed with the pool's handler (its image scaling, its feature
    standardisation)."""
    from deepal.data.handlers import TensorHandler
    from deepal.labeling.sources import pool_handler

    if (record["architecture"] == SKLEARN) != (project.settings.model is not None):
        raise DeepALError("the saved model.pt was written for another kind of model than this "
                          "project's: train it again with --retrain")
    handler = pool_handler(project.arrays()["X"]) or TensorHandler
    net = project.net(device)
    if record["architecture"] == SKLEARN:  # no weights kept: fitted again on its labels
        net.train(handler(record["train_inputs"].numpy(), record["train_labels"].numpy()))
    else:
        net.load_state_dict({"clf": record["state_dict"], "epochs_trained": 0})
    return net.predict_prob(handler(X, None)).numpy()
