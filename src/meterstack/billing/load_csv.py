"""Read interval data from CSV: ``timestamp,kwh[,kvarh]``, strictly.

Timestamps label the *end* of each interval (ISO 8601). With a UTC offset (``Z`` or
``+01:00``) they are exact; without one they are local times of ``timezone``, and a local
time that is ambiguous (the repeated hour when clocks go back) or does not exist (skipped
when clocks go forward) is refused. The step must be fixed, 5 to 60 minutes, dividing the
hour; a gap, a duplicate or a step change is refused with the line number.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from meterstack.core.time import zone
from meterstack.tariff.errors import LoadDataError

__all__ = ["IntervalSeries", "read_interval_csv"]


@dataclass(frozen=True)
class IntervalSeries:
    """Interval data of one meter: UTC ends, energy [kWh] and optional reactive [kvarh]."""

    interval_end: NDArray[np.datetime64]
    kwh: NDArray[np.float64]
    kvarh: NDArray[np.float64] | None
    step_min: int


def _parse_time(text: str, tz_name: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise LoadDataError(where, text, "not an ISO 8601 timestamp") from exc
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    tz = zone(tz_name)
    first = value.replace(tzinfo=tz, fold=0)
    second = value.replace(tzinfo=tz, fold=1)
    back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != value:
        raise LoadDataError(where, text, f"local time does not exist in {tz_name}")
    if first.utcoffset() != second.utcoffset():
        raise LoadDataError(where, text, f"ambiguous local time in {tz_name} (clocks go back)")
    return first.astimezone(UTC)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise LoadDataError(where, text, "not a number") from exc
    if not np.isfinite(value) or value < 0:
        raise LoadDataError(where, text, "must be finite and >= 0")
    return value


def read_interval_csv(path: str | Path, timezone: str = "UTC") -> IntervalSeries:
    """Read and check an interval CSV file.

    Raises
    ------
    LoadDataError
        Naming ``FILE:LINE`` and the column at fault.
    """
    p = Path(path)
    try:
        handle = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise LoadDataError(str(p), None, f"cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if (
            header[:2] != ["timestamp", "kwh"]
            or len(header) > 3
            or (len(header) == 3 and header[2] != "kvarh")
        ):
            raise LoadDataError(f"{p}:1", ",".join(header), "header must be timestamp,kwh[,kvarh]")
        times: list[datetime] = []
        kwh: list[float] = []
        kvarh: list[float] = []
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise LoadDataError(f"{p}:{line}", row, f"expected {len(header)} columns")
            times.append(_parse_time(row[0], timezone, f"{p}:{line}:timestamp"))
            kwh.append(_number(row[1], f"{p}:{line}:kwh"))
            if len(header) == 3:
                kvarh.append(_number(row[2], f"{p}:{line}:kvarh"))
    if len(times) < 2:
        raise LoadDataError(str(p), len(times), "need at least two intervals")
    step = times[1] - times[0]
    if step <= timedelta(0):
        why = "duplicate timestamp" if step == timedelta(0) else "timestamps go backwards"
        raise LoadDataError(f"{p}:3", times[1].isoformat(), why)
    step_min = step.total_seconds() / 60
    if step_min not in (5, 10, 15, 20, 30, 60):
        raise LoadDataError(f"{p}:3", f"{step_min} min", "step must be 5-60 min and divide an hour")
    for i in range(1, len(times)):
        delta = times[i] - times[i - 1]
        if delta == step:
            continue
        line = i + 2
        if delta == timedelta(0):
            why = "duplicate timestamp"
        elif delta < timedelta(0):
            why = "timestamps go backwards"
        elif delta % step == timedelta(0):
            why = f"gap: {int(delta / step) - 1} interval(s) missing before it"
        else:
            why = f"irregular step {delta} (expected {step})"
        raise LoadDataError(f"{p}:{line}", times[i].isoformat(), why)
    ends = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[s]")
    return IntervalSeries(
        interval_end=ends,
        kwh=np.asarray(kwh),
        kvarh=np.asarray(kvarh) if kvarh else None,
        step_min=int(step_min),
    )
