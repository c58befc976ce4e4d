"""What the dashboard shows, computed from the stores: consumption series, habits, power
quality, the fleet at a glance.

Consumption is the A+ channel (``1.0.1.8.0.255``, Wh per interval). An interval belongs to
the local day (month) in which it starts, its end less the meter's capture period.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from meterstack.core.time import LocalDays, zone
from meterstack.mdm.intervals.base import IntervalStore

__all__ = [
    "A_PLUS",
    "PQ_EVENT_CODES",
    "VOLTAGE",
    "consumption_series",
    "daily_kwh",
    "habits",
    "power_quality",
]

A_PLUS = "1.0.1.8.0.255"
VOLTAGE = "1.0.12.27.0.255"
#: Voltage excursions (IDIS 76-87), overload (203/204), IEEE 519 warnings (240-245).
PQ_EVENT_CODES = (*range(76, 88), 203, 204, *range(240, 246))


def _columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = np.array(table.column("meter").to_pylist(), dtype=object)
    ends = table.column("interval_end").cast(pa.int64()).to_numpy()
    values = table.column("value").to_numpy(zero_copy_only=False)
    return names, ends, values


def _local_bins(
    starts: np.ndarray, first: datetime, last: datetime, timezone: str, unit: str
) -> tuple[list[str], np.ndarray]:
    """Labels of local days (or months) from ``first`` to ``last`` and each start's bin."""
    days = LocalDays(zone(timezone))
    day = days.local_date(first.timestamp())
    end_day = days.local_date(last.timestamp())
    labels: list[str] = []
    bounds: list[float] = []
    while day <= end_day:
        label = day.isoformat() if unit == "day" else day.isoformat()[:7]
        if not labels or labels[-1] != label:
            labels.append(label)
            bounds.append(days.day_start(day))
        day += timedelta(days=1)
    index = np.searchsorted(np.array(bounds), starts, side="right") - 1
    return labels, index


def consumption_series(  # noqa: PLR0917
    store: IntervalStore,
    meter: str,
    start: datetime,
    end: datetime,
    resolution: str,
    timezone: str,
    interval_s: int = 1800,
) -> list[dict[str, Any]]:
    """A+ consumption of ``meter`` in ``(start, end]``: each interval (``30min``), local day
    (``day``) or local month (``month``). [kWh]"""
    table = store.read_intervals(start, end, [meter], [A_PLUS])
    _, ends, values = _columns(table)
    kwh = values / 1000.0
    if resolution == "30min":
        return [
            {"interval_end": datetime.fromtimestamp(int(e), start.tzinfo).isoformat(), "kwh": v}
            for e, v in zip(ends.tolist(), np.round(kwh, 6).tolist(), strict=True)
        ]
    labels, index = _local_bins(ends - interval_s, start, end, timezone, resolution)
    keep = (index >= 0) & (index < len(labels))
    sums = np.bincount(index[keep], weights=kwh[keep], minlength=len(labels))
    counts = np.bincount(index[keep], minlength=len(labels))
    return [
        {"period": label, "kwh": round(float(total), 6), "intervals": int(count)}
        for label, total, count in zip(labels, sums.tolist(), counts.tolist(), strict=True)
    ]


def daily_kwh(
    store: IntervalStore,
    meters: list[str],
    start: datetime,
    end: datetime,
    interval_s: int = 1800,
) -> dict[str, float]:
    """Mean A+ per day of recorded time of each meter in ``(start, end]``: its energy over
    the days its intervals cover (0 for a meter without data). [kWh/day]"""
    if not meters:
        return {}
    table = store.read_intervals(start, end, meters, [A_PLUS])
    names, _, values = _columns(table)
    out = dict.fromkeys(meters, 0.0)
    if names.size:
        unique, inverse = np.unique(names, return_inverse=True)
        totals = np.bincount(inverse, weights=values)
        counts = np.bincount(inverse)
        for name, total, count in zip(
            unique.tolist(), totals.tolist(), counts.tolist(), strict=True
        ):
            out[name] = total / 1000.0 / (count * interval_s / 86400)
    return out


def habits(  # noqa: PLR0917
    store: IntervalStore,
    meter: str,
    start: datetime,
    end: datetime,
    timezone: str,
    peers: list[str],
    interval_s: int = 1800,
) -> dict[str, Any]:
    """A customer's habits: mean kWh in each local hour of the day, mean kWh on each
    weekday, and how the mean daily use compares with similar homes (``peers``). Means are
    over the time the meter recorded (missing intervals are not zeros)."""
    table = store.read_intervals(start, end, [meter], [A_PLUS])
    _, ends, values = _columns(table)
    kwh = values / 1000.0
    tz = zone(timezone)
    hours = np.zeros(24)
    hour_counts = np.zeros(24)
    weekday_totals = np.zeros(7)
    weekday_counts = np.zeros(7)
    weekday_days: list[set[str]] = [set() for _ in range(7)]
    for e, v in zip((ends - interval_s).tolist(), kwh.tolist(), strict=True):
        local = datetime.fromtimestamp(e, tz)
        hours[local.hour] += v
        hour_counts[local.hour] += 1
        weekday_totals[local.weekday()] += v
        weekday_counts[local.weekday()] += 1
        weekday_days[local.weekday()].add(local.date().isoformat())
    days_seen = len({d for s in weekday_days for d in s})
    hour_days = hour_counts * interval_s / 3600  # days on which each hour was recorded
    per_hour = [
        round(float(hours[h] / hour_days[h]), 6) if hour_counts[h] else 0.0 for h in range(24)
    ]
    weekday_days_recorded = weekday_counts * interval_s / 86400
    per_weekday = [
        round(float(weekday_totals[d] / weekday_days_recorded[d]), 6) if weekday_counts[d] else 0.0
        for d in range(7)
    ]
    own = float(kwh.sum()) / (kwh.size * interval_s / 86400) if kwh.size else 0.0
    peer_use = daily_kwh(store, peers, start, end, interval_s)
    peer_values = np.array(sorted(peer_use.values())) if peer_use else np.zeros(0)
    median = float(np.median(peer_values)) if peer_values.size else None
    percentile = (
        float((peer_values < own).sum() + 0.5 * (peer_values == own).sum()) / peer_values.size
        if peer_values.size
        else None
    )
    return {
        "meter": meter,
        "timezone": timezone,
        "days": days_seen,
        "kwh_per_day": round(own, 6),
        "by_hour_kwh": per_hour,
        "by_weekday_kwh": per_weekday,
        "peak_hour": int(np.argmax(per_hour)) if days_seen else None,
        "similar_homes": {
            "count": int(peer_values.size),
            "median_kwh_per_day": None if median is None else round(median, 6),
            "percentile": None if percentile is None else round(100 * percentile, 2),
            "ratio_to_median": None if not median else round(own / median, 6),
        },
    }


def power_quality(
    store: IntervalStore, meter: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Average voltage per interval and power-quality events of ``meter``."""
    table = store.read_intervals(start, end, [meter], [VOLTAGE])
    _, ends, values = _columns(table)
    events = store.read_events(start, end, [meter], list(PQ_EVENT_CODES))
    rows = events.to_pylist()
    return {
        "meter": meter,
        "voltage": [
            {"interval_end": datetime.fromtimestamp(int(e), start.tzinfo).isoformat(), "v": v}
            for e, v in zip(ends.tolist(), values.tolist(), strict=True)
        ],
        "voltage_summary": {
            "min": float(values.min()) if values.size else None,
            "max": float(values.max()) if values.size else None,
            "mean": round(float(values.mean()), 3) if values.size else None,
        },
        "events": [
            {
                "at": row["at"].isoformat(),
                "code": row["code"],
                "log": row["log"],
                "detail": row["detail"],
            }
            for row in rows
        ],
        "events_by_code": dict(Counter(str(row["code"]) for row in rows)),
    }
