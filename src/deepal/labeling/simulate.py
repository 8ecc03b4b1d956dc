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
                       max_labels: int, threads: int = 1, n_epoch: int | None = None,
                       until_signal: bool = False) -> list[dict[str, Any]]:
    """Query ``batch`` items at a time and label them with ``truth`` until ``max_labels``
    labels are given (or, with ``until_signal``, until the stopping signal fires); the
    project's status after each round's query.

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
    until_signal:
        Once the signal fires at ``L`` labels, label up to ``2 L`` (or all but one item of
        a smaller pool) in one more batch and train once more, to compare the model at
        ``L`` with the model at ``2 L``.

    Returns
    -------
    list of dict
        Per round: ``round``, ``n_labeled`` (the labels its model trained on),
        ``test_accuracy`` and the stopping report of ``project.status()``.

    Examples
    --------
    ``simulate_labelling(project, y, batch=20, max_labels=400)``
    """
    history: list[dict[str, Any]] = []
    while True:
        history.append(_round(project, batch, threads, n_epoch))
        fired = history[-1]["stopping"]["stop_n_labeled"]
        done = history[-1]["n_labeled"] >= max_labels
        if not done:
            _answer(project, truth, project.batch()[1])
        if until_signal and fired is not None:
            labeled = len(project.store.current_labels())
            more = min(2 * fired, project.n_items - 1) - labeled  # one left to query
            if more > 0:
                _answer(project, truth, project.query(more, threads=threads,
                                                      n_epoch=n_epoch).item_ids)
            history.append(_round(project, 1, threads, n_epoch))
            return history
        if done:
            return history


def _round(project: Any, n: int, threads: int, n_epoch: int | None) -> dict[str, Any]:
    result = project.query(n, threads=threads, n_epoch=n_epoch)
    return {"round": result.round_id, "n_labeled": result.n_labeled,
            "test_accuracy": result.test_accuracy, "stopping": project.status()["stopping"]}


def _answer(project: Any, truth: Sequence[int] | np.ndarray, items: Sequence[int]) -> None:
    """The simulated annotator labels ``items`` with their true classes."""
    project.store.add_labels([(i, int(truth[i]), "simulated") for i in items], "simulated")


def signal_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the stopping signal fired in a :func:`simulate_labelling` history, its held-out
    accuracy there, and the accuracy of the first round with at least twice those labels.

    Examples
    --------
    >>> signal_summary([{"stopping": {"stop_n_labeled": None, "accuracy_curve": []}}])
    {'fired_at_labels': None, 'accuracy_there': None, 'accuracy_at_twice': None, 'gap': None}
    """
    stopping = history[-1]["stopping"]
    fired = stopping["stop_n_labeled"]
    summary: dict[str, Any] = {"fired_at_labels": fired, "accuracy_there": None,
                               "accuracy_at_twice": None, "gap": None}
    if fired is None:
        return summary
    curve = stopping["accuracy_curve"]
    there = next((c["test_accuracy"] for c in curve if c["n_labeled"] == fired), None)
    twice = next((c["test_accuracy"] for c in curve if c["n_labeled"] >= 2 * fired), None)
    summary.update(accuracy_there=there, accuracy_at_twice=twice)
    if there is not None and twice is not None:
        summary["gap"] = round(twice - there, 4)
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
    parser.add_argument("--until-signal", action="store_true",
                        help="stop once the signal fires, after one round at twice its labels")
    parser.add_argument("--project", help="continue the simulation in this project folder")
    parser.add_argument("--flip", type=float,
                        help="instead: label the whole pool, this fraction wrongly, and "
                        "measure `deepal review` on it")
    args = parser.parse_args(argv)
    from deepal.labeling import Project

    X, y, X_test, y_test, classes = _data(args.dataset, args.data_dir, args.n_pool, args.n_test)
    with tempfile.TemporaryDirectory() as tmp:
        if args.project is not None:
            project = Project(args.project)
        else:
            np.savez(Path(tmp) / "pool.npz", X=X)
            np.savez(Path(tmp) / "test.npz", X=X_test, y=y_test)
            project = Project.init(Path(tmp) / "proj", Path(tmp) / "pool.npz", classes=classes,
                                   test=Path(tmp) / "test.npz", strategy=args.strategy,
                                   n_epoch=args.n_epoch)
        if args.flip is not None:
            print(json.dumps(flipped_review(project, y, args.flip)))
            return 0
        history = simulate_labelling(project, y, args.batch, args.max_labels,
                                     until_signal=args.until_signal)
    for h in history:
        kappas = h["stopping"]["kappas"]
        print(json.dumps({"n_labeled": h["n_labeled"], "test_accuracy": h["test_accuracy"],
                          "kappa": kappas[-1]["kappa"] if kappas else None}))
    print(json.dumps(signal_summary(history)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
