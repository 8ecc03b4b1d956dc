"""When to stop, which labels to doubt, annotators' agreement, and ``deepal status --json``
with all of them, on small simulated projects (a simulated annotator answers from known
labels)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from deepal.cli import main
from deepal.errors import DeepALError
from deepal.labeling import Project
from deepal.labeling.agreement import agreement, votes
from deepal.labeling.doubt import doubtful_labels, precision_at
from deepal.labeling.simulate import flipped_review, signal_summary, simulate_labelling
from deepal.labeling.stopping import (
    STOP_NAME,
    cohens_kappa,
    stabilising_predictions,
    stop_predictions,
)

CLASSES = ["a", "b", "c"]


def blobs(path: Path, n: int, seed: int = 0, spread: float = 0.6,
          label_column: bool = False, labeled: bool = False) -> np.ndarray:
    """A table of ``n`` rows in three Gaussian blobs (with a ``label`` column, empty unless
    ``labeled``); the class of each row."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = centres[y] + rng.normal(scale=spread, size=(n, 2))
    if not label_column:
        path.write_text("u,v\n" + "".join(f"{u:.5f},{v:.5f}\n" for u, v in x))
        return y
    names = [CLASSES[c] if labeled else "" for c in y]
    path.write_text("u,v,label\n" + "".join(f"{u:.5f},{v:.5f},{name}\n"
                                             for (u, v), name in zip(x, names, strict=True)))
    return y


def test_kappa_is_cohens():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
        b[:120] = a[:120]
        assert cohens_kappa(a, b, 4) == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert cohens_kappa(np.zeros(5, int), np.zeros(5, int), 3) == 1.0


def test_the_signal_needs_a_run_of_agreeing_pairs():
    p = [np.array([0, 1, 2, 0, 1, 2]) for _ in range(4)]
    other = np.array([2, 1, 0, 0, 1, 2])
    kappas, fired = stabilising_predictions([*p[:2], other, *p], 3, window=3)
    assert kappas[0] == 1.0 and kappas[1] < 0.99 and kappas[2] < 0.99
    assert fired == 6          # pairs 3, 4, 5 agree: it fires at the sixth round
    assert stabilising_predictions(p[:3], 3, window=3)[1] is None  # two pairs only


def test_status_reports_the_stopping_signal_and_gain_per_label(tmp_path, capsys):
    truth = blobs(tmp_path / "pool.csv", 150, label_column=True)
    blobs(tmp_path / "test.csv", 60, seed=1, label_column=True, labeled=True)
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=CLASSES,
                           test=tmp_path / "test.csv", n_epoch=40, label_column="label")
    history = simulate_labelling(project, truth, batch=10, max_labels=60)
    assert [h["n_labeled"] for h in history] == [0, 10, 20, 30, 40, 50, 60]
    rounds, predictions = stop_predictions(project.root)
    assert rounds.tolist() == [2, 3, 4, 5, 6, 7]     # every round with a trained model
    assert predictions.shape == (6, 150)             # the stop set: the whole small pool
    status = project.status()
    stopping = status["stopping"]
    assert [k["round"] for k in stopping["kappas"]] == [3, 4, 5, 6, 7]
    assert stopping["kappas"][-1]["kappa"] > 0.9     # three easy blobs: the models settle
    curve = stopping["accuracy_curve"]
    assert [c["n_labeled"] for c in curve] == [10, 20, 30, 40, 50, 60]
    assert curve[0]["gain_per_label"] is None
    assert curve[1]["gain_per_label"] == pytest.approx(
        (curve[1]["test_accuracy"] - curve[0]["test_accuracy"]) / 10, abs=1e-6)
    summary = signal_summary(history)
    assert summary["fired_at_labels"] == stopping["stop_n_labeled"]

    assert main(["status", "-p", str(project.root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) >= {"stopping", "agreement", "batch", "rounds", "test_accuracy"}
    assert [b["item"] for b in shown["batch"]] == project.batch()[1]
    assert main(["status", "-p", str(project.root)]) == 0
    out = capsys.readouterr().out
    assert "stopping signal: agreement (Cohen's kappa) of successive models on 150" in out
    assert "per label over the last round" in out


def test_a_project_without_rounds_has_no_signal_yet(tmp_path, capsys):
    blobs(tmp_path / "pool.csv", 30)
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=CLASSES)
    assert project.status()["stopping"]["stop"] is False
    assert not (project.root / STOP_NAME).exists()
    assert main(["status", "-p", str(project.root)]) == 0
    assert "stopping signal: needs two rounds" in capsys.readouterr().out


def test_doubtful_labels_rank_the_flipped_ones_first():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    probs = np.full((300, 3), 0.05)
    probs[np.arange(300), labels] = 0.9
    flipped = rng.choice(300, 15, replace=False)
    given = labels.copy()
    given[flipped] = (labels[flipped] + 1) % 3      # the model still believes the truth
    order, flagged, suggested = doubtful_labels(probs, given)
    assert set(order[:15].tolist()) == set(flipped.tolist())
    assert set(np.flatnonzero(flagged).tolist()) == set(flipped.tolist())
    assert (suggested[flipped] == labels[flipped]).all()
    assert precision_at(order.tolist(), set(flipped.tolist()), 0.05) == 1.0


def test_review_finds_flipped_labels_in_a_simulated_project(tmp_path, capsys):
    truth = blobs(tmp_path / "pool.csv", 200, spread=0.9)
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=CLASSES,
                           n_epoch=30)
    measured = flipped_review(project, truth, flip=0.05, seed=2)
    assert measured["flipped"] == 10
    assert measured["precision_at_flip"] >= 0.8     # flipped among the top 5% of the list
    assert measured["flagged_precision"] >= 0.8 and measured["recall_flagged"] >= 0.5
    out = tmp_path / "review.csv"
    assert main(["review", "-p", str(project.root), "--top", "3", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "labels flagged as likely wrong" in printed and printed.count("item ") == 3
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    doubt = [float(r["label_probability"]) for r in rows]
    assert doubt == sorted(doubt)                    # most doubtful first
    assert main(["review", "-p", str(project.root), "--folds", "1"]) == 2
    assert main(["review", "-p", str(project.root), "-o", str(tmp_path / "r.txt")]) == 2
    fresh = Project.init(tmp_path / "fresh", tmp_path / "pool.csv", classes=CLASSES)
    with pytest.raises(DeepALError, match="only 0 items are labeled"):
        fresh.review()


def test_annotators_agreement_and_why_a_label_was_kept(tmp_path, capsys):
    blobs(tmp_path / "pool.csv", 12)
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=CLASSES)
    project.label(0, "a", "ann")
    project.label(0, "a", "bob")
    project.label(1, "a", "ann")
    project.label(1, "b", "bob")
    project.label(2, "c", "ann")
    project.label(3, "c", "ann")
    project.label(3, "b", "bob")
    project.store.retract(3, "bob")                 # an undone vote is no vote
    found = project.status()["agreement"]
    assert found == agreement(votes(project.store.label_history()), CLASSES)
    assert (found["items"], found["agreeing"], found["agreement"]) == (2, 1, 0.5)
    assert found["conflicts"] == [{"item": 1, "labels": {"ann": "a", "bob": "b"}}]
    assert main(["status", "-p", str(project.root)]) == 0
    out = capsys.readouterr().out
    assert "annotators agree on 1 of the 2 items" in out
    assert "conflict on item 1: ann: a, bob: b" in out
    assert main(["export", "-p", str(project.root), "-o", str(tmp_path / "out"),
                 "--no-model"]) == 0
    with (tmp_path / "out" / "labels.csv").open() as handle:
        rows = {int(r["item"]): r for r in csv.DictReader(handle)}
    assert rows[1]["label"] == "b" and rows[1]["annotator"] == "bob"
    assert rows[1]["kept_because"] == "latest label; annotators disagree: ann=a, bob=b"
    assert rows[0]["kept_because"] == "2 annotators agree"
    assert rows[2]["kept_because"] == "only annotator"
    assert rows[3]["kept_because"] == "only annotator" and rows[3]["label"] == "c"


def test_a_simulation_until_the_signal_ends_with_twice_its_labels(tmp_path):
    truth = blobs(tmp_path / "pool.csv", 300, label_column=True)
    blobs(tmp_path / "test.csv", 60, seed=1, label_column=True, labeled=True)
    project = Project.init(tmp_path / "proj", tmp_path / "pool.csv", classes=CLASSES,
                           test=tmp_path / "test.csv", n_epoch=40, label_column="label")
    history = simulate_labelling(project, truth, batch=10, max_labels=140, until_signal=True)
    summary = signal_summary(history)
    fired = summary["fired_at_labels"]
    assert fired is not None and fired <= 100          # three easy blobs: the models settle
    kappas = history[-2]["stopping"]["kappas"]
    assert [k["kappa"] >= 0.99 for k in kappas[-3:]] == [True] * 3
    assert history[-2]["n_labeled"] == fired           # it stopped where the signal fired
    assert history[-1]["n_labeled"] == 2 * fired       # and trained once on twice the labels
    assert summary["accuracy_at_twice"] == history[-1]["test_accuracy"]
    assert summary["gap"] == pytest.approx(summary["accuracy_at_twice"]
                                           - summary["accuracy_there"], abs=1e-4)
