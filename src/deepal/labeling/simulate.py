"""A simulated annotator: the labelling loop of a project run with labels known in advance,
to see where the stopping signal fires on data like one's own (and how wrong labels are
found) before paying for real labels.

``python -m deepal.labeling.simulate digits`` (or ``mnist --data-dir DIR``) runs the loop on
a labeled data set and prints, per round, the labels, the held-out accuracy and the kappa of
the stopping signal, then where the signal fired and the accuracy at twice as many labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def simulate_labelling(project: Any, truth: Sequence[int] | np.ndarray, batch: int,
                       max_labels: int,
                       threads: int = 1, n_epoch: int | None = None) -> list[dict[str, Any]]:
    """Query ``batch`` items at a time and label them with ``truth`` until ``max_labels``
    labels are given; the project's status after each round's query.

    Parameters
    ----------
    project:
        A :class:`~deepal.labeling.Project`.
    truth:
        The class index of every pool item (the simulated annotator's answers).
    batch, max_labels:
        Items per round, and the labels at which to stop.
    threads, n_epoch:
        As :meth:`Project.query <deepal.labeling.Project.query>` takes them.

    Returns
    -------
    list of dict
        Per round: ``round``, ``n_labeled`` (the labels its model trained on),
        ``test_accuracy`` and the stopping report of ``project.status()``.

    Examples
    --------
    ``simulate_labelling(project, y, batch=20, max_labels=400)``
    """
    history = []
    while True:
        result = project.query(batch, threads=threads, n_epoch=n_epoch)
        stopping = project.status()["stopping"]
        history.append({"round": result.round_id, "n_labeled": result.n_labeled,
                        "test_accuracy": result.test_accuracy, "stopping": stopping})
        if result.n_labeled >= max_labels:
            return history
        project.store.add_labels([(i, int(truth[i]), "simulated") for i in result.item_ids],
                                 "simulated")


def signal_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the stopping signal fired in a :func:`simulate_labelling` history, its held-out
    accuracy there, and the accuracy of the first round with at least twice those labels.

    Examples
    --------
    >>> signal_summary([{"n_labeled": 0, "test_accuracy": None,
    ...                  "stopping": {"stop_n_labeled": None}}])["fired_at_labels"] is None
    True
    """
    fired = history[-1]["stopping"]["stop_n_labeled"]
    summary: dict[str, Any] = {"fired_at_labels": fired, "accuracy_there": None,
                               "accuracy_at_twice": None, "gap": None}
    if fired is None:
        return summary
    there = next(h for h in history if h["n_labeled"] == fired)["test_accuracy"]
    twice = next((h for h in history if h["n_labeled"] >= 2 * fired), None)
    summary["accuracy_there"] = there
    if twice is not None and there is not None:
        summary["accuracy_at_twice"] = twice["test_accuracy"]
        summary["gap"] = round(twice["test_accuracy"] - there, 4)
    return summary


def flipped_review(project: Any, truth: Sequence[int] | np.ndarray, flip: float,
                   seed: int = 0, folds: int = 5) -> dict[str, Any]:
    """Label every pool item with ``truth``, a ``flip`` fraction of them with another class
    (drawn from ``seed``), run :meth:`Project.review <deepal.labeling.Project.review>` and
    measure how many flipped labels it ranks first.

    Returns
    -------
    dict
        ``flipped`` (how many), ``precision_at_flip`` (flipped labels among the first
        ``flip`` fraction of the ranking), ``flagged`` and ``flagged_precision`` (flipped
        among the flagged items), ``recall_flagged`` (flagged among the flipped).

    Examples
    --------
    ``flipped_review(project, y, flip=0.05)["precision_at_flip"]``
    """
    from deepal.labeling.doubt import precision_at

    rng = np.random.default_rng(seed)
    n, n_classes = len(truth), len(project.classes)
    wrong = set(rng.choice(n, size=max(1, round(flip * n)), replace=False).tolist())
    given = [int(t) if i not in wrong else int((t + rng.integers(1, n_classes)) % n_classes)
             for i, t in enumerate(truth)]
    project.store.add_labels([(i, c, "simulated") for i, c in enumerate(given)], "simulated")
    rows = project.review(folds=folds)
    ranked = [row["item"] for row in rows]
    flagged = {row["item"] for row in rows if row["flagged"]}
    return {"flipped": len(wrong), "precision_at_flip": precision_at(ranked, wrong, flip),
            "flagged": len(flagged),
            "flagged_precision": len(flagged & wrong) / max(1, len(flagged)),
            "recall_flagged": len(flagged & wrong) / len(wrong)}


def _data(name: str, data_dir: str | None, n_pool: int, n_test: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    from deepal.data.registry import get_dataset

    data = get_dataset(name, data_dir=data_dir, n_pool=n_pool, download=False)
    X, y = np.asarray(data.X_train), np.asarray(data.Y_train)
    X_test, y_test = np.asarray(data.X_test)[:n_test], np.asarray(data.Y_test)[:n_test]
    return X, y, X_test, y_test, [str(c) for c in range(data.n_classes)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulation of the module docstring; print one JSON line per round."""
    parser = argparse.ArgumentParser(prog="python -m deepal.labeling.simulate")
    parser.add_argument("dataset", choices=("digits", "MNIST"))
    parser.add_argument("--data-dir")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--max-labels", type=int, default=400)
    parser.add_argument("--n-pool", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-epoch", type=int)
    parser.add_argument("--strategy", default="EntropySampling")
    parser.add_argument("--flip", type=float,
                        help="instead: label the whole pool, this fraction wrongly, and "
                        "measure `deepal review` on it")
    args = parser.parse_args(argv)
    from deepal.labeling import Project

    X, y, X_test, y_test, classes = _data(args.dataset, args.data_dir, args.n_pool, args.n_test)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "pool.npz", X=X)
        np.savez(Path(tmp) / "test.npz", X=X_test, y=y_test)
        project = Project.init(Path(tmp) / "proj", Path(tmp) / "pool.npz", classes=classes,
                               test=Path(tmp) / "test.npz", strategy=args.strategy,
                               n_epoch=args.n_epoch)
        if args.flip is not None:
            print(json.dumps(flipped_review(project, y, args.flip)))
            return 0
        history = simulate_labelling(project, y, args.batch, args.max_labels)
    for h in history:
        kappas = h["stopping"]["kappas"]
        print(json.dumps({"n_labeled": h["n_labeled"], "test_accuracy": h["test_accuracy"],
                          "kappa": kappas[-1]["kappa"] if kappas else None}))
    print(json.dumps(signal_summary(history)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
