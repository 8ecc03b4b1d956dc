"""Where runs execute: this process, local worker processes, or Ray tasks.

Every backend calls :func:`~deepal.experiments.run.execute_run` on each run, which writes
its checkpoints and results into the output folder itself (on a Ray cluster that folder must
be shared by the machines), and forwards the runs' progress events to ``emit``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from typing import Any, TypeVar

from tqdm import tqdm

from deepal.errors import DeepALError, RunsFailedError
from deepal.experiments.run import execute_run
from deepal.experiments.spec import Emit, RunSpec

BACKENDS = ("local", "ray")

T = TypeVar("T")

# The event queue of a local worker process, set by its initializer.
_worker_queue: Any = None


def _init_worker(events: Any, parent: int) -> None:
    global _worker_queue
    _worker_queue = events
    # tqdm's default lock is a multiprocessing semaphore; a worker terminated on Ctrl-C or
    # SIGTERM cannot release it, and the resource tracker then warns of a leaked semaphore.
    # The workers' bars are disabled (progress travels as events), so a thread lock will do.
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int, interval: float = 1.0) -> None:
    """End this worker once process ``parent`` is gone. A parent killed outright (SIGTERM,
    SIGKILL) cannot stop its workers, and an orphaned one would go on writing its run into
    the output folder, beside the runs of the next ``deepal experiment`` there."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _run_in_worker(spec: RunSpec) -> dict[str, Any]:
    return execute_run(spec, _worker_queue.put)


def _drain(events: Any, emit: Emit, timeout: float) -> None:
    """Pass on queued events, waiting up to ``timeout`` seconds for the first one."""
    try:
        emit(events.get(timeout=timeout))
        while True:
            emit(events.get_nowait())
    except queue_module.Empty:
        pass


def run_local(specs: list[RunSpec], emit: Emit | None, workers: int = 1,
              keep_going: bool = False) -> list[dict[str, Any]]:
    """Run ``specs`` in this process (``workers=1``) or in ``workers`` processes.

    Each run uses the config's ``cpus_per_run`` torch threads, whatever the number of
    workers (more threads than cores would make every run crawl). The first run to fail
    stops the others and its error is raised; with ``keep_going`` the others run to the end
    and then :class:`~deepal.errors.RunsFailedError` names every failed run."""
    emit = emit or (lambda event: None)
    if not specs:
        return []
    workers = min(workers, len(specs))
    if workers == 1:
        outcomes = []
        for spec in specs:
            outcome = _outcome(partial(execute_run, spec, emit))
            if isinstance(outcome, Exception) and not keep_going:
                raise outcome
            outcomes.append(outcome)
        return _settled(specs, outcomes)
    # spawn, not fork: a forked child of a process that already used torch's thread pool
    # can hang.
    context = mp.get_context("spawn")
    events = context.Queue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_init_worker, initargs=(events, os.getpid()))
    try:
        futures = [pool.submit(_run_in_worker, spec) for spec in specs]
        outcomes = _gather(futures, lambda timeout: _drain(events, emit, timeout), keep_going)
    except BaseException:
        # Interrupted, or a run failed: stop the other runs now (their checkpoints are
        # written atomically, so stopping anywhere is safe) instead of waiting for them.
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:  # none may save a round after the caller gathers results
            process.join(timeout=30)
        raise
    pool.shutdown()
    _drain(events, emit, 0.0)
    return _settled(specs, outcomes)


def _outcome(call: Callable[[], T]) -> T | Exception:
    """What ``call`` returns, or the error it raises (not an interrupt: that propagates)."""
    try:
        return call()
    except Exception as error:
        return error


def _settled(specs: list[RunSpec], outcomes: list[Any]) -> list[dict[str, Any]]:
    """The summaries of ``specs`` from their outcomes, or the error naming the failed runs."""
    failures = {spec.id: outcome for spec, outcome in zip(specs, outcomes, strict=True)
                if isinstance(outcome, Exception)}
    if failures:
        raise RunsFailedError(failures, len(specs))
    return outcomes


def _gather(futures: list[Future[Any]], pump: Callable[[float], None],
            keep_going: bool) -> list[Any]:
    """The outcomes of ``futures`` in order (a result or an error), pumping events while
    waiting; unless ``keep_going``, the first failure is raised at once."""
    pending = set(futures)
    while pending:
        pump(0.1)
        done, pending = wait(pending, timeout=0, return_when=FIRST_COMPLETED)
        if not keep_going:
            for future in done:
                future.result()  # raises a run's error now, not after the others finish
    return [_outcome(future.result) for future in futures]


def run_ray(specs: list[RunSpec], emit: Emit | None, address: str | None = None,
            keep_going: bool = False) -> list[dict[str, Any]]:
    """Run each of ``specs`` as a Ray task requesting the config's ``cpus_per_run`` and
    ``gpus_per_run``; failures as in :func:`run_local`.

    Uses the Ray instance already initialised in this process, else connects to ``address``
    (``"auto"``, ``"ray://host:10001"``...), else starts a local one (shut down at the end).
    """
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise DeepALError(
            'the ray backend needs Ray, which is not installed: pip install "deepal[ray]" '
            "(or use the default local backend with --workers N)"
        ) from None
    emit = emit or (lambda event: None)
    if not specs:
        return []
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise DeepALError(
                f"cannot start or reach Ray at {address or 'a local instance'!r}: {error}"
            ) from error
    try:
        events = Queue()
        task = ray.remote(_run_as_ray_task)
        refs = []
        for spec in specs:
            cpus, gpus = spec.config.resources.cpus_per_run, spec.config.resources.gpus_per_run
            refs.append(task.options(num_cpus=cpus, num_gpus=gpus).remote(spec, events))
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.1)
            _drain_ray(events, emit)
            if not keep_going:
                for ref in ready:
                    ray.get(ref)  # raises a run's error now, not after the others finish
        outcomes = [_cause(_outcome(partial(ray.get, ref))) for ref in refs]
        _drain_ray(events, emit)
        return _settled(specs, outcomes)
    finally:
        if started_here:
            ray.shutdown()


def _cause(outcome: Any) -> Any:
    """A Ray task's own error instead of Ray's wrapper (whose text repeats the traceback)."""
    cause = getattr(outcome, "cause", None)
    return cause if isinstance(outcome, Exception) and isinstance(cause, Exception) else outcome


def _run_as_ray_task(spec: RunSpec, events: Any) -> dict[str, Any]:
    return execute_run(spec, events.put)


def _drain_ray(events: Any, emit: Emit) -> None:
    while not events.empty():
        emit(events.get())
