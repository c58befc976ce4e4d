"""Missing-read recovery: the gaps in each meter's load profile, as spans to read again.

The head-end turns each span into an on-demand read of the meter's load profile (selective
access by range). A span older than the meter's profile capacity cannot be recovered: the
meter has overwritten it; it is listed with ``recoverable`` false, for estimation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa

from meterstack.core.time import ensure_utc
from meterstack.mdm.channels import A_PLUS
from meterstack.mdm.intervals.base import IntervalStore

GAP_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("first_end", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("last_end", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("missing", pa.int64(), nullable=False),
        pa.field("recoverable", pa.bool_(), nullable=False),
    ]
)


def missing_reads(
    store: IntervalStore,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime,
    meters: Sequence[str] | None = None,
    channel: str = A_PLUS.obis,
) -> pa.Table:
    """Spans of missing intervals in ``(start, end]`` per meter (:data:`GAP_SCHEMA`).

    A span is the run of consecutive missing interval ends ``first_end .. last_end``.
    """
    start, end, as_of = (
        ensure_utc(start, "start"),
        ensure_utc(end, "end"),
        ensure_utc(as_of, "as_of"),
    )
    regs = [
        r
        for r in store.meters()
        if r.interval_s is not None and (meters is None or r.meter in meters)
    ]
    out: dict[str, list[object]] = {name: [] for name in GAP_SCHEMA.names}
    channel_id = store.channel_ids([channel]).get(channel)
    by_length: dict[int, list[str]] = {}
    for reg in regs:
        assert reg.interval_s is not None
        by_length.setdefault(reg.interval_s, []).append(reg.meter)
    capacity = {r.meter: r.profile_capacity_days for r in regs}
    for interval_s, names in sorted(by_length.items()):
        lo = -(-int(start.timestamp()) // interval_s) * interval_s
        hi = int(end.timestamp()) // interval_s * interval_s
        if hi < lo or channel_id is None:
            continue
        if hi == lo and lo == int(start.timestamp()):
            continue
        first = lo if lo > int(start.timestamp()) else lo + interval_s
        t = (hi - first) // interval_s + 1
        if t <= 0:
            continue
        ids = store.meter_ids(names)
        id_array = np.array([ids[n] for n in names], dtype=np.int64)
        rows = store.fetch_intervals(first - interval_s, hi, id_array, [channel_id])
        present = np.zeros((len(names), t), dtype=bool)
        order = np.argsort(id_array)
        row = order[np.clip(np.searchsorted(id_array[order], rows["meter_id"]), 0, len(names) - 1)]
        rel = rows["interval_end"] - first
        on = (rel % interval_s == 0) & (rel >= 0) & (rel // interval_s < t)
        present[row[on], rel[on] // interval_s] = True
        missing = ~present
        padded = np.zeros((len(names), t + 2), dtype=np.int8)
        padded[:, 1:-1] = missing
        step = np.diff(padded, axis=1)
        for m_row, c in zip(*np.nonzero(step == 1), strict=True):
            stop = int(np.argmax(step[m_row, c:] == -1)) + c
            name = names[m_row]
            first_end = first + int(c) * interval_s
            last_end = first + (stop - 1) * interval_s
            out["meter"].append(name)
            out["channel"].append(channel)
            out["first_end"].append(first_end)
            out["last_end"].append(last_end)
            out["missing"].append(stop - int(c))
            out["recoverable"].append(
                first_end - interval_s >= int(as_of.timestamp()) - capacity[name] * 86400
            )
    return pa.table(
        {
            "meter": pa.array(out["meter"], pa.string()),
            "channel": pa.array(out["channel"], pa.string()),
            "first_end": pa.array(out["first_end"], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "last_end": pa.array(out["last_end"], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "missing": pa.array(out["missing"], pa.int64()),
            "recoverable": pa.array(out["recoverable"], pa.bool_()),
        },
        schema=GAP_SCHEMA,
    )
