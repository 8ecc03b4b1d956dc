"""Which labels to doubt: confident learning (Northcutt, Jiang and Chuang, 2021) on
out-of-fold predictions.

Each labeled item is predicted by a model trained without it (``k`` folds); a class ``j``
is *confident* for an item when its probability reaches ``t_j``, the mean probability of
``j`` over the items labeled ``j``. An item whose most probable confident class is not its
label is a likely label error. Every labeled item is ranked by its *self-confidence*, the
out-of-fold probability of the label it was given (lowest first), so the list reads from the
most doubtful down.

These few formulas are written here rather than taken from cleanlab, which does the same and
much more, so that deepal needs no further dependency for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``t_j``: the mean probability of class ``j`` over the items labeled ``j`` (``inf`` for
    a class nobody gave, so it is never confident).

    Examples
    --------
    >>> class_thresholds(np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]]), np.array([0, 0, 1]))
    array([0.8, 0.8])
    """
    n_classes = probs.shape[1]
    out = np.full(n_classes, np.inf)
    for j in range(n_classes):
        given = labels == j
        if given.any():
            out[j] = probs[given, j].mean()
    return out


def doubtful_labels(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Confident learning's verdict on each item.

    Parameters
    ----------
    probs:
        ``(N, C)`` out-of-fold class probabilities.
    labels:
        ``(N,)`` the labels given.

    Returns
    -------
    order, flagged, suggested
        The items ranked by self-confidence (lowest first); whether each item's most
        probable confident class differs from its label; that class (or the most probable
        class where none is confident).

    Examples
    --------
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.95, 0.05]])
    >>> order, flagged, suggested = doubtful_labels(probs, np.array([0, 0, 1, 1]))
    >>> order.tolist(), flagged.tolist(), suggested.tolist()
    ([3, 1, 0, 2], [False, False, False, True], [0, 0, 1, 0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    thresholds = class_thresholds(probs, labels)
    confident = np.where(probs >= thresholds[None, :], probs, -np.inf)
    has_confident = np.isfinite(confident).any(axis=1)
    suggested = np.where(has_confident, confident.argmax(axis=1), probs.argmax(axis=1))
    flagged = has_confident & (suggested != labels)
    self_confidence = probs[np.arange(len(labels)), labels]
    order = np.argsort(self_confidence, kind="stable")
    return order, flagged, suggested


def precision_at(ranked: Sequence[int], wrong: set[int], fraction: float) -> float:
    """The share of known wrong labels among the first ``fraction`` of ``ranked`` items.

    Examples
    --------
    >>> precision_at([4, 2, 9, 1], {4, 9}, 0.5)
    0.5
    """
    top = max(1, round(fraction * len(ranked)))
    return sum(1 for i in ranked[:top] if i in wrong) / top


def out_of_fold_probabilities(project: Any, items: np.ndarray, labels: np.ndarray,
                              folds: int = 5, device: str | None = None) -> np.ndarray:
    """Class probabilities of each of ``items``, by the project's network trained on the
    other folds' labels (folds drawn from the project's seed).

    Parameters
    ----------
    project:
        A :class:`~deepal.labeling.Project`.
    items, labels:
        The labeled items and their labels.
    folds:
        How many models are trained; each item is predicted by the one trained without it.
    device:
        Where to train.
    """
    from deepal.labeling.sources import pool_handler
    from deepal.seeding import seed_everything

    X = project.arrays()["X"]
    handler = pool_handler(X)
    if handler is None:
        from deepal.data.handlers import TensorHandler

        handler = TensorHandler
    rng = np.random.default_rng([project.settings.seed, 0xD0B7])
    fold_of = rng.permutation(len(items)) % folds
    probs = np.zeros((len(items), len(project.classes)), dtype=np.float64)
    for fold in range(folds):
        held = fold_of == fold
        seed_everything(project.settings.seed + fold)
        net = project.net(device)
        net.train(handler(X[items[~held]], labels[~held]))
        probs[held] = net.predict_prob(handler(X[items[held]], None)).numpy()
    return probs


def review_rows(project: Any, folds: int = 5, device: str | None = None) -> list[dict[str, Any]]:
    """Every labeled item of ``project``, most doubtful first, with the class its
    out-of-fold model suggests and whether confident learning flags it.

    Raises
    ------
    DeepALError
        If there are fewer labeled items than twice ``folds``, or ``folds`` is below 2.
    """
    from deepal.errors import DeepALError

    labels_now = project.store.current_labels()
    if folds < 2:
        raise DeepALError(f"--folds {folds}: at least 2 models are needed (each item is "
                          "predicted by one trained without it)")
    if len(labels_now) < 2 * folds:
        raise DeepALError(f"only {len(labels_now)} items are labeled: label at least "
                          f"{2 * folds} (or pass a smaller --folds) before a review")
    items = np.array(sorted(labels_now), dtype=np.int64)
    labels = np.array([labels_now[i].class_index for i in items], dtype=np.int64)
    probs = out_of_fold_probabilities(project, items, labels, folds, device)
    order, flagged, suggested = doubtful_labels(probs, labels)
    refs = project.store.refs(items.tolist())
    classes = project.classes
    return [{"item": int(items[n]), "ref": refs[int(items[n])],
             "label": classes[labels[n]], "annotator": labels_now[int(items[n])].annotator,
             "label_probability": round(float(probs[n, labels[n]]), 6),
             "suggested": classes[suggested[n]],
             "suggested_probability": round(float(probs[n, suggested[n]]), 6),
             "flagged": bool(flagged[n])} for n in order]


#: The review batch ``deepal review --batch N`` leaves for ``deepal label --review``.
REVIEW_NAME = "review.json"


def write_review_batch(root: Path, rows: list[dict[str, Any]], n: int) -> Path:
    """Keep the ``n`` most doubtful of :func:`review_rows` as the project's review batch
    (``review.json``), stamped with the time: a label given after it counts as checked.

    Examples
    --------
    ``write_review_batch(project.root, project.review(), 20)``
    """
    from deepal.labeling.store import now

    batch = {"created_at": now(),
             "items": [{"item": row["item"], "suggested": row["suggested"]} for row in rows[:n]]}
    path = Path(root) / REVIEW_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(batch, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_review_batch(root: Path, n_items: int, classes: Sequence[str]
                      ) -> tuple[str, list[int], dict[int, str]]:
    """The review batch of the project in ``root``: when it was made, its items and the class
    suggested for each; checked against the project (the file is data).

    Raises
    ------
    DeepALError
        If there is none, or it is not one deepal wrote for this project.
    """
    from deepal.errors import DeepALError
    from deepal.labeling.safejson import JSONInputError, parse_json

    path = Path(root) / REVIEW_NAME
    if not path.is_file():
        raise DeepALError(f"there is no review batch in {root}: run `deepal review --batch 20` "
                          "first")
    problem = f"{path} is not a review batch deepal wrote: run `deepal review --batch 20` again"
    try:
        batch = parse_json(path.read_bytes(), 4)
    except (OSError, JSONInputError):
        raise DeepALError(problem) from None
    try:
        stamp = batch["created_at"]
        pairs = [(entry["item"], entry["suggested"]) for entry in batch["items"]]
    except (TypeError, KeyError):
        raise DeepALError(problem) from None
    if not isinstance(stamp, str) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_items
            and s in classes for i, s in pairs):
        raise DeepALError(problem)
    return stamp, [i for i, _ in pairs], dict(pairs)
