"""Persistent state of the link in SQLite: outbox, counters, replay windows, dead letters.

The caller opens a :class:`LinkDatabase` on a file it chooses (the link never picks a path
of its own) and hands each meter's communication module a :class:`MeterLinkStore`, its view
of the database. Many meters can share one database (a data concentrator, a simulated
fleet). The database runs in WAL mode; every change is one transaction, so a crash leaves
the state before or after it, never half of it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from meterstack.link.deadletter import DeadLetter
from meterstack.link.errors import LinkStoreError, RejectReason

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    owner TEXT NOT NULL, seq INTEGER NOT NULL, priority INTEGER NOT NULL,
    essential INTEGER NOT NULL, kind INTEGER NOT NULL, created REAL NOT NULL,
    payload BLOB NOT NULL, PRIMARY KEY (owner, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    owner TEXT NOT NULL, sender BLOB NOT NULL, top INTEGER NOT NULL, bitmap BLOB NOT NULL,
    PRIMARY KEY (owner, sender)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, owner TEXT NOT NULL, at REAL NOT NULL, source TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, frame BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    owner TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (owner, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS firmware_chunks (
    owner TEXT NOT NULL, version TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (owner, version, offset)) WITHOUT ROWID;
"""


class LinkDatabase:
    """One SQLite file holding the link state of one or more meters.

    Parameters
    ----------
    path : Path or str
        The database file (``":memory:"`` for a throw-away one).
    synchronous : str
        SQLite's ``synchronous`` pragma: ``FULL`` survives power loss, ``NORMAL`` (WAL)
        survives a process crash and is much faster.
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise LinkStoreError(f"synchronous={synchronous!r} is not an SQLite level")
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise LinkStoreError(f"cannot open the link database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group changes into one transaction (nested calls join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self._db.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")
            except BaseException as exc:
                if outer and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise LinkStoreError(f"link database: {exc}") from exc
                raise

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise LinkStoreError(f"link database: {exc}") from exc

    def for_meter(self, owner: str) -> MeterLinkStore:
        """The view of one owner (a meter serial, or a head-end instance)."""
        return MeterLinkStore(self, owner)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MeterLinkStore:
    """One owner's rows of a :class:`LinkDatabase`: implements the counter, replay-window,
    dead-letter and outbox stores of the link."""

    def __init__(self, database: LinkDatabase, owner: str) -> None:
        self.database = database
        self.owner = owner

    # counters ------------------------------------------------------------------
    def load_counter(self, name: str) -> int | None:
        rows = self.database.query(
            "SELECT value FROM counters WHERE name = ?", (f"{self.owner}/{name}",)
        )
        return None if not rows else int(rows[0][0])

    def save_counter(self, name: str, value: int) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
                (f"{self.owner}/{name}", value, value),
            )

    # replay windows --------------------------------------------------------------
    def load_window(self, sender: bytes) -> tuple[int, int] | None:
        rows = self.database.query(
            "SELECT top, bitmap FROM windows WHERE owner = ? AND sender = ?", (self.owner, sender)
        )
        if not rows:
            return None
        return int(rows[0][0]), int.from_bytes(rows[0][1], "big")

    def save_window(self, sender: bytes, top: int, bitmap: int) -> None:
        blob = bitmap.to_bytes((bitmap.bit_length() + 7) // 8 or 1, "big")
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO windows VALUES (?, ?, ?, ?) ON CONFLICT(owner, sender) "
                "DO UPDATE SET top = excluded.top, bitmap = excluded.bitmap",
                (self.owner, sender, top, blob),
            )

    # dead letters ----------------------------------------------------------------
    def add_dead_letter(self, letter: DeadLetter) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO dead_letters (owner, at, source, reason, detail, frame) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self.owner,
                    letter.at,
                    letter.source,
                    letter.reason.value,
                    letter.detail,
                    letter.frame,
                ),
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self.database.query(
            "SELECT at, source, reason, detail, frame FROM dead_letters WHERE owner = ? "
            "ORDER BY id DESC LIMIT ?",
            (self.owner, limit),
        )
        return [
            DeadLetter(at, source, RejectReason(reason), detail, frame)
            for at, source, reason, detail, frame in reversed(rows)
        ]

    def dead_letter_counts(self) -> dict[RejectReason, int]:
        rows = self.database.query(
            "SELECT reason, COUNT(*) FROM dead_letters WHERE owner = ? GROUP BY reason",
            (self.owner,),
        )
        return {RejectReason(reason): count for reason, count in rows}

    # small named values (cursors, key ring, module state) -------------------------
    def get_value(self, name: str) -> Any:
        rows = self.database.query(
            "SELECT value FROM kv WHERE owner = ? AND name = ?", (self.owner, name)
        )
        return None if not rows else json.loads(rows[0][0])

    def put_values(self, values: dict[str, Any]) -> None:
        with self.database.transaction() as conn:
            conn.executemany(
                "INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT(owner, name) "
                "DO UPDATE SET value = excluded.value",
                [(self.owner, name, json.dumps(value)) for name, value in values.items()],
            )

    # outbox ------------------------------------------------------------------------
    def load_outbox(self) -> list[tuple[int, int, bool, int, float, bytes]]:
        """Every stored entry: ``(seq, priority, essential, kind, created, payload)``."""
        rows = self.database.query(
            "SELECT seq, priority, essential, kind, created, payload FROM outbox "
            "WHERE owner = ? ORDER BY seq",
            (self.owner,),
        )
        return [(s, p, bool(e), k, c, bytes(b)) for s, p, e, k, c, b in rows]

    def insert_outbox(
        self,
        entries: list[tuple[int, int, bool, int, float, bytes]],
        deleted: list[int],
        values: dict[str, Any],
    ) -> None:
        """Insert ``entries``, delete ``deleted`` (overflow) and set ``values``, atomically."""
        with self.database.transaction() as db:
            db.executemany(
                "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(self.owner, s, p, int(e), k, c, b) for s, p, e, k, c, b in entries],
            )
            if deleted:
                db.executemany(
                    "DELETE FROM outbox WHERE owner = ? AND seq = ?",
                    [(self.owner, seq) for seq in deleted],
                )
            if values:
                self.put_values(values)

    def delete_outbox(self, seqs: list[int]) -> None:
        with self.database.transaction() as db:
            db.executemany(
                "DELETE FROM outbox WHERE owner = ? AND seq = ?",
                [(self.owner, seq) for seq in seqs],
            )

    # firmware slot -----------------------------------------------------------------
    def put_chunk(self, version: str, offset: int, data: bytes) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO firmware_chunks VALUES (?, ?, ?, ?)",
                (self.owner, version, offset, data),
            )

    def chunks(self, version: str) -> list[tuple[int, bytes]]:
        rows = self.database.query(
            "SELECT offset, data FROM firmware_chunks WHERE owner = ? AND version = ? "
            "ORDER BY offset",
            (self.owner, version),
        )
        return [(int(offset), bytes(data)) for offset, data in rows]

    def drop_chunks(self, keep_version: str | None = None) -> None:
        with self.database.transaction() as db:
            db.execute(
                "DELETE FROM firmware_chunks WHERE owner = ? AND version IS NOT ?",
                (self.owner, keep_version),
            )
