"""The analytics' input arrays, assembled from the meter data stores.

Reads only through the store objects it is handed: an
:class:`~meterstack.mdm.intervals.base.IntervalStore` (interval readings and the meters'
event logs) and, optionally, the operational database's engine (its ``alarms`` table).

* **Energy and voltage** per meter and interval of the period ``(start, end]`` (intervals are
  labelled by their end): A+ ``1.0.1.8.0.255`` (import) and A- ``1.0.2.8.0.255`` (export)
  in Wh, average voltage ``1.0.12.27.0.255`` in V. A validated value (VEE or an edit)
  replaces the raw reading of its interval; a missing one is NaN.
* **Check meters** are the store's meters whose serials the network model names as
  transformers' check meters; their energy is A+ less A- (the net delivered into the LV
  network; A- missing counts as none).
* **Power events**: IDIS power-failure log codes 1 (power down, the last gasp) and 2
  (power up, the restore), from the event logs and from the alarms table. An event the
  head-end both logged and raised as an alarm counts once (same meter, code and time to the
  millisecond).
* **Fraud events**: counts per meter of the IDIS fraud-detection codes that start a
  condition (see :data:`FRAUD_CODES`), from the same two sources.
* **Last heard**: the latest interval end read from each meter, or the latest event it
  logged, whichever is later; NaN if neither.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterstack.analytics.network import NetworkModel
from meterstack.analytics.outages import PowerEventKind, PowerEvents
from meterstack.analytics.run import GridReport, analyse
from meterstack.core.errors import InvalidInputError
from meterstack.core.time import ensure_utc
from meterstack.mdm import channels
from meterstack.mdm.operational.models import Alarm
from meterstack.meter.events import EventCode

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from meterstack.mdm.intervals.base import IntervalStore

__all__ = ["FRAUD_CODES", "GridInputs", "assemble"]

A_PLUS = channels.A_PLUS.obis
A_MINUS = channels.A_MINUS.obis
AVERAGE_VOLTAGE = channels.AVERAGE_VOLTAGE.obis
#: IDIS power-failure log: power down (the last gasp) and power up (the restore).
POWER_CODES = {
    int(EventCode.POWER_DOWN): PowerEventKind.LAST_GASP,
    int(EventCode.POWER_UP): PowerEventKind.RESTORE,
}
#: IDIS fraud-detection codes (and meterstack's 205) that start a condition, by the kind
#: :func:`~meterstack.analytics.detect_theft` counts them as.
FRAUD_CODES: dict[int, str] = {
    int(EventCode.TERMINAL_COVER_REMOVED): "terminal_cover",
    int(EventCode.METER_COVER_REMOVED): "meter_cover",
    int(EventCode.STRONG_DC_FIELD_DETECTED): "magnet",
    int(EventCode.MISSING_NEUTRAL): "neutral_missing",
    int(EventCode.CURRENT_REVERSAL): "reverse_current",
    int(EventCode.CURRENT_WITH_RELAY_OPEN): "current_with_relay_open",
}

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass
class GridInputs:
    """What :func:`~meterstack.analytics.run.analyse` reads, for one period."""

    network: NetworkModel
    interval_s: int
    start: float  # [s since the epoch]
    end: float  # [s] the period's end, the analysis's as_of
    customer_wh: Float32Array
    export_wh: Float32Array
    check_wh: Float32Array
    voltage_v: Float32Array
    power_events: PowerEvents
    last_heard: FloatArray
    fraud_events: dict[str, npt.NDArray[np.int64]]
    #: Network meters (customers and check meters) the interval store does not know.
    unknown_meters: list[str] = field(default_factory=list)

    def analyse(self) -> GridReport:
        report = analyse(
            self.network,
            interval_s=self.interval_s,
            customer_wh=self.customer_wh,
            export_wh=self.export_wh,
            check_wh=self.check_wh,
            voltage_v=self.voltage_v,
            power_events=self.power_events,
            last_heard=self.last_heard,
            as_of=self.end,
            fraud_events=self.fraud_events,
            start=self.start,
        )
        if self.unknown_meters:
            shown = ", ".join(self.unknown_meters[:5])
            more = len(self.unknown_meters) - 5
            report.notes.append(
                f"{len(self.unknown_meters)} meter(s) of the network are not in the meter data"
                f" store: {shown}{f' and {more} more' if more > 0 else ''}"
            )
        return report


def _interval_of(store: IntervalStore, serials: list[str]) -> int:
    known = {r.meter: r.interval_s for r in store.meters()}
    counts = Counter(i for s in serials if (i := known.get(s)) is not None)
    return counts.most_common(1)[0][0] if counts else 1800


def assemble(
    network: NetworkModel,
    store: IntervalStore,
    engine: Engine | None,
    *,
    start: datetime,
    end: datetime,
    interval_s: int | None = None,
    chunk_meters: int = 2000,
) -> GridInputs:
    """Read the period ``(start, end]`` for every meter of ``network``.

    Parameters
    ----------
    store : IntervalStore
        Interval readings and event logs.
    engine : Engine, optional
        The operational database, for its alarms; None reads the event logs only.
    start, end : datetime
        Aware datetimes; ``start`` is rounded down and ``end`` up to the interval grid.
    interval_s : int, optional
        The capture period; by default the one most of the network's meters are
        registered with (1800 s if none is). [s]
    chunk_meters : int
        Meters read per query (bounds the memory the fetched rows take).

    Raises
    ------
    InvalidInputError
        A naive time, ``end`` not after ``start``, an interval that does not divide a day.
    """
    start_s = ensure_utc(start, "start").timestamp()
    end_s = ensure_utc(end, "end").timestamp()
    if not end_s > start_s:
        raise InvalidInputError("end", end.isoformat(), f"must be after start {start.isoformat()}")
    check_serials = [c for c in network.check_meters if c is not None]
    everyone = list(network.meters) + check_serials
    step = interval_s or _interval_of(store, list(network.meters))
    if step <= 0 or 86400 % step:
        raise InvalidInputError("interval_s", step, "must divide a day")
    first = int(np.floor(start_s / step)) * step
    last = int(np.ceil(end_s / step)) * step
    n_int = (last - first) // step
    if network.n_meters * n_int > 2_000_000_000:
        raise InvalidInputError("end", end.isoformat(), "the period is too long for the fleet")
    if chunk_meters < 1:
        raise InvalidInputError("chunk_meters", chunk_meters, "must be at least 1")

    ids = store.meter_ids(everyone)
    unknown = [serial for serial in everyone if serial not in ids]
    # Store id -> row: customers 0..n-1, check meters after them.
    row_of_id = np.full(max(ids.values(), default=0) + 1, -1, dtype=np.int64)
    for row, serial in enumerate(everyone):
        if serial in ids:
            row_of_id[ids[serial]] = row
    channel_ids = store.channel_ids([A_PLUS, A_MINUS, AVERAGE_VOLTAGE], create=False)
    n_rows = len(everyone)
    grids = {
        code: np.full((n_rows, n_int), np.nan, dtype=np.float32)
        for code in (A_PLUS, A_MINUS, AVERAGE_VOLTAGE)
    }
    last_heard = np.full(n_rows, np.nan)
    meter_ids = np.array(sorted(ids.values()), dtype=np.int64)
    wanted = sorted(channel_ids.values())
    # A slice of meters at a time: the rows fetched are several times the arrays' size.
    for lo in range(0, meter_ids.size, chunk_meters):
        some = meter_ids[lo : lo + chunk_meters]
        raw = store.fetch_intervals(first, last, some, None)
        _heard(raw, row_of_id, last_heard)
        validated = store.fetch_validated(first, last, some, wanted) if wanted else None
        for columns in (raw, validated):
            if columns is None:
                continue
            for code, channel_id in channel_ids.items():
                _place(columns, channel_id, row_of_id, first=first, step=step, grid=grids[code])
        del raw, validated

    n = network.n_meters
    customer_wh, export_wh = grids[A_PLUS][:n], grids[A_MINUS][:n]
    voltage_v = grids[AVERAGE_VOLTAGE][:n]
    check_wh = np.full((network.n_transformers, n_int), np.nan, dtype=np.float32)
    for k, t in enumerate(t for t, c in enumerate(network.check_meters) if c is not None):
        row = n + k
        check_wh[t] = grids[A_PLUS][row] - np.nan_to_num(grids[A_MINUS][row], nan=0.0)

    power, fraud, heard = _events(network, store, engine, first, last)
    if heard.size:
        last_heard[:n] = np.fmax(last_heard[:n], heard)
    return GridInputs(
        network=network,
        interval_s=step,
        start=float(first),
        end=float(last),
        customer_wh=customer_wh,
        export_wh=export_wh,
        check_wh=check_wh,
        voltage_v=voltage_v,
        power_events=power,
        last_heard=last_heard[:n],
        fraud_events=fraud,
        unknown_meters=unknown,
    )


def _heard(columns: dict[str, np.ndarray], row_of_id: np.ndarray, out: FloatArray) -> None:
    """The latest interval end per row."""
    if not columns["meter_id"].size:
        return
    rows = row_of_id[columns["meter_id"].astype(np.int64)]
    ok = rows >= 0
    np.fmax.at(out, rows[ok], columns["interval_end"][ok].astype(np.float64))


def _place(
    columns: dict[str, np.ndarray],
    channel_id: int,
    row_of_id: np.ndarray,
    *,
    first: int,
    step: int,
    grid: Float32Array,
) -> None:
    """Write one channel's values into ``grid``; later calls overwrite earlier ones."""
    mask = columns["channel_id"] == channel_id
    if not mask.any():
        return
    rows = row_of_id[columns["meter_id"][mask].astype(np.int64)]
    offset = columns["interval_end"][mask].astype(np.int64) - first
    value = columns["value"][mask].astype(np.float64)
    ok = (rows >= 0) & (offset % step == 0) & (offset > 0) & np.isfinite(value)
    column = offset[ok] // step - 1
    inside = column < grid.shape[1]
    grid[rows[ok][inside], column[inside]] = value[ok][inside]


def _events(
    network: NetworkModel,
    store: IntervalStore,
    engine: Engine | None,
    first: int,
    last: int,
) -> tuple[PowerEvents, dict[str, npt.NDArray[np.int64]], FloatArray]:
    """Power and fraud events of the network's customers, and the latest event time of each."""
    codes = sorted({*POWER_CODES, *FRAUD_CODES})
    lo, hi = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)
    table = store.read_events(lo, hi, list(network.meters), codes)
    records: set[tuple[str, int, int]] = set()  # (meter, code, ms)
    if table.num_rows:
        at_us = table.column("at").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        at_ms = np.round(at_us.to_numpy() / 1000.0).astype(np.int64)
        for meter, code, ms in zip(
            table.column("meter").to_pylist(),
            table.column("code").to_pylist(),
            at_ms.tolist(),
            strict=True,
        ):
            records.add((meter, int(code), int(ms)))
    if engine is not None:
        records |= _alarms(engine, network, codes, lo, hi)
    index = {serial: i for i, serial in enumerate(network.meters)}
    heard = np.full(network.n_meters, np.nan)
    fraud = {kind: np.zeros(network.n_meters, dtype=np.int64) for kind in FRAUD_CODES.values()}
    meters: list[int] = []
    times: list[float] = []
    kinds: list[int] = []
    for serial, code, ms in sorted(records):
        i = index.get(serial)
        if i is None:
            continue
        at = ms / 1000.0
        heard[i] = at if np.isnan(heard[i]) else max(heard[i], at)
        if code in POWER_CODES:
            meters.append(i)
            times.append(at)
            kinds.append(int(POWER_CODES[code]))
        else:
            fraud[FRAUD_CODES[code]][i] += 1
    events = PowerEvents(
        np.asarray(meters, dtype=np.int32),
        np.asarray(times, dtype=np.float64),
        np.asarray(kinds, dtype=np.int8),
    )
    return events, fraud, heard


def _alarms(
    engine: Engine, network: NetworkModel, codes: list[int], lo: datetime, hi: datetime
) -> set[tuple[str, int, int]]:
    wanted = set(network.meters)
    found: set[tuple[str, int, int]] = set()
    with Session(engine) as session:
        rows = session.execute(
            select(Alarm.meter_id, Alarm.code, Alarm.raised_at).where(
                Alarm.code.in_(codes), Alarm.raised_at >= lo, Alarm.raised_at <= hi
            )
        )
        for meter, code, raised_at in rows:
            if meter in wanted:
                # SQLite hands back naive datetimes: the column holds UTC.
                if raised_at.tzinfo is None:
                    raised_at = raised_at.replace(tzinfo=UTC)
                at = raised_at.timestamp()
                found.add((meter, int(code), round(at * 1000)))
    return found
