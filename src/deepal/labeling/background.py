"""The next batch, made while the annotator labels: a worker process that trains and queries
a project (:meth:`Project.query <deepal.labeling.project.Project.query>`, one round as
``deepal query`` records it) while the labelling server keeps answering.

A process, not a thread: training holds the interpreter and the CPU, and the page must stay
responsive. The worker is started once and kept (importing torch takes seconds); the server
sends it one task at a time and reads its progress from a queue. Labels given while it runs
are committed to the database as always: the running query did not train on them (it read
the labels when it started), the next one does.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepal.config.base import Settings, validated
from deepal.config.fields import NonNegativeInt, PositiveInt
from deepal.config.project import StrategyName
from deepal.nets.hooks import TrainingHook

#: What :meth:`NextBatch.state` reports.
STATES = ("starting", "idle", "training", "picking", "ready", "failed")


class NextBody(Settings):
    """``POST /api/next``: an empty JSON object ``{}`` (make the next batch now)."""


class QuerySettings(Settings):
    """How the worker queries: the options of ``deepal query``.

    Parameters
    ----------
    n:
        Items per batch; ``None``: as many as the batch the annotator is labelling.
    ahead:
        Start the next query when this many items of the batch are still unlabeled;
        ``None``: half the batch; ``0``: only when asked, with the page's button.
    strategy, n_epoch, device, threads:
        As ``deepal query`` takes them (``None``: the project's).

    Examples
    --------
    >>> QuerySettings(n=10, ahead=5).threads
    1
    """

    n: PositiveInt | None = None
    ahead: NonNegativeInt | None = None
    strategy: StrategyName | None = None
    n_epoch: PositiveInt | None = None
    device: str | None = None
    threads: PositiveInt = 1


def background_settings(**options: Any) -> QuerySettings:
    """:class:`QuerySettings` from ``deepal label``'s options, checked (a bad one is named
    by its option).

    Examples
    --------
    >>> background_settings(n=10, ahead=3).ahead
    3
    """
    names = {"n": "-n", "ahead": "--ahead", "strategy": "--strategy", "n_epoch": "--n-epoch",
             "device": "--device", "threads": "--threads"}
    return validated(QuerySettings, options, names=names)


@dataclass
class _Task:
    after_round: int | None
    n: int
    exclude: list[int] = field(default_factory=list)


class _Progress(TrainingHook):
    """Reports each finished epoch of the training to the server."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.epoch = -1

    def after_step(self, step: Any) -> None:
        if step.epoch != self.epoch:
            self.epoch = step.epoch
            self.events.put(("training", step.epoch, step.n_epoch))

    def on_train_end(self, net: Any, model: Any, data: Any) -> None:
        self.events.put(("picking", 0, 0))


def _work(root: str, settings: QuerySettings, tasks: Any, events: Any) -> None:
    """The worker process: answer each task with one query round, until ``None`` comes."""
    from deepal.labeling.project import Project

    project = Project(root)
    events.put(("idle", 0, 0))
    parent = multiprocessing.parent_process()
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            # A server killed outright (SIGKILL) cannot stop its worker: it stops itself.
            if parent is not None and not parent.is_alive():
                return
            continue
        if task is None:
            return
        try:
            result = project.query(task.n, device=settings.device, n_epoch=settings.n_epoch,
                                   strategy=settings.strategy, threads=settings.threads,
                                   exclude=task.exclude, training_hooks=[_Progress(events)])
            events.put(("ready", result.round_id, result.n_labeled))
        except Exception as error:  # noqa: BLE001 - any failure is shown in the page
            events.put(("failed", f"{type(error).__name__}: {error}", 0))


class NextBatch:
    """The worker that makes a project's next batch in the background.

    Parameters
    ----------
    root:
        The project folder.
    settings:
        How to query (:class:`QuerySettings`).

    Examples
    --------
    ``nxt = NextBatch(project.root, QuerySettings(n=10)); nxt.start(round_id, [3, 8])``
    then ``nxt.state()["state"]`` goes from ``"training"`` to ``"ready"``.
    """

    def __init__(self, root: str | Path, settings: QuerySettings | None = None) -> None:
        self.settings = settings or QuerySettings()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._tasks = context.Queue()
        self._events = context.Queue()
        self._process = context.Process(
            target=_work, args=(str(root), self.settings, self._tasks, self._events),
            daemon=True, name="deepal-next-batch")
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"state": "starting", "epoch": 0, "n_epoch": 0,
                                       "round": None, "after_round": None, "message": None}
        self._busy = False
        self._asked: set[int | None] = set()
        self._process.start()
        self._listener = threading.Thread(target=self._listen, daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        while True:
            try:
                kind, a, b = self._events.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    self._update(state="failed", message="the worker process stopped")
                    self._busy = False
                    return
                continue
            except (EOFError, OSError):
                return
            self._event(kind, a, b)

    def _event(self, kind: str, a: Any, b: Any) -> None:
        if kind == "training":
            self._update(state="training", epoch=a + 1, n_epoch=b)
        elif kind == "ready":
            self._update(state="ready", round=a, message=None)
        elif kind == "failed":
            self._update(state="failed", message=a)
        elif kind == "picking" or self._state["state"] == "starting":
            self._update(state=kind)  # "idle" only ends the start, never a running query
        if kind in ("ready", "failed"):
            with self._lock:
                self._busy = False
                if kind == "failed":
                    self._asked.discard(self._state["after_round"])  # it may be asked again

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._state.update(changes)

    def state(self) -> dict[str, Any]:
        """``state`` (one of :data:`STATES`; ``starting`` while the worker imports), the
        epoch being trained of ``n_epoch``, the ``round`` it made last, the round it is
        making the next batch ``after_round``, and a ``message`` when it failed."""
        with self._lock:
            return dict(self._state)

    def start(self, after_round: int | None, n: int, exclude: Sequence[int] = ()) -> bool:
        """Ask for the batch that follows round ``after_round``: ``n`` items, none of
        ``exclude``. Returns ``False`` (and does nothing) when a query is running or this
        round's successor was already made."""
        with self._lock:
            if self._busy or after_round in self._asked:
                return False
            self._busy = True
            self._asked.add(after_round)
            self._state.update(state="training", epoch=0, n_epoch=0, after_round=after_round,
                               message=None)
        self._tasks.put(_Task(after_round, n, [int(i) for i in exclude]))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker: after its current query if it ends within ``timeout``
        seconds, else at once (a round is recorded in one transaction, so nothing is
        half-written)."""
        try:
            self._tasks.put(None)
        except (ValueError, OSError):
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
