"""The embedded interval store: one DuckDB file, loaded from Arrow batches.

DuckDB keeps no primary-key index here (maintaining one would cut bulk inserts several
fold); each ingest classifies its rows against the existing ones with one join restricted
to the batch's time span (DuckDB's zone maps skip row groups outside it), inside a
transaction. Only one process writes a DuckDB file at a time; within a process the store
serialises writers with a lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from meterstack.core.errors import StoreError
from meterstack.core.time import ensure_utc
from meterstack.mdm.ingest import IngestResult
from meterstack.mdm.intervals.base import (
    SEEDED_CHANNELS,
    IntervalStore,
    MeterRegistration,
    Revision,
    ValidatedVersion,
    ValidatedWrite,
    epoch_s,
    from_epoch_s,
)
from meterstack.mdm.intervals.batches import I64, IntervalRows
from meterstack.mdm.quality import Method, Quality

SCHEMA_VERSION = "1"

_DDL = """
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS meter_registry (
    meter_id INTEGER PRIMARY KEY, meter VARCHAR NOT NULL UNIQUE, interval_s INTEGER,
    timezone VARCHAR NOT NULL, has_generation BOOLEAN NOT NULL,
    profile_capacity_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel_registry (
    channel_id SMALLINT PRIMARY KEY, obis VARCHAR NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS interval_reading (
    meter_id INTEGER NOT NULL, channel_id SMALLINT NOT NULL, interval_end TIMESTAMPTZ NOT NULL,
    value DOUBLE NOT NULL, status INTEGER NOT NULL, revision SMALLINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL, duration_s INTEGER);
CREATE TABLE IF NOT EXISTS interval_revision (
    meter_id INTEGER NOT NULL, channel_id SMALLINT NOT NULL, interval_end TIMESTAMPTZ NOT NULL,
    revision SMALLINT NOT NULL, value DOUBLE NOT NULL, status INTEGER NOT NULL,
    received_at TIMESTAMPTZ NOT NULL, superseded_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS interval_validated (
    meter_id INTEGER NOT NULL, channel_id SMALLINT NOT NULL, interval_end TIMESTAMPTZ NOT NULL,
    value DOUBLE, quality UTINYINT NOT NULL, method TINYINT NOT NULL, checks INTEGER NOT NULL,
    version INTEGER NOT NULL, actor VARCHAR NOT NULL, validated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS interval_validated_history (
    meter_id INTEGER NOT NULL, channel_id SMALLINT NOT NULL, interval_end TIMESTAMPTZ NOT NULL,
    value DOUBLE, quality UTINYINT NOT NULL, method TINYINT NOT NULL, checks INTEGER NOT NULL,
    version INTEGER NOT NULL, actor VARCHAR NOT NULL, validated_at TIMESTAMPTZ NOT NULL,
    superseded_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS register_read (
    meter_id INTEGER NOT NULL, obis VARCHAR NOT NULL, read_at TIMESTAMPTZ NOT NULL,
    value DOUBLE NOT NULL, revision SMALLINT NOT NULL, received_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS register_revision (
    meter_id INTEGER NOT NULL, obis VARCHAR NOT NULL, read_at TIMESTAMPTZ NOT NULL,
    revision SMALLINT NOT NULL, value DOUBLE NOT NULL, received_at TIMESTAMPTZ NOT NULL,
    superseded_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS meter_event (
    meter_id INTEGER NOT NULL, log VARCHAR NOT NULL, seq BIGINT NOT NULL,
    event_at TIMESTAMPTZ NOT NULL, code INTEGER NOT NULL, detail VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS meter_event_conflict (
    meter_id INTEGER NOT NULL, log VARCHAR NOT NULL, seq BIGINT NOT NULL,
    event_at TIMESTAMPTZ NOT NULL, code INTEGER NOT NULL, detail VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL);
"""

_KEY = "meter_id, channel_id, interval_end"


class DuckDBIntervalStore(IntervalStore):
    """Interval store in a DuckDB file (``":memory:"`` for a throw-away one)."""

    backend = "duckdb"

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__()
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute(_DDL)
            self._con.execute(
                "INSERT INTO store_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                [SCHEMA_VERSION],
            )
            version = self._con.execute(
                "SELECT value FROM store_meta WHERE key = 'schema_version'"
            ).fetchone()
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot open the DuckDB interval store {self.path}: {exc}") from exc
        if version is None or version[0] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has interval schema {version}, expected {SCHEMA_VERSION}"
            )
        self._load_registries()
        missing = [obis for obis in SEEDED_CHANNELS if obis not in self._channel_ids]
        if missing:
            self._insert_channels(missing)
            self._load_registries()

    # -- plumbing ---------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        try:
            return self._con.execute(sql, params) if params is not None else self._con.execute(sql)
        except duckdb.Error as exc:
            raise StoreError(f"DuckDB interval store {self.path}: {exc}") from exc

    def _arrow(self, sql: str, params: Sequence[Any]) -> pa.Table:
        try:
            return self._con.sql(sql, params=list(params)).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"DuckDB interval store {self.path}: {exc}") from exc

    def _unregister(self, name: str) -> None:
        """Drop the Arrow view ``name``. In a transaction a failed statement has aborted,
        DuckDB refuses even this: the view is then left to be replaced by the next
        ``register``, so that the statement's own error is the one raised."""
        with contextlib.suppress(duckdb.Error):
            self._con.unregister(name)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._con, self.path)

    def _load_registries(self) -> None:
        meters = self._run("SELECT meter_id, meter FROM meter_registry").fetchall()
        self._meter_ids = {name: int(i) for i, name in meters}
        self._meter_names = {int(i): name for i, name in meters}
        channels = self._run("SELECT channel_id, obis FROM channel_registry").fetchall()
        self._channel_ids = {name: int(i) for i, name in channels}
        self._channel_names = {int(i): name for i, name in channels}

    def _insert_meters(self, registrations: Sequence[MeterRegistration]) -> None:
        with self._transaction():
            (top,) = self._run(
                "SELECT coalesce(max(meter_id), 0) FROM meter_registry"
            ).fetchone() or (0,)
            next_id = int(top) + 1
            for reg in registrations:
                row = self._run(
                    "SELECT meter_id FROM meter_registry WHERE meter = ?", [reg.meter]
                ).fetchone()
                values = [
                    reg.interval_s,
                    reg.timezone,
                    reg.has_generation,
                    reg.profile_capacity_days,
                ]
                if row is None:
                    self._run(
                        "INSERT INTO meter_registry VALUES (?, ?, ?, ?, ?, ?)",
                        [next_id, reg.meter, *values],
                    )
                    next_id += 1
                else:
                    self._run(
                        "UPDATE meter_registry SET interval_s = ?, timezone = ?, has_generation"
                        " = ?, profile_capacity_days = ? WHERE meter_id = ?",
                        [*values, row[0]],
                    )

    def _insert_channels(self, obis: Sequence[str]) -> None:
        with self._transaction():
            (top,) = self._run(
                "SELECT coalesce(max(channel_id), 0) FROM channel_registry"
            ).fetchone() or (0,)
            for offset, code in enumerate(obis, start=1):
                self._run(
                    "INSERT INTO channel_registry VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [int(top) + offset, code],
                )

    def meters(self) -> list[MeterRegistration]:
        rows = self._run(
            "SELECT meter, interval_s, timezone, has_generation, profile_capacity_days"
            " FROM meter_registry ORDER BY meter"
        ).fetchall()
        return [MeterRegistration(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in rows]

    # -- ingest -------------------------------------------------------------------------

    def ingest_intervals(self, batch: pa.Table) -> IngestResult:
        rows, rejections, repeats = self.prepare_intervals(batch)
        inserted = revisions = duplicates = 0
        with self._lock, self._transaction():
            for part in rows.rounds():
                i, r, d = self._merge_intervals(part)
                inserted += i
                revisions += r
                duplicates += d
        return IngestResult(inserted, duplicates + repeats, revisions, rejections.rows())

    def _merge_intervals(self, rows: IntervalRows) -> tuple[int, int, int]:
        """Insert the new keys, then turn changed values into revisions.

        One statement does the usual case: an anti-join against the stored rows of the
        batch's time span inserts every key that is new. Only when some were not new are
        the others compared: the rows just inserted equal themselves, so every difference
        found is a revision and the rest are duplicates.
        """
        n = len(rows)
        duration = (
            pa.array(rows.duration_s.astype(np.int32), mask=rows.duration_s < 0)
            if rows.has_duration and rows.duration_s is not None
            else pa.nulls(n, pa.int32())
        )
        stage = pa.table(
            {
                "meter_id": pa.array(rows.meter_id.astype(np.int32)),
                "channel_id": pa.array(rows.channel_id.astype(np.int16)),
                "interval_end": pa.array(rows.interval_end, pa.int64()).cast(
                    pa.timestamp("s", tz="UTC")
                ),
                "value": pa.array(rows.value),
                "status": pa.array(rows.status.astype(np.int32)),
                "duration_s": duration,
            }
        )
        span = [int(rows.interval_end.min()), int(rows.interval_end.max())]
        existing = (
            "(SELECT * FROM interval_reading"
            " WHERE interval_end BETWEEN to_timestamp(?) AND to_timestamp(?))"
        )
        self._con.register("mdm_stage", stage)
        try:
            (inserted,) = self._run(
                "INSERT INTO interval_reading SELECT s.meter_id, s.channel_id, s.interval_end,"
                f" s.value, s.status, 0, now(), s.duration_s FROM mdm_stage s ANTI JOIN {existing}"
                f" r USING ({_KEY})",
                span,
            ).fetchone() or (0,)
            inserted = int(inserted)
            if inserted == n:
                return n, 0, 0
            self._run(
                "CREATE OR REPLACE TEMP TABLE mdm_changed AS SELECT s.*, r.value AS old_value,"
                " r.status AS old_status, r.revision AS old_revision, r.received_at AS old_received"
                f" FROM mdm_stage s JOIN {existing} r USING ({_KEY})"
                " WHERE r.value <> s.value OR r.status <> s.status",
                span,
            )
            (revisions,) = self._run(
                "INSERT INTO interval_revision SELECT meter_id, channel_id, interval_end,"
                " old_revision, old_value, old_status, old_received, now() FROM mdm_changed"
            ).fetchone() or (0,)
            revisions = int(revisions)
            if revisions:
                self._run(
                    "UPDATE interval_reading r SET value = c.value, status = c.status,"
                    " revision = r.revision + 1, received_at = now(),"
                    " duration_s = coalesce(c.duration_s, r.duration_s) FROM mdm_changed c"
                    " WHERE r.meter_id = c.meter_id AND r.channel_id = c.channel_id"
                    " AND r.interval_end = c.interval_end"
                )
            self._run("DROP TABLE mdm_changed")
            return inserted, revisions, n - inserted - revisions
        finally:
            self._unregister("mdm_stage")

    def ingest_registers(self, batch: pa.Table) -> IngestResult:
        table, rejections = self.prepare_registers(batch)
        if table.num_rows == 0:
            return IngestResult(rejected=rejections.rows())
        # One row per key within the batch: the last value wins, earlier ones are revisions.
        with self._lock, self._transaction():
            inserted = revisions = 0
            for part in _rounds(table, ("meter_id", "obis", "read_at")):
                self._con.register("mdm_reg", part)
                try:
                    self._run(
                        "CREATE OR REPLACE TEMP TABLE mdm_regc AS SELECT s.*, r.value AS old_value,"
                        " r.revision AS old_revision, r.received_at AS old_received FROM mdm_reg s"
                        " LEFT JOIN register_read r USING (meter_id, obis, read_at)"
                    )
                    (i,) = self._run(
                        "INSERT INTO register_read SELECT meter_id, obis, read_at, value, 0, now()"
                        " FROM mdm_regc WHERE old_value IS NULL"
                    ).fetchone() or (0,)
                    (r,) = self._run(
                        "INSERT INTO register_revision SELECT meter_id, obis, read_at,"
                        " old_revision, old_value, old_received, now() FROM mdm_regc WHERE"
                        " old_value IS NOT NULL AND old_value <> value"
                    ).fetchone() or (0,)
                    if r:
                        self._run(
                            "UPDATE register_read t SET value = c.value, revision = t.revision + 1,"
                            " received_at = now() FROM (SELECT * FROM mdm_regc WHERE"
                            " old_value IS NOT NULL AND old_value <> value) c WHERE t.meter_id ="
                            " c.meter_id AND t.obis = c.obis AND t.read_at = c.read_at"
                        )
                    inserted += int(i)
                    revisions += int(r)
                finally:
                    self._unregister("mdm_reg")
        duplicates = table.num_rows - inserted - revisions
        return IngestResult(inserted, duplicates, revisions, rejections.rows())

    def ingest_events(self, batch: pa.Table) -> IngestResult:
        table, rejections = self.prepare_events(batch)
        if table.num_rows == 0:
            return IngestResult(rejected=rejections.rows())
        with self._lock, self._transaction():
            inserted = conflicts = 0
            for part in _rounds(table, ("meter_id", "log", "seq")):
                self._con.register("mdm_ev", part)
                try:
                    self._run(
                        "CREATE OR REPLACE TEMP TABLE mdm_evc AS SELECT s.*, r.code AS old_code,"
                        " r.event_at AS old_at, r.detail AS old_detail FROM mdm_ev s"
                        " LEFT JOIN meter_event r USING (meter_id, log, seq)"
                    )
                    (i,) = self._run(
                        "INSERT INTO meter_event SELECT meter_id, log, seq, event_at, code,"
                        " detail, now() FROM mdm_evc WHERE old_code IS NULL"
                    ).fetchone() or (0,)
                    (c,) = self._run(
                        "INSERT INTO meter_event_conflict SELECT meter_id, log, seq, event_at,"
                        " code, detail, now() FROM mdm_evc WHERE old_code IS NOT NULL AND"
                        " (old_code <> code OR old_at <> event_at OR old_detail <> detail)"
                    ).fetchone() or (0,)
                    inserted += int(i)
                    conflicts += int(c)
                finally:
                    self._unregister("mdm_ev")
        return IngestResult(
            inserted, table.num_rows - inserted - conflicts, conflicts, rejections.rows()
        )

    # -- reads ---------------------------------------------------------------------------

    @staticmethod
    def _where(
        start_s: int,
        end_s: int,
        column: str,
        meter_ids: I64 | None,
        channel_ids: Sequence[int] | None,
    ) -> tuple[str, list[Any]]:
        clauses = [f"{column} > to_timestamp(?) AND {column} <= to_timestamp(?)"]
        params: list[Any] = [start_s, end_s]
        if meter_ids is not None:
            clauses.append("meter_id IN (SELECT unnest(?::INTEGER[]))")
            params.append([int(m) for m in meter_ids])
        if channel_ids is not None:
            clauses.append("channel_id IN (SELECT unnest(?::SMALLINT[]))")
            params.append([int(c) for c in channel_ids])
        return " AND ".join(clauses), params

    def _numpy(self, sql: str, params: list[Any]) -> dict[str, np.ndarray]:
        table = self._arrow(sql, params)
        return {name: table.column(name).to_numpy() for name in table.column_names}

    def fetch_intervals(
        self, start_s: int, end_s: int, meter_ids: I64 | None, channel_ids: Sequence[int] | None
    ) -> dict[str, np.ndarray]:
        where, params = self._where(start_s, end_s, "interval_end", meter_ids, channel_ids)
        with self._lock:
            return self._numpy(
                "SELECT meter_id::BIGINT AS meter_id, channel_id::BIGINT AS channel_id,"
                " epoch(interval_end)::BIGINT AS interval_end, value, status::BIGINT AS status,"
                " revision::BIGINT AS revision, epoch(received_at)::BIGINT AS received_at,"
                " coalesce(duration_s, -1)::BIGINT AS duration_s"
                f" FROM interval_reading WHERE {where}",
                params,
            )

    def fetch_validated(
        self,
        start_s: int,
        end_s: int,
        meter_ids: I64 | None,
        channel_ids: Sequence[int] | None,
        *,
        method: int | None = None,
    ) -> dict[str, np.ndarray]:
        where, params = self._where(start_s, end_s, "interval_end", meter_ids, channel_ids)
        if method is not None:
            where += " AND method = ?"
            params.append(int(method))
        with self._lock:
            return self._numpy(
                "SELECT meter_id::BIGINT AS meter_id, channel_id::BIGINT AS channel_id,"
                " epoch(interval_end)::BIGINT AS interval_end, coalesce(value, 'NaN'::DOUBLE) AS"
                " value, quality::BIGINT AS quality, method::BIGINT AS method, checks::BIGINT AS"
                " checks, version::BIGINT AS version, epoch(validated_at)::BIGINT AS"
                f" validated_at FROM interval_validated WHERE {where}",
                params,
            )

    def read_registers(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        obis: Sequence[str] | None = None,
    ) -> pa.Table:
        clauses = ["read_at >= ? AND read_at <= ?"]
        params: list[Any] = [start, end]
        if meters is not None:
            clauses.append("m.meter IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(meters))
        if obis is not None:
            clauses.append("obis IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(obis))
        with self._lock:
            return self._arrow(
                "SELECT m.meter, obis, read_at, value, revision::INTEGER AS revision FROM"
                " register_read JOIN meter_registry m USING (meter_id) WHERE"
                f" {' AND '.join(clauses)} ORDER BY m.meter, obis, read_at",
                params,
            )

    def read_events(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        codes: Sequence[int] | None = None,
    ) -> pa.Table:
        clauses = ["event_at >= ? AND event_at <= ?"]
        params: list[Any] = [start, end]
        if meters is not None:
            clauses.append("m.meter IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(meters))
        if codes is not None:
            clauses.append("code IN (SELECT unnest(?::INTEGER[]))")
            params.append([int(c) for c in codes])
        with self._lock:
            return self._arrow(
                'SELECT m.meter, log, seq, event_at AS "at", code, detail FROM meter_event'
                f" JOIN meter_registry m USING (meter_id) WHERE {' AND '.join(clauses)}"
                " ORDER BY m.meter, event_at, log, seq",
                params,
            )

    def _key_params(self, meter: str, channel: str, interval_end: datetime) -> list[Any] | None:
        meter_id = self.meter_ids([meter]).get(meter)
        channel_id = self.channel_ids([channel], create=False).get(channel)
        if meter_id is None or channel_id is None:
            return None
        return [meter_id, channel_id, epoch_s(interval_end, "interval_end")]

    def revisions(self, meter: str, channel: str, interval_end: datetime) -> list[Revision]:
        params = self._key_params(meter, channel, interval_end)
        if params is None:
            return []
        key = "meter_id = ? AND channel_id = ? AND interval_end = to_timestamp(?)"
        with self._lock:
            rows = self._run(
                "SELECT revision, value, status, epoch(received_at), epoch(superseded_at) FROM"
                f" interval_revision WHERE {key} UNION ALL SELECT revision, value, status,"
                f" epoch(received_at), NULL FROM interval_reading WHERE {key} ORDER BY 1",
                params + params,
            ).fetchall()
        return [
            Revision(
                int(r[0]),
                float(r[1]),
                int(r[2]),
                from_epoch_s(r[3]),
                None if r[4] is None else from_epoch_s(r[4]),
            )
            for r in rows
        ]

    def validated_history(
        self, meter: str, channel: str, interval_end: datetime
    ) -> list[ValidatedVersion]:
        params = self._key_params(meter, channel, interval_end)
        if params is None:
            return []
        key = "meter_id = ? AND channel_id = ? AND interval_end = to_timestamp(?)"
        cols = "version, value, quality, method, checks, actor, epoch(validated_at)"
        with self._lock:
            rows = self._run(
                f"SELECT {cols}, epoch(superseded_at) FROM interval_validated_history WHERE {key}"
                f" UNION ALL SELECT {cols}, NULL FROM interval_validated WHERE {key} ORDER BY 1",
                params + params,
            ).fetchall()
        return [_validated_version(r) for r in rows]

    def received_between(
        self, since: datetime, until: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        # Receipt stamps have microseconds: compare at that precision.
        params: list[Any] = [ensure_utc(since, "since").timestamp()]
        clause = "received_at >= to_timestamp(?)"
        if until is not None:
            clause += " AND received_at < to_timestamp(?)"
            params.append(ensure_utc(until, "until").timestamp())
        with self._lock:
            row = self._run(
                "SELECT epoch(min(interval_end)), epoch(max(interval_end)) FROM interval_reading"
                f" WHERE {clause}",
                params,
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return from_epoch_s(row[0]), from_epoch_s(row[1])

    def database_now(self) -> datetime:
        with self._lock:
            row = self._run("SELECT epoch(now())").fetchone()
        assert row is not None
        return from_epoch_s(float(row[0]))

    # -- validated writes -------------------------------------------------------------

    def _write_validated(self, rows: Mapping[str, np.ndarray], actor: str) -> ValidatedWrite:
        value = rows["value"]
        stage = pa.table(
            {
                "meter_id": pa.array(rows["meter_id"].astype(np.int32)),
                "channel_id": pa.array(rows["channel_id"].astype(np.int16)),
                "interval_end": pa.array(rows["interval_end"], pa.int64()).cast(
                    pa.timestamp("s", tz="UTC")
                ),
                "value": pa.array(value, mask=np.isnan(value)),
                "quality": pa.array(rows["quality"].astype(np.uint8)),
                "method": pa.array(rows["method"].astype(np.int8)),
                "checks": pa.array(rows["checks"].astype(np.int32)),
            }
        )
        lo, hi = int(rows["interval_end"].min()), int(rows["interval_end"].max())
        with self._transaction():
            self._con.register("mdm_val", stage)
            try:
                self._run(
                    "CREATE OR REPLACE TEMP TABLE mdm_valc AS SELECT s.*, v.value AS old_value,"
                    " v.quality AS old_quality, v.method AS old_method, v.checks AS old_checks,"
                    " v.version AS old_version, v.actor AS old_actor, v.validated_at AS old_at"
                    " FROM mdm_val s LEFT JOIN (SELECT * FROM interval_validated WHERE interval_end"
                    f" BETWEEN to_timestamp(?) AND to_timestamp(?)) v USING ({_KEY})",
                    [lo, hi],
                )
                (inserted,) = self._run(
                    "INSERT INTO interval_validated SELECT meter_id, channel_id, interval_end,"
                    " value, quality, method, checks, 1, ?, now() FROM mdm_valc WHERE"
                    " old_version IS NULL",
                    [actor],
                ).fetchone() or (0,)
                changed = (
                    "old_version IS NOT NULL AND (old_value IS DISTINCT FROM value OR"
                    " old_quality <> quality OR old_method <> method OR old_checks <> checks)"
                )
                (n_changed,) = self._run(
                    "INSERT INTO interval_validated_history SELECT meter_id, channel_id,"
                    " interval_end, old_value, old_quality, old_method, old_checks, old_version,"
                    f" old_actor, old_at, now() FROM mdm_valc WHERE {changed}"
                ).fetchone() or (0,)
                if n_changed:
                    self._run(
                        "UPDATE interval_validated v SET value = c.value, quality = c.quality,"
                        " method = c.method, checks = c.checks, version = v.version + 1, actor = ?,"
                        f" validated_at = now() FROM (SELECT * FROM mdm_valc WHERE {changed}) c"
                        " WHERE v.meter_id = c.meter_id AND v.channel_id = c.channel_id"
                        " AND v.interval_end = c.interval_end",
                        [actor],
                    )
                self._run("DROP TABLE mdm_valc")
            finally:
                self._unregister("mdm_val")
        n = int(rows["meter_id"].size)
        return ValidatedWrite(int(inserted), int(n_changed), n - int(inserted) - int(n_changed))

    def close(self) -> None:
        with self._lock:
            self._con.close()


class _Transaction:
    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self._con = con
        self._path = path

    def __enter__(self) -> None:
        self._con.execute("BEGIN TRANSACTION")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._con.execute("COMMIT")
            except duckdb.Error as error:
                raise StoreError(
                    f"DuckDB interval store {self._path}: commit failed: {error}"
                ) from error
        else:
            self._con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                # The same typed error as the PostgreSQL store's, the database's own as cause.
                raise StoreError(f"DuckDB interval store {self._path}: {exc}") from exc


def _rounds(table: pa.Table, key: tuple[str, ...]) -> list[pa.Table]:
    """Split ``table`` so that no part holds a key twice (first occurrences first)."""
    if table.num_rows == 0:
        return []
    numbered = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    grouped = numbered.group_by(list(key), use_threads=False).aggregate([("_row", "list")])
    lists = grouped.column("_row_list").to_pylist()
    if all(len(rows) == 1 for rows in lists):
        return [table]
    rank = np.zeros(table.num_rows, dtype=np.int64)
    for rows in lists:
        for position, row in enumerate(sorted(rows)):
            rank[row] = position
    return [table.filter(pa.array(rank == r)) for r in range(int(rank.max()) + 1)]


def _validated_version(row: Sequence[Any]) -> ValidatedVersion:
    value = row[1]
    return ValidatedVersion(
        version=int(row[0]),
        value=None if value is None else float(value),
        quality=Quality(chr(int(row[2]))),
        method=Method(int(row[3])),
        checks=int(row[4]),
        actor=str(row[5]),
        validated_at=from_epoch_s(float(row[6])),
        superseded_at=None if row[7] is None else from_epoch_s(float(row[7])),
    )
