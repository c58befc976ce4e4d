"""Non-volatile memory of the meter: registers, credit, logs and profile survive a restart.

The meter hands a store a :class:`MeterImage` (its state plus its logs) and gets the same
image back after a restart. Every store writes atomically: a reader after a crash at any
instant finds either the previous image or the new one, never a mix.

* :class:`FileStore` writes the whole image to a temporary file, fsyncs it, renames it over
  the old one and fsyncs the directory.
* :class:`SQLiteStore` keeps the state in one row and the log entries in tables, appending
  only what is new, all inside one transaction of an SQLite database in WAL mode; many
  meters share one :class:`NonVolatileDatabase`.
* :class:`MemoryStore` keeps the encoded image in memory, for tests and simulations that do
  not need a disk.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Reversible, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import orjson

from meterstack.core.errors import CorruptStateError, StoreError
from meterstack.meter.events import Event
from meterstack.meter.profile import ProfileEntry

IMAGE_VERSION = 1


@dataclass
class MeterImage:
    """Everything the meter keeps in non-volatile memory."""

    serial: str
    state: dict[str, Any]
    profile: Sequence[ProfileEntry]
    profile_last_seq: int
    events: Mapping[str, Sequence[Event]] = field(default_factory=dict)
    event_last_seq: dict[str, int] = field(default_factory=dict)


class NonVolatileStore(Protocol):
    """Where a meter keeps its :class:`MeterImage`."""

    def save(self, image: MeterImage) -> None:
        """Write ``image`` atomically and durably."""
        ...

    def load(self) -> MeterImage | None:
        """The last image saved, or ``None`` if nothing was ever saved."""
        ...


def _dumps(value: Any) -> bytes:
    """JSON; floats are written in their shortest form, so they read back bit for bit."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise StoreError(f"cannot encode the meter image: {exc}") from exc


def encode_image(image: MeterImage) -> bytes:
    document = {
        "version": IMAGE_VERSION,
        "serial": image.serial,
        "state": image.state,
        "profile": [list(entry) for entry in image.profile],
        "profile_last_seq": image.profile_last_seq,
        "events": {kind: [list(e) for e in entries] for kind, entries in image.events.items()},
        "event_last_seq": image.event_last_seq,
    }
    return _dumps(document)


def decode_image(blob: bytes, source: str) -> MeterImage:
    try:
        document = orjson.loads(blob)
        if document["version"] != IMAGE_VERSION:
            raise CorruptStateError(
                f"{source}: image version {document['version']} is not {IMAGE_VERSION}"
            )
        return MeterImage(
            serial=document["serial"],
            state=document["state"],
            profile=[ProfileEntry(*row) for row in document["profile"]],
            profile_last_seq=int(document["profile_last_seq"]),
            events={
                kind: [Event(*row) for row in rows] for kind, rows in document["events"].items()
            },
            event_last_seq={k: int(v) for k, v in document["event_last_seq"].items()},
        )
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CorruptStateError(f"{source}: cannot decode the meter image: {exc}") from exc


class MemoryStore:
    """Keeps the encoded image in memory (the encoding is the same as on disk)."""

    def __init__(self) -> None:
        self._blob: bytes | None = None
        self.saves = 0

    def save(self, image: MeterImage) -> None:
        self._blob = encode_image(image)
        self.saves += 1

    def load(self) -> MeterImage | None:
        return None if self._blob is None else decode_image(self._blob, "memory store")


class FileStore:
    """One JSON file per meter, replaced atomically on every save.

    One writer per file: a save first removes temporary files that a writer killed in the
    middle of an earlier save left behind.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._swept = False

    def save(self, image: MeterImage) -> None:
        blob = encode_image(image)
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                for stale in directory.glob(f".{self.path.name}.*"):
                    stale.unlink(missing_ok=True)
                self._swept = True
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            try:
                with os.fdopen(handle, "wb") as output:
                    output.write(blob)
                    output.flush()
                    os.fsync(output.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            directory_handle = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(directory_handle)
            finally:
                os.close(directory_handle)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from exc

    def load(self) -> MeterImage | None:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        return decode_image(blob, str(self.path))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_state (
    serial TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state BLOB NOT NULL,
    profile_last_seq INTEGER NOT NULL,
    event_last_seq BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS load_profile (
    serial TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (serial, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_log (
    serial TEXT NOT NULL,
    log TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (serial, log, seq)
) WITHOUT ROWID;
"""


class NonVolatileDatabase:
    """An SQLite database (WAL mode) that holds the images of many meters.

    ``synchronous="FULL"`` survives power loss; ``"NORMAL"`` survives a crash of the process
    but may lose the last transactions on power loss, and is much faster. Saves made inside
    :meth:`batch` share one transaction: a simulator checkpoints a whole fleet per interval
    with one commit, and the batch is still all or nothing.
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise StoreError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        try:
            self.connection = sqlite3.connect(str(path), isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute(f"PRAGMA synchronous={synchronous}")
            self.connection.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        self.in_batch = False
        self.rollbacks = 0  # stores drop what they believe was saved when this changes

    def store(self, serial: str) -> SQLiteStore:
        """The store of meter ``serial`` in this database."""
        return SQLiteStore(self, serial)

    def serials(self) -> list[str]:
        """Meters that have an image here."""
        rows = self.connection.execute("SELECT serial FROM meter_state ORDER BY serial")
        return [serial for (serial,) in rows]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the saves made inside into one transaction."""
        if self.in_batch:
            yield
            return
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot begin a transaction in {self.path}: {exc}") from exc
        self.in_batch = True
        try:
            yield
        except BaseException:
            self.in_batch = False
            self.rollbacks += 1
            self.connection.execute("ROLLBACK")
            raise
        self.in_batch = False
        try:
            self.connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot commit to {self.path}: {exc}") from exc

    def close(self) -> None:
        self.connection.close()


def _newer(entries: Reversible[Any], seq: int, last_seq: int) -> list[Any]:
    """Entries with sequence number above ``seq``, given numbers without gaps."""
    count = last_seq - seq
    if count <= 0:
        return []
    found = list(islice(reversed(entries), count))
    found.reverse()
    return found


class SQLiteStore:
    """A meter's image in an SQLite database, saved incrementally in one transaction."""

    def __init__(self, database: NonVolatileDatabase | Path | str, serial: str) -> None:
        self.database = (
            database if isinstance(database, NonVolatileDatabase) else NonVolatileDatabase(database)
        )
        self._connection = self.database.connection
        self.serial = serial
        self._saved_profile_seq: int | None = None
        self._saved_event_seq: dict[str, int] = {}
        self._rollbacks_seen = self.database.rollbacks
        self._kept_from: dict[str | None, int] = {}  # oldest seq still stored, per log

    def _saved_sequences(self) -> tuple[int, dict[str, int]]:
        if self._rollbacks_seen != self.database.rollbacks:
            # A batch this store took part in may have been rolled back: ask the database.
            self._saved_profile_seq = None
            self._kept_from = {}
            self._rollbacks_seen = self.database.rollbacks
        if self._saved_profile_seq is None:
            row = self._connection.execute(
                "SELECT profile_last_seq, event_last_seq FROM meter_state WHERE serial = ?",
                (self.serial,),
            ).fetchone()
            if row is None:
                self._saved_profile_seq, self._saved_event_seq = 0, {}
            else:
                self._saved_profile_seq = int(row[0])
                self._saved_event_seq = {k: int(v) for k, v in orjson.loads(row[1]).items()}
        return self._saved_profile_seq, self._saved_event_seq

    def save(self, image: MeterImage) -> None:
        dumps = _dumps
        try:
            saved_profile, saved_events = self._saved_sequences()
            connection = self._connection
            own_transaction = not self.database.in_batch
            if own_transaction:
                connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    "INSERT INTO meter_state VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE"
                    " SET version = excluded.version, state = excluded.state,"
                    " profile_last_seq = excluded.profile_last_seq,"
                    " event_last_seq = excluded.event_last_seq",
                    (
                        self.serial,
                        IMAGE_VERSION,
                        dumps(image.state),
                        image.profile_last_seq,
                        dumps(image.event_last_seq),
                    ),
                )
                new_profile = _newer(image.profile, saved_profile, image.profile_last_seq)
                if new_profile:
                    connection.executemany(
                        "INSERT OR REPLACE INTO load_profile VALUES (?, ?, ?)",
                        [(self.serial, e.seq, dumps(list(e))) for e in new_profile],
                    )
                    self._trim("load_profile", None, image.profile)
                for kind, entries in image.events.items():
                    last = image.event_last_seq.get(kind, 0)
                    new_events = _newer(entries, saved_events.get(kind, 0), last)
                    if new_events:
                        connection.executemany(
                            "INSERT OR REPLACE INTO event_log VALUES (?, ?, ?, ?)",
                            [(self.serial, kind, e.seq, dumps(list(e))) for e in new_events],
                        )
                        self._trim("event_log", kind, entries)
                if own_transaction:
                    connection.execute("COMMIT")
            except BaseException:
                if own_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._saved_profile_seq = None  # re-read what is really there next time
            self._kept_from = {}
            raise StoreError(f"cannot save meter {self.serial}: {exc}") from exc
        self._saved_profile_seq = image.profile_last_seq
        self._saved_event_seq = dict(image.event_last_seq)

    def _trim(self, table: str, kind: str | None, held: Iterable[Any]) -> None:
        """Delete rows that the meter's ring buffer has overwritten."""
        oldest = next(iter(held), None)
        if oldest is None or self._kept_from.get(kind, 0) >= oldest.seq:
            return
        if kind is None:
            self._connection.execute(
                "DELETE FROM load_profile WHERE serial = ? AND seq < ?", (self.serial, oldest.seq)
            )
        else:
            self._connection.execute(
                "DELETE FROM event_log WHERE serial = ? AND log = ? AND seq < ?",
                (self.serial, kind, oldest.seq),
            )
        self._kept_from[kind] = oldest.seq

    def load(self) -> MeterImage | None:
        connection = self._connection
        own_transaction = not self.database.in_batch
        try:
            if own_transaction:
                connection.execute("BEGIN")
            try:
                row = connection.execute(
                    "SELECT version, state, profile_last_seq, event_last_seq FROM meter_state"
                    " WHERE serial = ?",
                    (self.serial,),
                ).fetchone()
                if row is None:
                    return None
                profile_rows = connection.execute(
                    "SELECT entry FROM load_profile WHERE serial = ? ORDER BY seq", (self.serial,)
                ).fetchall()
                event_rows = connection.execute(
                    "SELECT log, entry FROM event_log WHERE serial = ? ORDER BY log, seq",
                    (self.serial,),
                ).fetchall()
            finally:
                if own_transaction:
                    connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot load meter {self.serial}: {exc}") from exc
        source = f"SQLite image of meter {self.serial}"
        try:
            if row[0] != IMAGE_VERSION:
                raise CorruptStateError(f"{source}: image version {row[0]} is not {IMAGE_VERSION}")
            events: dict[str, list[Event]] = {}
            for kind, entry in event_rows:
                events.setdefault(kind, []).append(Event(*orjson.loads(entry)))
            image = MeterImage(
                serial=self.serial,
                state=orjson.loads(row[1]),
                profile=[ProfileEntry(*orjson.loads(entry)) for (entry,) in profile_rows],
                profile_last_seq=int(row[2]),
                events=events,
                event_last_seq={k: int(v) for k, v in orjson.loads(row[3]).items()},
            )
        except (ValueError, TypeError) as exc:
            raise CorruptStateError(f"{source}: cannot decode: {exc}") from exc
        self._saved_profile_seq = image.profile_last_seq
        self._saved_event_seq = dict(image.event_last_seq)
        return image
