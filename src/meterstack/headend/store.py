"""The head-end's operational tables in SQLite (WAL), shared by its worker processes.

Meters and their keys (wrapped at rest under the head-end's master key with the RFC 3394
key wrap), the idempotency keys already applied, replay windows, downlink counters, dead
letters, alarms and the command queue. Workers in several processes open the same file;
each batch is one ``BEGIN IMMEDIATE`` transaction, so two workers never apply the same
message twice and replay windows stay consistent whatever worker a message reaches.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.errors import InvalidInputError, StoreError
from meterstack.link.deadletter import DeadLetter
from meterstack.link.envelope import SecuritySuite
from meterstack.link.errors import RejectReason
from meterstack.link.keys import KeyRing, MeterCredentials, unwrap_key, wrap_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meters (
    serial TEXT PRIMARY KEY, system_title BLOB NOT NULL UNIQUE, suite INTEGER NOT NULL,
    kek BLOB NOT NULL, ring TEXT NOT NULL, verify_key BLOB, last_path TEXT, last_seen REAL);
CREATE TABLE IF NOT EXISTS applied (
    meter TEXT NOT NULL, origin INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (meter, origin, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    sender BLOB PRIMARY KEY, top INTEGER NOT NULL, bitmap BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
    detail TEXT NOT NULL, frame BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    meter TEXT NOT NULL, origin INTEGER NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    code INTEGER NOT NULL, detail TEXT NOT NULL, created_ms INTEGER NOT NULL,
    received REAL NOT NULL, PRIMARY KEY (meter, origin, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT, meter TEXT NOT NULL, name TEXT NOT NULL,
    args TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL, timeout_s REAL NOT NULL, created REAL NOT NULL,
    expires REAL NOT NULL, sent_at REAL, deadline REAL, status INTEGER, detail TEXT,
    result TEXT, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS commands_open ON commands (state) WHERE state IN ('queued', 'sent');
"""


@dataclass
class MeterRecord:
    """What the head-end holds about one meter."""

    serial: str
    system_title: bytes
    suite: SecuritySuite
    kek: bytes
    ring: KeyRing
    verify_key: ec.EllipticCurvePublicKey | None
    last_path: str | None = None


class HeadEndStore:
    """The head-end's SQLite database.

    Parameters
    ----------
    path : Path or str
        The database file; every worker process opens the same one.
    master_key : bytes
        16 or 32 bytes; wraps every meter key stored here (RFC 3394).
    """

    def __init__(self, path: Path | str, master_key: bytes, *, synchronous: str = "NORMAL") -> None:
        if len(master_key) not in (16, 32):
            raise InvalidInputError("master_key", f"{len(master_key)} bytes", "16 or 32 bytes")
        self._master = master_key
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the head-end database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
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
                    raise StoreError(f"head-end database: {exc}") from exc
                raise

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"head-end database: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- meters and keys
    def _wrap_ring(self, ring: KeyRing) -> str:
        state = ring.to_state()
        wrapped: dict[str, list[Any] | None] = {}
        for name, item in state.items():
            if item is None:
                wrapped[name] = None
                continue
            suite, key_id, ek, ak = item
            wrapped[name] = [
                suite,
                key_id,
                wrap_key(self._master, bytes.fromhex(ek)).hex(),
                wrap_key(self._master, bytes.fromhex(ak)).hex(),
            ]
        return json.dumps(wrapped)

    def _unwrap_ring(self, text: str) -> KeyRing:
        state = json.loads(text)
        for name, item in state.items():
            if item is not None:
                suite, key_id, ek, ak = item
                state[name] = [
                    suite,
                    key_id,
                    unwrap_key(self._master, bytes.fromhex(ek), f"{name}.ek").hex(),
                    unwrap_key(self._master, bytes.fromhex(ak), f"{name}.ak").hex(),
                ]
        return KeyRing.from_state(state)

    def register_meter(self, credentials: MeterCredentials) -> None:
        """Record a meter's credentials (the head-end's copy from provisioning)."""
        pem = (
            None
            if credentials.meter_verify_key is None
            else credentials.meter_verify_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        ring = KeyRing(credentials.keys)
        with self.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO meters (serial, system_title, suite, kek, ring, verify_key) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(serial) DO UPDATE SET "
                    "system_title = excluded.system_title, suite = excluded.suite, "
                    "kek = excluded.kek, ring = excluded.ring, verify_key = excluded.verify_key",
                    (
                        credentials.serial,
                        credentials.system_title,
                        int(credentials.suite),
                        wrap_key(self._master, credentials.kek),
                        self._wrap_ring(ring),
                        pem,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidInputError(
                    "system_title", credentials.system_title.hex(), f"already registered: {exc}"
                ) from exc

    def meter(self, serial: str) -> MeterRecord | None:
        rows = self.query(
            "SELECT system_title, suite, kek, ring, verify_key, last_path FROM meters "
            "WHERE serial = ?",
            (serial,),
        )
        if not rows:
            return None
        title, suite, kek, ring, pem, last_path = rows[0]
        verify = None
        if pem is not None:
            loaded = serialization.load_pem_public_key(pem)
            if not isinstance(loaded, ec.EllipticCurvePublicKey):
                raise StoreError(f"meter {serial}: stored verify key is not an EC key")
            verify = loaded
        return MeterRecord(
            serial,
            bytes(title),
            SecuritySuite(suite),
            unwrap_key(self._master, bytes(kek), "kek"),
            self._unwrap_ring(ring),
            verify,
            last_path,
        )

    def save_ring(self, serial: str, ring: KeyRing) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE meters SET ring = ? WHERE serial = ?", (self._wrap_ring(ring), serial)
            )

    def serials(self) -> list[str]:
        return [row[0] for row in self.query("SELECT serial FROM meters ORDER BY serial")]

    # ---------------------------------------------------------------- counters, windows
    def load_counter(self, name: str) -> int | None:
        rows = self.query("SELECT value FROM counters WHERE name = ?", (name,))
        return None if not rows else int(rows[0][0])

    def save_counter(self, name: str, value: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
                (name, value, value),
            )

    def load_window(self, sender: bytes) -> tuple[int, int] | None:
        rows = self.query("SELECT top, bitmap FROM windows WHERE sender = ?", (sender,))
        return None if not rows else (int(rows[0][0]), int.from_bytes(rows[0][1], "big"))

    def save_window(self, sender: bytes, top: int, bitmap: int) -> None:
        blob = bitmap.to_bytes((bitmap.bit_length() + 7) // 8 or 1, "big")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO windows VALUES (?, ?, ?) ON CONFLICT(sender) DO UPDATE SET "
                "top = excluded.top, bitmap = excluded.bitmap",
                (sender, top, blob),
            )

    def load_windows(self, senders: list[bytes]) -> dict[bytes, tuple[int, int]]:
        """:meth:`load_window` for several senders in one query."""
        found: dict[bytes, tuple[int, int]] = {}
        for start in range(0, len(senders), 500):
            chunk = senders[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self.query(
                f"SELECT sender, top, bitmap FROM windows WHERE sender IN ({marks})",  # only ?s
                tuple(chunk),
            )
            for sender, top, bitmap in rows:
                found[bytes(sender)] = (int(top), int.from_bytes(bitmap, "big"))
        return found

    def save_windows(self, windows: list[tuple[bytes, int, int]]) -> None:
        """:meth:`save_window` for several senders in one statement."""
        rows = [
            (sender, top, bitmap.to_bytes((bitmap.bit_length() + 7) // 8 or 1, "big"))
            for sender, top, bitmap in windows
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO windows VALUES (?, ?, ?) ON CONFLICT(sender) DO UPDATE SET "
                "top = excluded.top, bitmap = excluded.bitmap",
                rows,
            )

    # ---------------------------------------------------------------- dead letters
    def add_dead_letter(self, letter: DeadLetter) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO dead_letters (at, source, reason, detail, frame) "
                "VALUES (?, ?, ?, ?, ?)",
                (letter.at, letter.source, letter.reason.value, letter.detail, letter.frame),
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self.query(
            "SELECT at, source, reason, detail, frame FROM dead_letters ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [DeadLetter(a, s, RejectReason(r), d, bytes(f)) for a, s, r, d, f in reversed(rows)]

    def dead_letter_counts(self) -> dict[RejectReason, int]:
        rows = self.query("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason")
        return {RejectReason(reason): count for reason, count in rows}

    # ---------------------------------------------------------------- alarms
    def alarms(self, meter: str | None = None) -> list[tuple[str, int, int, str, int, float]]:
        """``(meter, at_ms, code, detail, created_ms, received)`` oldest first."""
        sql = "SELECT meter, at_ms, code, detail, created_ms, received FROM alarms"
        rows = (
            self.query(sql + " WHERE meter = ? ORDER BY received", (meter,))
            if meter
            else self.query(sql + " ORDER BY received")
        )
        return [tuple(row) for row in rows]
