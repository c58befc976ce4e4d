"""The interval store interface, shared by the DuckDB and PostgreSQL backends.

An :class:`IntervalStore` keeps, for every meter it knows:

* raw interval readings, one current row per ``(meter, channel, interval_end)`` with its
  revision number; every value it replaced is kept in the revisions table, so a reading is
  never lost and the chain of what arrived can be read back (:meth:`IntervalStore.revisions`);
* validated intervals written by VEE and by manual edits, again one current row per key with
  every earlier version kept (:meth:`IntervalStore.validated_history`);
* register reads and event-log entries.

It implements :class:`meterstack.mdm.ingest.MeterDataSink`, the interface the head-end
writes to. Meters are registered first (:meth:`IntervalStore.register_meters`); a reading
for a meter the store does not know is rejected with its reason, and the rest of the batch
is kept. One ingest call is one transaction: it is written whole or not at all.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterstack.core.errors import InvalidInputError, StoreError
from meterstack.core.time import ensure_utc
from meterstack.mdm.channels import CHANNELS
from meterstack.mdm.errors import MonthNotClosedError
from meterstack.mdm.ingest import (
    EVENT_SCHEMA,
    INTERVAL_SCHEMA,
    REGISTER_SCHEMA,
    IngestResult,
)
from meterstack.mdm.intervals.batches import (
    I64,
    IntervalRows,
    Rejections,
    channel_key,
    floats,
    ints,
    lookup_strings,
    null_rows,
    require_columns,
    sort_and_dedupe,
    timestamps_s,
    valid_obis,
)
from meterstack.mdm.quality import Method, Quality

#: What VEE and edits write: one validated interval. ``value`` is null for quality ``N``.
VALIDATED_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("interval_end", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("quality", pa.string(), nullable=False),
        pa.field("method", pa.int8(), nullable=False),
        pa.field("checks", pa.int32(), nullable=False),
    ]
)

#: Channels every store knows from the start, with fixed ids (1, 2, ...).
SEEDED_CHANNELS: tuple[str, ...] = tuple(channel.obis for channel in CHANNELS)


@dataclass(frozen=True, slots=True)
class MeterRegistration:
    """What the interval store needs to know about a meter.

    Attributes
    ----------
    meter : str
        The meter's id (serial number), as readings name it.
    interval_s : int or None
        Load-profile capture period [s]; None for a meter read in irregular periods
        (billing-period reads from a Green Button file, say).
    timezone : str
        IANA zone of the meter's site: like days are local days.
    has_generation : bool
        Export is expected (rooftop PV); without it export is reverse flow.
    profile_capacity_days : int
        How long the meter keeps its load profile [d]: older gaps cannot be read again.
    """

    meter: str
    interval_s: int | None = 1800
    timezone: str = "UTC"
    has_generation: bool = False
    profile_capacity_days: int = 60

    def __post_init__(self) -> None:
        if not self.meter or len(self.meter) > 64:
            raise InvalidInputError("meter", self.meter, "a meter id is 1-64 characters")
        if self.interval_s is not None and not (
            60 <= self.interval_s <= 86400 and 86400 % self.interval_s == 0
        ):
            raise InvalidInputError(
                "interval_s", self.interval_s, "must divide a day, from 60 s to 86400 s"
            )


@dataclass(frozen=True, slots=True)
class Revision:
    """One version of a raw reading: revision 0 is what arrived first."""

    revision: int
    value: float
    status: int
    received_at: datetime
    superseded_at: datetime | None


@dataclass(frozen=True, slots=True)
class ValidatedVersion:
    """One version of a validated interval, oldest first."""

    version: int
    value: float | None
    quality: Quality
    method: Method
    checks: int
    actor: str
    validated_at: datetime
    superseded_at: datetime | None


@dataclass(frozen=True, slots=True)
class ValidatedWrite:
    """What a write of validated intervals did."""

    inserted: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class ValidatedColumns:
    """Validated intervals as numpy columns, by store ids (what VEE writes in bulk).

    ``quality`` holds NEM12 code points (``ord("A")``...), ``value`` NaN for null.
    """

    meter_id: I64
    channel_id: I64
    interval_end: I64  # POSIX seconds
    value: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint8]
    method: npt.NDArray[np.integer[Any]]
    checks: npt.NDArray[np.integer[Any]]

    def __len__(self) -> int:
        return int(self.meter_id.size)

    @staticmethod
    def concat(parts: Sequence[ValidatedColumns]) -> ValidatedColumns | None:
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return ValidatedColumns(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in _VALIDATED_FIELDS)
        )

    def as_mapping(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _VALIDATED_FIELDS}


_VALIDATED_FIELDS = (
    "meter_id",
    "channel_id",
    "interval_end",
    "value",
    "quality",
    "method",
    "checks",
)
_QUALITY_CODES = frozenset(ord(q.value) for q in Quality)


def epoch_s(value: datetime, field: str) -> int:
    return int(ensure_utc(value, field).timestamp())


def from_epoch_s(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ts(seconds: I64) -> pa.Array:
    return pa.array(seconds, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))


class IntervalStore(ABC):
    """Interval readings, register reads and events of many meters; see the module doc."""

    backend: str = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._meter_ids: dict[str, int] = {}
        self._meter_names: dict[int, str] = {}
        self._channel_ids: dict[str, int] = {}
        self._channel_names: dict[int, str] = {}

    # -- registries -------------------------------------------------------------------

    @abstractmethod
    def _load_registries(self) -> None:
        """Refresh the meter and channel id caches from the database."""

    @abstractmethod
    def _insert_meters(self, registrations: Sequence[MeterRegistration]) -> None:
        """Insert or update meter registrations."""

    @abstractmethod
    def _insert_channels(self, obis: Sequence[str]) -> None:
        """Give new channels their ids."""

    @abstractmethod
    def meters(self) -> list[MeterRegistration]:
        """Every registered meter, by id."""

    def register_meters(self, registrations: Iterable[MeterRegistration]) -> None:
        """Register meters (or update their registration); readings for them are accepted."""
        regs = list(registrations)
        if not regs:
            return
        with self._lock:
            self._insert_meters(regs)
            self._load_registries()

    def meter_ids(self, names: Sequence[str]) -> dict[str, int]:
        """Ids of the registered meters among ``names`` (unknown names are left out)."""
        missing = [name for name in names if name not in self._meter_ids]
        if missing:
            self._load_registries()
        return {name: self._meter_ids[name] for name in names if name in self._meter_ids}

    def meter_name(self, meter_id: int) -> str:
        if meter_id not in self._meter_names:
            self._load_registries()
        return self._meter_names[meter_id]

    def channel_ids(self, obis: Sequence[str], create: bool = True) -> dict[str, int]:
        """Ids of valid OBIS channels among ``obis``; new ones get an id when ``create``."""
        canonical = valid_obis(list(obis))
        unknown = sorted({code for code in canonical.values() if code not in self._channel_ids})
        if unknown:
            self._load_registries()
            unknown = [code for code in unknown if code not in self._channel_ids]
            if unknown and create:
                with self._lock:
                    self._insert_channels(unknown)
                    self._load_registries()
        return {
            given: self._channel_ids[code]
            for given, code in canonical.items()
            if code in self._channel_ids
        }

    def channel_name(self, channel_id: int) -> str:
        if channel_id not in self._channel_names:
            self._load_registries()
        return self._channel_names[channel_id]

    def _names(self, ids: I64, table: dict[int, str], loader: Any) -> pa.Array:
        unique, inverse = np.unique(ids, return_inverse=True)
        names = []
        for key in unique.tolist():
            if key not in table:
                loader()
            names.append(table[key])
        return pa.DictionaryArray.from_arrays(
            pa.array(inverse.astype(np.int32)), pa.array(names, pa.string())
        ).cast(pa.string())

    # -- ingest -------------------------------------------------------------------------

    def prepare_intervals(self, batch: pa.Table) -> tuple[IntervalRows, Rejections, int]:
        """Check a batch of :data:`INTERVAL_SCHEMA` (plus an optional ``duration_s``).

        Returns the acceptable rows, sorted and de-duplicated within the batch, the
        rejected rows and the number of in-batch duplicates.
        """
        batch = require_columns(batch, INTERVAL_SCHEMA, "intervals")
        rejections = Rejections()
        n = batch.num_rows
        meter_id, _ = lookup_strings(batch.column("meter"), self.meter_ids)
        channel_id, bad_channels = lookup_strings(batch.column("channel"), self.channel_ids)
        value = floats(batch.column("value"))
        status = ints(batch.column("status"), np.int64).astype(np.int64, copy=False)
        end = timestamps_s(batch.column("interval_end"))
        duration: I64 | None = None
        if "duration_s" in batch.column_names:
            duration = np.where(
                null_rows(batch, ("duration_s",)), -1, ints(batch.column("duration_s"), np.int64)
            ).astype(np.int64)
        finite = np.isfinite(value)
        ok = (meter_id >= 0) & (channel_id >= 0) & finite
        nulls = null_rows(batch, ("meter", "channel", "interval_end", "value", "status"))
        ok &= ~nulls
        if ok.all():
            source = np.arange(n, dtype=np.int64)
        else:
            # Rare: name each refused row with the first reason that applies to it.
            everything = np.arange(n, dtype=np.int64)
            rejections.add(everything[nulls], "a required field is null")
            left = ~nulls
            self._reject_unknown_meters(batch, everything, left & (meter_id < 0), rejections)
            left &= meter_id >= 0
            bad = left & (channel_id < 0)
            if bad.any():
                rejections.add(
                    everything[bad],
                    f"channel is not an OBIS code ({', '.join(map(repr, bad_channels[:3]))})",
                )
            left &= channel_id >= 0
            rejections.add(everything[left & ~finite], "value is not finite")
            source = np.flatnonzero(ok)
            meter_id, channel_id, end = meter_id[source], channel_id[source], end[source]
            value, status = value[source], status[source]
            duration = None if duration is None else duration[source]
        rows = IntervalRows(
            meter_id, channel_id, end, value, status, duration, source,
            np.zeros(source.size, dtype=np.int64),
        )  # fmt: skip
        rows, repeats = sort_and_dedupe(rows)
        return rows, rejections, repeats

    @abstractmethod
    def ingest_intervals(self, batch: pa.Table) -> IngestResult:
        """Write interval readings (:data:`INTERVAL_SCHEMA`), idempotently."""

    @abstractmethod
    def ingest_registers(self, batch: pa.Table) -> IngestResult:
        """Write register reads (:data:`REGISTER_SCHEMA`), idempotently."""

    @abstractmethod
    def ingest_events(self, batch: pa.Table) -> IngestResult:
        """Write event-log entries (:data:`EVENT_SCHEMA`), idempotently."""

    def prepare_registers(self, batch: pa.Table) -> tuple[pa.Table, Rejections]:
        """Check a register batch; the accepted rows with ``meter_id`` and canonical ``obis``."""
        batch = require_columns(batch, REGISTER_SCHEMA, "registers")
        rejections = Rejections()
        source = np.arange(batch.num_rows, dtype=np.int64)
        nulls = null_rows(batch, ("meter", "obis", "read_at", "value"))
        rejections.add(source[nulls], "a required field is null")
        meter_id, _ = lookup_strings(batch.column("meter"), self.meter_ids)
        obis_values = batch.column("obis").to_pylist()
        canonical = valid_obis([v for v in set(obis_values) if v is not None])
        value = floats(batch.column("value"))
        ok = ~nulls
        self._reject_unknown_meters(batch, source, ok & (meter_id < 0), rejections)
        ok &= meter_id >= 0
        bad_obis = np.array([v not in canonical for v in obis_values], dtype=bool)
        rejections.add(source[ok & bad_obis], "obis is not an OBIS code")
        ok &= ~bad_obis
        rejections.add(source[ok & ~np.isfinite(value)], "value is not finite")
        ok &= np.isfinite(value)
        keep = source[ok]
        table = pa.table(
            {
                "meter_id": pa.array(meter_id[keep], pa.int32()),
                "obis": pa.array([canonical[obis_values[i]] for i in keep.tolist()], pa.string()),
                "read_at": batch.column("read_at")
                .take(pa.array(keep))
                .cast(pa.timestamp("us", tz="UTC")),
                "value": pa.array(value[keep], pa.float64()),
            }
        )
        return table, rejections

    def prepare_events(self, batch: pa.Table) -> tuple[pa.Table, Rejections]:
        """Check an event batch; the accepted rows with ``meter_id``."""
        batch = require_columns(batch, EVENT_SCHEMA, "events")
        rejections = Rejections()
        source = np.arange(batch.num_rows, dtype=np.int64)
        nulls = null_rows(batch, ("meter", "log", "seq", "at", "code", "detail"))
        rejections.add(source[nulls], "a required field is null")
        meter_id, _ = lookup_strings(batch.column("meter"), self.meter_ids)
        ok = ~nulls
        self._reject_unknown_meters(batch, source, ok & (meter_id < 0), rejections)
        ok &= meter_id >= 0
        keep = pa.array(source[ok])
        table = pa.table(
            {
                "meter_id": pa.array(meter_id[source[ok]], pa.int32()),
                "log": batch.column("log").take(keep),
                "seq": batch.column("seq").take(keep),
                "event_at": batch.column("at").take(keep).cast(pa.timestamp("us", tz="UTC")),
                "code": batch.column("code").take(keep),
                "detail": batch.column("detail").take(keep),
            }
        )
        return table, rejections

    @staticmethod
    def _reject_unknown_meters(
        batch: pa.Table, source: I64, bad: np.ndarray, rejections: Rejections
    ) -> None:
        if not bad.any():
            return
        names = batch.column("meter").take(pa.array(source[bad])).to_pylist()
        names_arr = np.array(names, dtype=object)
        for name in sorted(set(names)):
            rejections.add(source[bad][names_arr == name], f"unknown meter {name!r}")

    # -- reads ---------------------------------------------------------------------------

    @abstractmethod
    def fetch_intervals(
        self, start_s: int, end_s: int, meter_ids: I64 | None, channel_ids: Sequence[int] | None
    ) -> dict[str, np.ndarray]:
        """Raw current rows with ``start_s < interval_end <= end_s`` as numpy columns:
        meter_id, channel_id, interval_end, value, status, revision, received_at (POSIX s),
        duration_s (-1 for the meter's own length)."""

    @abstractmethod
    def fetch_validated(
        self,
        start_s: int,
        end_s: int,
        meter_ids: I64 | None,
        channel_ids: Sequence[int] | None,
        *,
        method: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Validated rows in ``(start_s, end_s]`` (made by ``method`` only, if given):
        meter_id, channel_id, interval_end, value (NaN for null), quality (uint8 code
        point), method, checks, version, validated_at."""

    def _ids_filter(
        self, meters: Sequence[str] | None, channels: Sequence[str] | None
    ) -> tuple[I64 | None, list[int] | None]:
        meter_ids = None
        if meters is not None:
            meter_ids = np.array(sorted(self.meter_ids(list(meters)).values()), dtype=np.int64)
        channel_ids = None
        if channels is not None:
            channel_ids = sorted(self.channel_ids(list(channels), create=False).values())
        return meter_ids, channel_ids

    def read_intervals(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
    ) -> pa.Table:
        """Raw readings with ``start < interval_end <= end``, sorted by meter, channel, end."""
        meter_ids, channel_ids = self._ids_filter(meters, channels)
        rows = self.fetch_intervals(
            epoch_s(start, "start"), epoch_s(end, "end"), meter_ids, channel_ids
        )
        order = np.lexsort((rows["interval_end"], rows["channel_id"], rows["meter_id"]))
        rows = {key: column[order] for key, column in rows.items()}
        duration = rows["duration_s"]
        return pa.table(
            {
                "meter": self._names(rows["meter_id"], self._meter_names, self._load_registries),
                "channel": self._names(
                    rows["channel_id"], self._channel_names, self._load_registries
                ),
                "interval_end": _ts(rows["interval_end"]),
                "value": pa.array(rows["value"], pa.float64()),
                "status": pa.array(rows["status"].astype(np.int32), pa.int32()),
                "revision": pa.array(rows["revision"].astype(np.int32), pa.int32()),
                "received_at": _ts(rows["received_at"]),
                "duration_s": pa.array(duration.astype(np.int64), pa.int64(), mask=duration < 0),
            }
        )

    def read_validated(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
    ) -> pa.Table:
        """Validated intervals with ``start < interval_end <= end``, sorted by key."""
        meter_ids, channel_ids = self._ids_filter(meters, channels)
        rows = self.fetch_validated(
            epoch_s(start, "start"), epoch_s(end, "end"), meter_ids, channel_ids
        )
        order = np.lexsort((rows["interval_end"], rows["channel_id"], rows["meter_id"]))
        rows = {key: column[order] for key, column in rows.items()}
        value = rows["value"]
        return pa.table(
            {
                "meter": self._names(rows["meter_id"], self._meter_names, self._load_registries),
                "channel": self._names(
                    rows["channel_id"], self._channel_names, self._load_registries
                ),
                "interval_end": _ts(rows["interval_end"]),
                "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
                "quality": pa.array([chr(c) for c in rows["quality"].tolist()], pa.string()),
                "method": pa.array(rows["method"].astype(np.int8), pa.int8()),
                "checks": pa.array(rows["checks"].astype(np.int32), pa.int32()),
                "version": pa.array(rows["version"].astype(np.int32), pa.int32()),
                "validated_at": _ts(rows["validated_at"]),
            }
        )

    @abstractmethod
    def read_registers(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        obis: Sequence[str] | None = None,
    ) -> pa.Table:
        """Register reads with ``start <= read_at <= end``.

        Columns: meter, obis, read_at, value, revision.
        """

    @abstractmethod
    def read_events(
        self,
        start: datetime,
        end: datetime,
        meters: Sequence[str] | None = None,
        codes: Sequence[int] | None = None,
    ) -> pa.Table:
        """Event-log entries with ``start <= at <= end``: meter, log, seq, at, code, detail."""

    @abstractmethod
    def revisions(self, meter: str, channel: str, interval_end: datetime) -> list[Revision]:
        """Every version of one raw reading, oldest first (empty if there is none)."""

    @abstractmethod
    def validated_history(
        self, meter: str, channel: str, interval_end: datetime
    ) -> list[ValidatedVersion]:
        """Every version of one validated interval, oldest first."""

    @abstractmethod
    def received_between(
        self, since: datetime, until: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """The span of ``interval_end`` of raw rows received in ``[since, until)``, or None."""

    @abstractmethod
    def database_now(self) -> datetime:
        """The database's clock (it stamps ``received_at`` and ``validated_at``)."""

    # -- validated writes -------------------------------------------------------------

    def write_validated(self, table: pa.Table, actor: str) -> ValidatedWrite:
        """Write validated intervals (:data:`VALIDATED_SCHEMA`). An identical row is left
        alone; a different one becomes the new version and the old one goes to history."""
        table = require_columns(table, VALIDATED_SCHEMA, "validated")
        if table.num_rows == 0:
            return ValidatedWrite()
        meter_id, unknown = lookup_strings(table.column("meter"), self.meter_ids)
        if unknown:
            raise InvalidInputError("validated.meter", unknown[0], "unknown meter")
        channel_id, bad = lookup_strings(table.column("channel"), self.channel_ids)
        if bad:
            raise InvalidInputError("validated.channel", bad[0], "not an OBIS code")
        quality_column = table.column("quality")
        encoded = pc.dictionary_encode(
            quality_column.combine_chunks()
            if quality_column.num_chunks != 1
            else quality_column.chunk(0)
        )
        if encoded.null_count:
            raise InvalidInputError("validated.quality", None, "every row needs a quality")
        allowed = {q.value for q in Quality}
        codes = []
        for q in encoded.dictionary.to_pylist():
            if q not in allowed:
                raise InvalidInputError("validated.quality", q, f"must be one of {sorted(allowed)}")
            codes.append(ord(q))
        quality = np.array(codes, dtype=np.uint8)[encoded.indices.to_numpy()]
        end = timestamps_s(table.column("interval_end"))
        key = np.lexsort((end, channel_key(meter_id, channel_id)))
        sorted_key = channel_key(meter_id, channel_id)[key]
        repeated = (sorted_key[1:] == sorted_key[:-1]) & (end[key][1:] == end[key][:-1])
        if repeated.any():
            raise InvalidInputError("validated", "duplicate keys", "each interval once per write")
        rows = ValidatedColumns(
            meter_id=meter_id,
            channel_id=channel_id,
            interval_end=end,
            value=floats(table.column("value")),
            quality=quality,
            method=ints(table.column("method"), np.int64),
            checks=ints(table.column("checks"), np.int64),
        )
        with self._lock:
            return self._write_validated(rows.as_mapping(), actor)

    def write_validated_columns(self, columns: ValidatedColumns, actor: str) -> ValidatedWrite:
        """Write validated intervals given by store ids (VEE's bulk path; see
        :meth:`write_validated`). Each key must come once; the ids must be registered.

        Raises
        ------
        InvalidInputError
            A quality code point that is not a NEM12 flag.
        """
        if len(columns) == 0:
            return ValidatedWrite()
        present = np.unique(columns.quality)
        bad = [int(c) for c in present.tolist() if c not in _QUALITY_CODES]
        if bad:
            raise InvalidInputError("validated.quality", chr(bad[0]), "not a NEM12 quality flag")
        with self._lock:
            return self._write_validated(columns.as_mapping(), actor)

    @abstractmethod
    def _write_validated(self, rows: Mapping[str, np.ndarray], actor: str) -> ValidatedWrite: ...

    # -- archive -------------------------------------------------------------------------

    def export_month(
        self, year: int, month: int, directory: Path, as_of: datetime, grace_days: int = 7
    ) -> list[Path]:
        """Write a closed month's raw and validated intervals to Parquet files.

        A month is closed ``grace_days`` after its last day (late reads come in before).
        Files: ``directory/intervals/year=YYYY/month=MM/{raw,validated}.parquet``.

        Raises
        ------
        MonthNotClosedError
            The month is not closed at ``as_of``.
        """
        if not 1 <= month <= 12:
            raise InvalidInputError("month", month, "must be 1-12")
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        closes = end.timestamp() + grace_days * 86400
        if ensure_utc(as_of, "as_of").timestamp() < closes:
            raise MonthNotClosedError(
                f"export {year:04d}-{month:02d}",
                f"the month closes at {from_epoch_s(closes).isoformat()}",
            )
        folder = Path(directory) / "intervals" / f"year={year:04d}" / f"month={month:02d}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = []
            for name, table in (
                ("raw", self.read_intervals(start, end)),
                ("validated", self.read_validated(start, end)),
            ):
                path = folder / f"{name}.parquet"
                partial = path.with_suffix(".parquet.partial")
                pq.write_table(table, partial, compression="zstd")
                partial.replace(path)
                written.append(path)
        except OSError as exc:
            raise StoreError(f"cannot write the archive under {folder}: {exc}") from exc
        return written

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> IntervalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
