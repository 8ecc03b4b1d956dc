"""When more labels stop paying: signals from the labels alone and, with a test set, from the
held-out accuracy.

* **Stabilising predictions** (Bloodgood and Vijay-Shanker, 2009): every round's model
  predicts a fixed *stop set* of pool items, labeled or not, chosen once from the project's
  seed; the agreement of two successive models is Cohen's kappa of their predictions. Once
  kappa has stayed at or above ``threshold`` (0.99) for ``window`` (3) successive pairs, the
  models have stopped changing their minds and further labels are unlikely to change them
  much. No test set is needed.
* **Held-out accuracy and its gain per label**, where the project has a test set.

The pure functions take arrays; :func:`record_stop_predictions` and
:func:`stop_predictions` keep each round's predictions in ``stopset.npz`` beside the
database (the database's tables are unchanged).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The file of each round's predictions on the stop set.
STOP_NAME = "stopset.npz"
#: Items in the stop set (or the whole pool, if smaller).
STOP_SIZE = 1000
#: Kappa at or above which two successive models agree.
THRESHOLD = 0.99
#: Successive agreeing pairs needed for the signal.
WINDOW = 3


def cohens_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa of two label vectors: their agreement beyond what their class
    frequencies give by chance, ``(p_o - p_e) / (1 - p_e)``; 1.0 when both give one and the
    same class throughout.

    Examples
    --------
    >>> cohens_kappa(np.array([0, 1, 1, 0]), np.array([0, 1, 1, 0]), 2)
    1.0
    >>> cohens_kappa(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), 2)
    0.0
    """
    if len(a) == 0:
        return 1.0
    observed = float(np.mean(a == b))
    pa = np.bincount(a, minlength=n_classes) / len(a)
    pb = np.bincount(b, minlength=n_classes) / len(b)
    chance = float(np.dot(pa, pb))
    if chance >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - chance) / (1.0 - chance)


def stabilising_predictions(predictions: Sequence[np.ndarray], n_classes: int,
                            threshold: float = THRESHOLD, window: int = WINDOW
                            ) -> tuple[list[float], int | None]:
    """The kappa of each successive pair of rounds' stop-set predictions, and the index of
    the round at which the signal fires (the last of ``window`` successive pairs with kappa
    at or above ``threshold``), or ``None``.

    Examples
    --------
    >>> same = np.array([0, 1, 2, 1])
    >>> kappas, fired = stabilising_predictions([np.array([0, 0, 0, 1]), same, same, same,
    ...                                          same], 3)
    >>> [round(k, 3) for k in kappas], fired
    ([0.273, 1.0, 1.0, 1.0], 4)
    """
    kappas = [cohens_kappa(before, after, n_classes)
              for before, after in zip(predictions[:-1], predictions[1:], strict=True)]
    run = 0
    for pair, kappa in enumerate(kappas):
        run = run + 1 if kappa >= threshold else 0
        if run >= window:
            return kappas, pair + 1
    return kappas, None


def accuracy_curve(n_labeled: Sequence[int], accuracy: Sequence[float | None]
                   ) -> list[dict[str, Any]]:
    """The held-out accuracy by number of labels, and each step's gain per label.

    Examples
    --------
    >>> accuracy_curve([10, 20, 40], [0.5, 0.7, 0.8])[2]
    {'n_labeled': 40, 'test_accuracy': 0.8, 'gain_per_label': 0.005}
    """
    curve: list[dict[str, Any]] = []
    for count, acc in zip(n_labeled, accuracy, strict=True):
        if acc is None:
            continue
        gain = None
        if curve and count > curve[-1]["n_labeled"]:
            gain = round((acc - curve[-1]["test_accuracy"]) / (count - curve[-1]["n_labeled"]),
                         6)
        curve.append({"n_labeled": int(count), "test_accuracy": acc, "gain_per_label": gain})
    return curve


def stop_set(n_items: int, seed: int, size: int = STOP_SIZE) -> np.ndarray:
    """The project's stop set: ``size`` pool items drawn once from its ``seed`` (sorted).

    Examples
    --------
    >>> len(stop_set(50, seed=1, size=20)), len(stop_set(10, seed=1, size=20))
    (20, 10)
    """
    rng = np.random.default_rng([seed, 0x570])  # its own stream: no round's draws change
    return np.sort(rng.choice(n_items, size=min(size, n_items), replace=False))


def stop_predictions(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The round ids and their stop-set predictions ``(rounds, [R, S])`` kept so far."""
    path = Path(root) / STOP_NAME
    if not path.is_file():
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
    with np.load(path, allow_pickle=False) as saved:
        return saved["rounds"], saved["predictions"]


def record_stop_predictions(root: Path, round_id: int, predicted: np.ndarray) -> None:
    """Keep round ``round_id``'s predictions on the stop set (atomically)."""
    rounds, predictions = stop_predictions(root)
    if len(rounds) and predictions.shape[1] != len(predicted):
        rounds, predictions = rounds[:0], predictions[:0, :0]  # another stop set: restart
    rounds = np.append(rounds, np.int64(round_id))
    row = np.asarray(predicted, dtype=np.int64)[None, :]
    predictions = row if not len(predictions) else np.concatenate([predictions, row])
    path = Path(root) / STOP_NAME
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, rounds=rounds, predictions=predictions)
    os.replace(tmp, path)


def stopping_report(root: Path, n_classes: int, rounds: Sequence[Any]) -> dict[str, Any]:
    """What ``deepal status`` shows on stopping: the kappas of successive rounds, where the
    stabilising-predictions signal fired (round and labels), and the accuracy curve.

    ``rounds`` are the project's :class:`~deepal.labeling.store.Round` records."""
    ids, predictions = stop_predictions(root)
    kappas, fired = stabilising_predictions(list(predictions), n_classes)
    by_id = {r.id: r for r in rounds}
    fired_round = int(ids[fired]) if fired is not None else None
    return {
        "stop_set_size": int(predictions.shape[1]) if len(predictions) else 0,
        "threshold": THRESHOLD, "window": WINDOW,
        "kappas": [{"round": int(r), "n_labeled": by_id[int(r)].n_labeled if int(r) in by_id
                    else None, "kappa": round(k, 6)} for r, k in zip(ids[1:], kappas,
                                                                      strict=True)],
        "stop": fired_round is not None,
        "stop_round": fired_round,
        "stop_n_labeled": by_id[fired_round].n_labeled if fired_round in by_id else None,
        "accuracy_curve": accuracy_curve([r.n_labeled for r in rounds],
                                         [r.test_accuracy for r in rounds]),
    }
