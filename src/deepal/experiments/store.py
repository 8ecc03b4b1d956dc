"""An experiment's output folder: per-run checkpoints, per-round results (CSV, loadable with
``pandas.read_csv``) and a manifest. Every file is written atomically (a temporary file, then
``os.replace``), so an interrupted process never leaves a half-written one behind.

Layout::

    OUTPUT/
      manifest.json          config, versions, and the state of every run
      config.toml            the config file as given
      results.csv            one row per run and round (all runs)
      runs/RUN_ID/checkpoint.pt   labeled set, RNG states and strategy state after the last
                                  round (see :mod:`deepal.experiments.checkpoint`)
      runs/RUN_ID/rounds.csv      that run's rows
      runs/RUN_ID/.lock           held by the process running the run (its pid and host)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from deepal.errors import CorruptDataError, RunBusyError, first_line
from deepal.experiments import checkpoint as checkpoints

try:
    import fcntl
except ImportError:  # Windows: runs are not locked there
    fcntl = None  # type: ignore[assignment]

#: Columns of ``results.csv`` (``queried``: the round's pool indices, space-separated).
COLUMNS = (
    "dataset", "strategy", "seed", "round", "n_labeled", "n_queried", "test_accuracy",
    "test_loss", "train_seconds", "query_seconds", "epochs_trained", "queried",
    "config_hash", "deepal_version", "threads",
)

RESULTS = "results.csv"
MANIFEST = "manifest.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a
    part: a temporary file in the same folder, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp's files are owner-only; results are not
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cache
def file_mode() -> int:
    """The mode a new file gets here: read-write for all, less the process's umask."""
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def run_id(dataset: str, strategy: str, seed: int) -> str:
    """A file-name-safe name of the run (dataset, strategy, seed)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", strategy)
    return f"{dataset}-{safe}-seed{seed}"


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in COLUMNS})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return value


_INT = ("seed", "round", "n_labeled", "n_queried", "epochs_trained", "threads")
_FLOAT = ("test_accuracy", "test_loss", "train_seconds", "query_seconds")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results CSV with numbers parsed (empty cells: ``None``; ``queried`` a
    list of ints).

    Raises
    ------
    CorruptDataError
        If the file is not UTF-8 CSV with numbers where the columns hold numbers.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [_parsed(row) for row in csv.DictReader(handle)]
    except (UnicodeDecodeError, csv.Error, ValueError, TypeError) as error:
        raise CorruptDataError(
            f"{path} is not a results file deepal can read ({_reason(error)}): restore it, or "
            "delete it to have it written again from the runs' rows"
        ) from None


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {first_line(error)[:200]}"


#: Cells every row needs: which run and which round it is.
_REQUIRED = ("dataset", "strategy", "seed", "round", "n_labeled")


def _parsed(row: dict[Any, Any]) -> dict[str, Any]:
    if None in row:  # csv puts the cells past the header's under the key None
        raise ValueError(f"a row has more cells than the header: {row[None]!r}")
    missing = [key for key in _REQUIRED if not row.get(key)]
    if missing:
        raise ValueError(f"a row has no {', '.join(missing)}")
    for key in _INT:
        row[key] = _number(int, row, key)
    for key in _FLOAT:
        row[key] = _number(float, row, key)
    if row["test_accuracy"] is not None and row["test_accuracy"] > 1:
        raise ValueError(f"test_accuracy {row['test_accuracy']} is above 1")
    row["queried"] = [int(i) for i in (row.get("queried") or "").split()]
    return row


def _number(kind: type[int] | type[float], row: dict[str, Any], key: str) -> int | float | None:
    """The cell ``key`` as a finite number >= 0 (``None`` if empty)."""
    if not row.get(key):
        return None
    value = kind(row[key])
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} = {row[key]!r} is not a finite number >= 0")
    return value


class RunStore:
    """The files of one run under ``OUTPUT/runs/RUN_ID``."""

    def __init__(self, output: Path, run: str) -> None:
        self.folder = Path(output) / "runs" / run
        self.checkpoint_path = self.folder / "checkpoint.pt"
        self.rounds_path = self.folder / "rounds.csv"

    def load(self) -> dict[str, Any] | None:
        """The last checkpoint, or ``None`` when the run has not completed a round."""
        if not self.checkpoint_path.exists():
            return None
        return checkpoints.read(self.checkpoint_path)

    @contextmanager
    def claim(self) -> Iterator[None]:
        """Hold the run for this process while the block runs, or raise
        :class:`~deepal.errors.RunBusyError` if another process holds it.

        Two processes on one run (two ``deepal experiment`` calls on one output folder with
        the same seeds) would delete each other's temporary files and overwrite each other's
        checkpoints. The claim is an OS lock on ``.lock``, which the system releases when the
        process ends, however it ends, so it never goes stale. Not taken on Windows."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            yield
            return
        with open(self.folder / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise RunBusyError(
                    f"run {self.folder.name} is being run by another process ({holder}) "
                    f"into {self.folder.parent.parent}: two processes on one "
                    "run would overwrite each other's checkpoints. Let that one finish or stop "
                    "it, then run this command again (it resumes), or run other seeds here "
                    "with --seeds"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            yield

    def remove_stale(self) -> None:
        """Delete temporary files of writes that a killed process never finished (only the
        process that owns the run may call this)."""
        if self.folder.is_dir():
            for stale in self.folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)

    def save(self, checkpoint: dict[str, Any]) -> None:
        """Write the checkpoint, then the run's rows; the checkpoint is the truth on resume."""
        atomic_write_bytes(self.checkpoint_path, checkpoints.encode(checkpoint))
        atomic_write_text(self.rounds_path, rows_to_csv(checkpoint["rounds"]))

    def catch_up_rows(self) -> None:
        """Rewrite the run's rows from its checkpoint if they lag behind it, as a stop
        between :meth:`save`'s two writes leaves them one round short."""
        checkpoint = self.load()
        if checkpoint is None:
            return
        written = read_rows(self.rounds_path) if self.rounds_path.exists() else []
        if len(written) < len(checkpoint["rounds"]):
            atomic_write_text(self.rounds_path, rows_to_csv(checkpoint["rounds"]))


def collect_rows(output: Path, runs: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """All rows of the runs' ``rounds.csv`` files (every run under ``output`` by default)."""
    folder = Path(output) / "runs"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if runs is None else runs
    rows: list[dict[str, Any]] = []
    for name in names:
        path = folder / name / "rounds.csv"
        if path.exists():
            rows.extend(read_rows(path))
    return rows


def write_results(output: Path, runs: Iterable[str]) -> int:
    """Gather the runs' rows into ``output/results.csv``; returns the number of rows."""
    rows = collect_rows(output, runs)
    atomic_write_text(Path(output) / RESULTS, rows_to_csv(rows))
    return len(rows)


def write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(Path(output) / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def write_shared_manifest(output: Path, record: dict[str, Any]) -> None:
    """Write this process's manifest ``record`` merged with the one on disk, under a lock:
    another process running other seeds into the same folder keeps its sessions and its runs'
    progress, and ``record`` takes them in (so they stay at its later writes)."""
    output = Path(output)
    with _locked(output / ".manifest.lock"):
        path = output / MANIFEST
        try:
            on_disk = read_manifest(output) if path.exists() else None
        except (OSError, ValueError):  # the last complete write of a process killed mid-way
            on_disk = None
        if isinstance(on_disk, dict):
            record["sessions"] = merge_sessions(sessions_of(on_disk), record["sessions"])
            record["started"] = record["sessions"][0]["started"]
            _merge_runs(record["runs"], on_disk.get("runs") or [])
        write_manifest(output, record)


def _merge_runs(runs: list[dict[str, Any]], others: list[dict[str, Any]]) -> None:
    """Each run's progress: the further of this record's and the other's."""
    done = {run.get("id"): run.get("rounds_done") for run in others if isinstance(run, dict)}
    for run in runs:
        other = done.get(run["id"])
        if isinstance(other, int) and other > run["rounds_done"]:
            run["rounds_done"] = other
            run["complete"] = other >= run["n_round"]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an OS lock on ``path`` (created) while the block runs; none on Windows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


#: What each call of ``run_experiment`` records of where it ran, in the manifest's ``sessions``.
SESSION_KEYS = ("started", "updated", "deepal_version", "python", "torch", "numpy", "platform",
                "device")


def sessions_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The sessions a manifest records; one made before sessions were recorded has its one
    environment at the top level."""
    if "sessions" in manifest:
        sessions = manifest["sessions"]
        return [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []
    return [{key: manifest.get(key) for key in SESSION_KEYS}]


def merge_sessions(recorded: list[dict[str, Any]],
                   seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sessions of an earlier export followed by those it lacks. A session exported
    while it was still running comes back with a later ``updated``: the same start on the
    same platform and session id (where recorded), so it is listed once, with the later of its
    two updates."""
    merged = list(recorded)
    for session in seen:
        key = _session_key(session)
        same = next((i for i, old in enumerate(merged) if _session_key(old) == key), None)
        if same is None:
            merged.append(session)
        elif str(session.get("updated")) > str(merged[same].get("updated")):
            merged[same] = session  # one machine's clock: its timestamps sort as text
    return merged


def _session_key(session: dict[str, Any]) -> tuple[Any, ...]:
    return session.get("started"), session.get("platform"), session.get("session_id")


def read_manifest(output: Path) -> dict[str, Any]:
    """The manifest in ``output``.

    Raises
    ------
    CorruptDataError
        If it is not UTF-8 JSON holding an object (too deeply nested counts as not JSON).
    """
    path = Path(output) / MANIFEST
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CorruptDataError(f"{path} is not a manifest deepal can read ({_reason(error)}): "
                               "restore it, or move it aside to start a new record") from None
    if not isinstance(manifest, dict):
        raise CorruptDataError(f"{path} is not a manifest deepal can read (it holds a "
                               f"{type(manifest).__name__}, not an object): restore it, or "
                               "move it aside to start a new record")
    return manifest
