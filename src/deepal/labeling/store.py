"""The labelling project's database: SQLite, every change in one transaction.

Tables:

* ``meta`` - the project's settings (JSON values);
* ``items`` - one row per pool example: ``id`` = pool index, ``ref`` (file path relative to the
  source folder, or ``row N``), its text or a preview image for the labelling page;
* ``labels`` - every label ever given: item, class, annotator, time, where it came from
  (``web``, ``import``, ``source``...); an undo marks a label ``retracted_at`` instead of
  deleting it, and an item's label is its latest label not retracted;
* ``rounds`` and ``queried`` - every query round: when, which strategy, how many labels it
  trained on, the held-out accuracy, the CPU threads it ran with (float sums differ slightly
  with them; ``NULL`` in databases made before deepal recorded them), and the items it
  picked in order.

The database runs in WAL mode with ``synchronous=FULL``: a label is on disk when its
transaction commits, so a server killed afterwards loses nothing. Each thread opens its own
connection; writers take the lock at ``BEGIN IMMEDIATE`` and wait up to ``timeout`` seconds
for each other, so concurrent annotators are serialised, never lost.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    text TEXT,
    preview BLOB,
    preview_type TEXT
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id),
    class_index INTEGER NOT NULL,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    retracted_at TEXT
);
CREATE INDEX IF NOT EXISTS labels_by_item ON labels(item_id, id);
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    strategy TEXT NOT NULL,
    n_labeled INTEGER NOT NULL,
    n_queried INTEGER NOT NULL,
    test_accuracy REAL,
    seconds REAL,
    threads INTEGER
);
CREATE TABLE IF NOT EXISTS queried (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    position INTEGER NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items(id),
    PRIMARY KEY (round_id, position)
);
"""

# An item's label: its latest label that was not retracted.
_CURRENT = """
SELECT l.item_id, l.class_index, l.annotator, l.created_at, l.source FROM labels l
WHERE l.id = (SELECT MAX(id) FROM labels WHERE item_id = l.item_id AND retracted_at IS NULL)
"""


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Label:
    """One item's current label."""

    item_id: int
    class_index: int
    annotator: str
    created_at: str
    source: str


@dataclass(frozen=True)
class Round:
    """One query round and the items it picked, in order."""

    id: int
    created_at: str
    strategy: str
    n_labeled: int
    test_accuracy: float | None
    item_ids: list[int]
    threads: int | None = None


class Store:
    """The SQLite database of a labelling project.

    Parameters
    ----------
    path:
        The database file.
    create:
        Create it (and its tables); otherwise it must exist.
    timeout:
        Seconds a writer waits for another one to commit.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> Store(os.path.join(tempfile.mkdtemp(), "project.db"), create=True).n_items()
    0
    """

    def __init__(self, path: str | os.PathLike[str], create: bool = False,
                 timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        if not create and not self.path.is_file():
            raise DeepALError(f"no labelling project database at {self.path}: run "
                              "`deepal project init` first (or pass --project DIR)")
        if create:
            db = self.connect()
            try:  # executescript runs its own transaction; IF NOT EXISTS makes it idempotent
                db.executescript(_SCHEMA)
            finally:
                db.close()
            self.set_meta({"schema_version": SCHEMA_VERSION})

    def connect(self) -> sqlite3.Connection:
        """A new connection (one per thread): autocommit mode, transactions explicit."""
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed whole on success, rolled back whole on error."""
        db = self.connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (a consistent snapshot per statement)."""
        db = self.connect()
        try:
            yield db
        finally:
            db.close()

    # -- settings --------------------------------------------------------------------------

    def set_meta(self, values: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in values.items()])

    def meta(self) -> dict[str, Any]:
        """The settings as stored: JSON values by key (checked by the caller)."""
        try:
            with self.reading() as db:
                rows = db.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.DatabaseError as error:
            raise DeepALError(f"{self.path} is not a readable labelling project database "
                              f"({error})") from None
        values = {}
        for key, value in rows:
            try:
                values[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError):
                raise DeepALError(f"the setting {key!r} in {self.path} is not valid JSON "
                                  f"({value!r}): was the database edited by hand?") from None
        return values

    # -- items -----------------------------------------------------------------------------

    def add_items(self, rows: Iterable[tuple[int, str, str | None, bytes | None, str | None]]
                  ) -> None:
        """Add items ``(id, ref, text, preview, preview_type)`` in one transaction."""
        with self.transaction() as db:
            db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", rows)

    def n_items(self) -> int:
        with self.reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def item(self, item_id: int) -> tuple[str, str | None, bytes | None, str | None] | None:
        """``(ref, text, preview, preview_type)`` of an item, or ``None`` if there is none."""
        with self.reading() as db:
            row = db.execute("SELECT ref, text, preview, preview_type FROM items WHERE id = ?",
                             (item_id,)).fetchone()
        return None if row is None else tuple(row)  # type: ignore[return-value]

    def describe(self, item_ids: Sequence[int]) -> dict[int, tuple[str, str | None, bool]]:
        """``(ref, text, has_preview)`` of each of ``item_ids`` (previews are not loaded)."""
        rows = self._by_ids("SELECT id, ref, text, preview IS NOT NULL FROM items", item_ids)
        return {int(i): (ref, text, bool(has)) for i, ref, text, has in rows}

    def item_ids_by_ref(self) -> dict[str, int]:
        with self.reading() as db:
            return {ref: int(i) for i, ref in db.execute("SELECT id, ref FROM items")}

    def refs(self, item_ids: Sequence[int]) -> dict[int, str]:
        return {int(i): ref for i, ref in self._by_ids("SELECT id, ref FROM items", item_ids)}

    def _by_ids(self, select: str, item_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """Rows of ``select ... WHERE id IN (item_ids)``, in chunks below SQLite's limit on
        query parameters."""
        ids = [int(i) for i in item_ids]
        rows: list[tuple[Any, ...]] = []
        with self.reading() as db:
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                marks = ",".join("?" * len(chunk))
                rows += db.execute(f"{select} WHERE id IN ({marks})", chunk).fetchall()
        return rows

    # -- labels ----------------------------------------------------------------------------

    def add_labels(self, rows: Sequence[tuple[int, int, str]], source: str,
                   db: sqlite3.Connection | None = None) -> None:
        """Record labels ``(item_id, class_index, annotator)`` together: all or none."""
        stamp = now()
        values = [(int(i), int(c), str(a), stamp, source) for i, c, a in rows]
        sql = ("INSERT INTO labels (item_id, class_index, annotator, created_at, source) "
               "VALUES (?, ?, ?, ?, ?)")
        if db is not None:
            db.executemany(sql, values)
            return
        with self.transaction() as conn:
            conn.executemany(sql, values)

    def retract(self, item_id: int, annotator: str) -> bool:
        """Undo ``annotator``'s latest standing label of ``item_id``; whether there was one."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT MAX(id) FROM labels WHERE item_id = ? AND annotator = ? "
                "AND retracted_at IS NULL", (item_id, annotator)).fetchone()
            if row[0] is None:
                return False
            db.execute("UPDATE labels SET retracted_at = ? WHERE id = ?", (now(), row[0]))
            return True

    def current_labels(self, db: sqlite3.Connection | None = None) -> dict[int, Label]:
        """Every labeled item's current label, by item id."""
        if db is None:
            with self.reading() as conn:
                return self.current_labels(conn)
        return {int(r[0]): Label(int(r[0]), int(r[1]), r[2], r[3], r[4])
                for r in db.execute(_CURRENT)}

    def label_history(self) -> list[tuple[Any, ...]]:
        """All labels ever given, oldest first: ``(item_id, class_index, annotator,
        created_at, source, retracted_at)``."""
        with self.reading() as db:
            return db.execute("SELECT item_id, class_index, annotator, created_at, source, "
                              "retracted_at FROM labels ORDER BY id").fetchall()

    # -- rounds ----------------------------------------------------------------------------

    def add_round(self, strategy: str, n_labeled: int, item_ids: Sequence[int],
                  test_accuracy: float | None, seconds: float, threads: int | None = None
                  ) -> int:
        """Record a query round and its picks in one transaction; returns the round id."""
        with self.transaction() as db:
            if not _has_threads(db):  # a database made before rounds recorded their threads
                db.execute("ALTER TABLE rounds ADD COLUMN threads INTEGER")
            cursor = db.execute(
                "INSERT INTO rounds (created_at, strategy, n_labeled, n_queried, test_accuracy,"
                " seconds, threads) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now(), strategy, n_labeled, len(item_ids), test_accuracy, seconds, threads))
            round_id = int(cursor.lastrowid)  # type: ignore[arg-type]
            db.executemany("INSERT INTO queried VALUES (?, ?, ?)",
                           [(round_id, p, int(i)) for p, i in enumerate(item_ids)])
        return round_id

    def rounds(self) -> list[Round]:
        """Every round, oldest first."""
        with self.reading() as db:
            threads = "threads" if _has_threads(db) else "NULL"
            rows = db.execute("SELECT id, created_at, strategy, n_labeled, test_accuracy, "
                              f"{threads} FROM rounds ORDER BY id").fetchall()
            picks: dict[int, list[int]] = {int(r[0]): [] for r in rows}
            for round_id, item_id in db.execute(
                    "SELECT round_id, item_id FROM queried ORDER BY round_id, position"):
                picks[int(round_id)].append(int(item_id))
        return [Round(int(r[0]), r[1], r[2], int(r[3]), r[4], picks[int(r[0])], r[5])
                for r in rows]

    def latest_round(self) -> Round | None:
        rounds = self.rounds()
        return rounds[-1] if rounds else None


def _has_threads(db: sqlite3.Connection) -> bool:
    """Whether the rounds table has its ``threads`` column."""
    return any(row[1] == "threads" for row in db.execute("PRAGMA table_info(rounds)"))
