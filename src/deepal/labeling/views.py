"""What the labelling server's API answers: the batch the page shows (the latest round, an
older round the page is finishing, or a review batch), its progress, the background worker's
state and the stopping signal. The HTTP handling is :mod:`deepal.labeling.server`'s."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from deepal.labeling.background import NextBatch
from deepal.labeling.project import Project
from deepal.labeling.requests import RequestError


@dataclass(frozen=True)
class ReviewBatch:
    """A review batch (``deepal review --batch N``): its items, the class suggested for
    each, and when it was made (a label given since counts as checked)."""

    created_at: str
    item_ids: list[int]
    suggested: dict[int, str]


class BatchView:
    """The API's answers for a project.

    Parameters
    ----------
    project:
        The project served.
    next_batch:
        The background worker, if any.
    review:
        Serve this review batch instead of the rounds.
    """

    def __init__(self, project: Project, next_batch: NextBatch | None = None,
                 review: ReviewBatch | None = None) -> None:
        self.project = project
        self.next_batch = next_batch
        self.review = review
        self.features = project.arrays()["X"] if project.settings.kind in ("table", "numpy") \
            else None

    def round_items(self, round_id: int | None) -> tuple[int | None, list[int]]:
        """The round ``round_id``'s id and items (``None``: the latest round's, or the
        review batch's)."""
        if round_id is None:
            return (None, self.review.item_ids) if self.review else self.project.batch()
        found = next((r for r in self.project.store.rounds() if r.id == round_id), None)
        if found is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"there is no round {round_id}")
        return found.id, found.item_ids

    def checked_labels(self) -> dict[int, Any]:
        """The labels that count as given for the batch: all current labels, or for a
        review batch those given since it was made."""
        labels = self.project.store.current_labels()
        if self.review is None:
            return labels
        return {i: lab for i, lab in labels.items() if lab.created_at >= self.review.created_at}

    def batch(self, round_id: int | None = None) -> dict[str, Any]:
        """``GET /api/batch``: the items with what the page shows of each, and the state."""
        project = self.project
        round_id, item_ids = self.round_items(round_id)
        labels = self.checked_labels()
        current = project.store.current_labels() if self.review else labels
        described = project.store.describe(item_ids)
        items = [self._entry(i, described[i], labels, current) for i in item_ids]
        return {"round": round_id, "review": self.review is not None,
                "classes": project.classes, "items": items, "kind": project.settings.kind,
                **self.progress(item_ids, labels), "next": self.next_state(),
                "stopping": self.stopping()}

    def _entry(self, item_id: int, described: tuple[str, str | None, bool],
               labels: dict[int, Any], current: dict[int, Any]) -> dict[str, Any]:
        ref, text, has_image = described
        entry: dict[str, Any] = {"id": item_id, "ref": ref, "image": has_image, "text": text,
                                 "label": None, "annotator": None}
        if self.features is not None and not has_image:
            names = self.project.settings.feature_names
            row = self.features[item_id].reshape(-1)[:64]
            entry["features"] = [[names[j] if names else f"x{j}", float(v)]
                                 for j, v in enumerate(row)]
        if item_id in labels:
            entry["label"] = self.project.classes[labels[item_id].class_index]
            entry["annotator"] = labels[item_id].annotator
        if self.review is not None:
            given = current.get(item_id)
            entry["given"] = None if given is None else self.project.classes[given.class_index]
            entry["given_by"] = None if given is None else given.annotator
            entry["suggested"] = self.review.suggested.get(item_id)
        return entry

    def progress(self, item_ids: list[int] | None = None,
                 labels: dict[int, Any] | None = None) -> dict[str, Any]:
        """How many of ``item_ids`` (default: the batch's) are labeled, and their labels."""
        if item_ids is None:
            item_ids = self.round_items(None)[1]
        if labels is None:
            labels = self.checked_labels()
        done = {str(i): self.project.classes[labels[i].class_index]
                for i in item_ids if i in labels}
        return {"labels": done, "labeled": len(done), "total": len(item_ids)}

    def stopping(self) -> dict[str, Any]:
        """The stopping signal's last kappa and whether it fired (as ``deepal status``)."""
        from deepal.labeling.stopping import stopping_report

        report = stopping_report(self.project.root, len(self.project.classes),
                                 self.project.store.rounds())
        last = report["kappas"][-1]["kappa"] if report["kappas"] else None
        return {"kappa": last, "stop": report["stop"], "stop_round": report["stop_round"],
                "stop_n_labeled": report["stop_n_labeled"], "threshold": report["threshold"],
                "window": report["window"]}

    def next_state(self) -> dict[str, Any]:
        """The background worker's state and the latest round (``state`` is ``"off"``
        without a worker)."""
        state = self.next_batch.state() if self.next_batch else {"state": "off"}
        return {**state, "latest_round": self.project.batch()[0]}

    def start_next(self, force: bool = False) -> bool:
        """Start the next batch in the background when the latest batch has at most
        ``ahead`` unlabeled items left (or at once with ``force``); whether it started."""
        worker = self.next_batch
        if worker is None:
            return False
        round_id, item_ids = self.project.batch()
        labels = self.project.store.current_labels()
        still_open = [i for i in item_ids if i not in labels]
        ahead = worker.settings.ahead
        if ahead is None:
            ahead = max(1, len(item_ids) // 2)
        if not force and (not ahead or not item_ids or len(still_open) > ahead):
            return False
        n = worker.settings.n or len(item_ids) or 10
        return worker.start(round_id, n, still_open)
