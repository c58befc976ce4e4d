"""The ingest contract between the head-end and meter data management.

The head-end decodes what meters send and hands it to a :class:`MeterDataSink` in columnar
batches (Apache Arrow tables with the schemas below), so a store can load them in bulk
(DuckDB from Arrow, PostgreSQL with COPY) rather than row by row.

Every write is idempotent on its natural key:

* interval readings on ``(meter, channel, interval_end)``: the same value again is a
  duplicate and is ignored; a different value is kept as a revision, never overwriting;
* register readings on ``(meter, obis, read_at)``;
* events on ``(meter, log, seq)``: a meter numbers each log's entries without gaps.

A row that cannot be accepted (unknown meter, a value that is not finite) is rejected with
its reason and the rest of the batch is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

#: One interval of one channel. ``channel`` is the OBIS code of the captured quantity
#: (``1.0.1.8.0.255`` for A+ energy, ``1.0.12.27.0.255`` for average voltage...);
#: ``value`` is in the channel's unit (Wh, varh, V, W); ``status`` is the meter's
#: load-profile status word for the interval.
INTERVAL_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("interval_end", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("status", pa.int32(), nullable=False),
    ]
)

#: One register read: cumulative energy (Wh, varh), demand (W) or any register by OBIS code.
REGISTER_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.string(), nullable=False),
        pa.field("obis", pa.string(), nullable=False),
        pa.field("read_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)

#: One event-log entry, as numbered by the meter (``seq`` has no gaps within a log).
EVENT_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.string(), nullable=False),
        pa.field("log", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("code", pa.int32(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not accepted, and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class IngestResult:
    """What one ingest call did with its batch."""

    inserted: int = 0
    duplicates: int = 0
    revisions: int = 0
    rejected: tuple[RejectedRow, ...] = field(default_factory=tuple)

    @property
    def accepted(self) -> int:
        return self.inserted + self.revisions


class MeterDataSink(Protocol):
    """Where the head-end writes what meters send. Implemented by the MDM stores."""

    def ingest_intervals(self, batch: pa.Table) -> IngestResult:
        """Write interval readings (:data:`INTERVAL_SCHEMA`), idempotently."""
        ...

    def ingest_registers(self, batch: pa.Table) -> IngestResult:
        """Write register readings (:data:`REGISTER_SCHEMA`), idempotently."""
        ...

    def ingest_events(self, batch: pa.Table) -> IngestResult:
        """Write event-log entries (:data:`EVENT_SCHEMA`), idempotently."""
        ...
