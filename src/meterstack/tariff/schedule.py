"""Calendars of interval data: local month, hour, day type and billing cycle of each interval.

Two calendars are built here:

* :func:`local_calendar` - the real one. Each interval is placed by the local time of its
  *start* (an interval is labelled by its end, DESIGN.md), resolved with ``zoneinfo``, so
  daylight-saving days have 23 or 25 hours. Saturdays, Sundays and the tariff's holidays use
  the weekend schedule. Billing cycles start on a local day of the month.
* :func:`pysam_calendar` - the calendar of NREL SAM/PySAM ``Utilityrate5`` [1]_: a 365-day
  year of ``8760 x steps_per_hour`` records that starts on a Monday, calendar-month cycles,
  no holidays, no daylight-saving time.

References
----------
.. [1] NREL, System Advisor Model, SSC ``shared/lib_util.cpp`` ``util::translate_schedule``
   (first day of the year is a weekday, days 6 and 7 are the weekend) and ``util::nday``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from meterstack.core.time import LocalDays
from meterstack.tariff.errors import LoadDataError

__all__ = ["DAYS_IN_MONTH", "Calendar", "local_calendar", "period_of", "pysam_calendar"]

DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_QUARTER_S = 900


@dataclass(frozen=True)
class Calendar:
    """Where each of T intervals falls; shared by every meter rated on the same timestamps.

    Attributes
    ----------
    month : int array (T,)
        Local calendar month of the interval start, 0-11.
    hour : int array (T,)
        Local clock hour of the interval start, 0-23.
    minute : int array (T,)
        Local minute of the day of the interval start, 0-1439.
    weekend : bool array (T,)
        True on Saturdays, Sundays and holidays.
    local_date : datetime64[D] array (T,)
        Local date of the interval start.
    hour_index : int array (T,)
        A number that is equal for intervals in the same local clock hour.
    cycle : int array (T,)
        Billing cycle of each interval, 0..K-1.
    cycle_labels : list of str
        ``"YYYY-MM"`` of the month each cycle starts in.
    cycle_month : int array (K,)
        Calendar month (0-11) a cycle is named after.
    cycle_days : float array (K,)
        Days in each full cycle.
    covered_days : float array (K,)
        Days of each cycle that the data cover. [d]
    step_h : float
        Length of one interval. [h]
    """

    month: NDArray[np.int64]
    hour: NDArray[np.int64]
    minute: NDArray[np.int64]
    weekend: NDArray[np.bool_]
    local_date: NDArray[np.datetime64]
    hour_index: NDArray[np.int64]
    cycle: NDArray[np.int64]
    cycle_labels: list[str]
    cycle_month: NDArray[np.int64]
    cycle_days: NDArray[np.float64]
    covered_days: NDArray[np.float64]
    step_h: float

    @property
    def n_cycles(self) -> int:
        return len(self.cycle_labels)

    @property
    def n_intervals(self) -> int:
        return int(self.month.shape[0])


def _offsets_s(starts: NDArray[np.datetime64], tz: ZoneInfo) -> NDArray[np.int64]:
    """UTC offset in force at each instant [s]; looked up once per quarter hour of UTC."""
    epoch = starts.astype("datetime64[s]").astype(np.int64)
    quarters = epoch // _QUARTER_S
    unique, inverse = np.unique(quarters, return_inverse=True)
    table = np.empty(unique.shape[0], dtype=np.int64)
    for i, q in enumerate(unique.tolist()):
        offset = datetime.fromtimestamp(q * _QUARTER_S, UTC).astimezone(tz).utcoffset()
        table[i] = int(offset.total_seconds()) if offset is not None else 0
    return table[inverse]


def _covered_days(
    local_date: NDArray[np.datetime64],
    cycle: NDArray[np.int64],
    n_cycles: int,
    step_s: int,
    tz: ZoneInfo,
) -> NDArray[np.float64]:
    """Local days each cycle's intervals cover: each interval is step / (its day's length).

    A daylight-saving day lasts 23 or 25 hours, so its 23 or 25 hourly intervals make one
    day, not 23/24 or 25/24 of one.
    """
    dates, index = np.unique(local_date, return_inverse=True)
    days = LocalDays(tz)
    lengths = np.array(
        [days.day_start(d + timedelta(days=1)) - days.day_start(d) for d in dates.tolist()]
    )
    covered = np.bincount(cycle, weights=step_s / lengths[index], minlength=n_cycles)
    return covered.astype(np.float64)


def local_calendar(
    interval_end: NDArray[np.datetime64],
    tz: ZoneInfo,
    holidays: list[date] | tuple[date, ...] = (),
    cycle_day: int = 1,
) -> Calendar:
    """Calendar of intervals given by their UTC end times.

    Parameters
    ----------
    interval_end : datetime64 array (T,)
        UTC end of each interval; strictly increasing with one fixed step of 1 to 60 min.
    tz : ZoneInfo
        The tariff's local time zone.
    holidays : sequence of date
        Local dates rated with the weekend schedule.
    cycle_day : int
        Local day of the month on which billing cycles start (1 = calendar months).

    Raises
    ------
    LoadDataError
        Fewer than two intervals, or the step is not fixed.
    """
    ends = np.asarray(interval_end).astype("datetime64[s]")
    if ends.ndim != 1 or ends.shape[0] < 2:
        raise LoadDataError("interval_end", ends.shape, "need at least two intervals")
    steps = np.diff(ends).astype(np.int64)
    step_s = int(steps[0])
    bad = np.flatnonzero(steps != step_s)
    if bad.size:
        i = int(bad[0]) + 1
        raise LoadDataError(
            f"interval_end[{i}]", str(ends[i]), f"step changes from {step_s} s to {steps[i - 1]} s"
        )
    if not 60 <= step_s <= 3600 or 3600 % step_s:
        raise LoadDataError("interval_end", f"{step_s} s", "step must divide one hour")
    starts = ends - np.timedelta64(step_s, "s")
    local = starts + _offsets_s(starts, tz).astype("timedelta64[s]")  # type: ignore[arg-type]
    local_date = local.astype("datetime64[D]")
    local_month = local.astype("datetime64[M]")
    month = (local_month.astype(np.int64) % 12).astype(np.int64)
    seconds_of_day = (local - local_date).astype("timedelta64[s]").astype(np.int64)
    hour = (seconds_of_day // 3600).astype(np.int64)
    weekday = (local_date.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weekend = weekday >= 5
    if holidays:
        weekend |= np.isin(local_date, np.array(list(holidays), dtype="datetime64[D]"))
    hour_index = local.astype("datetime64[h]").astype(np.int64)
    day_of_month = (local_date - local_month.astype("datetime64[D]")).astype(np.int64) + 1
    cycle_month_abs = local_month.astype(np.int64) - (day_of_month < cycle_day)
    first = int(cycle_month_abs[0])
    cycle = (cycle_month_abs - first).astype(np.int64)
    n_cycles = int(cycle[-1]) + 1
    months_abs = np.arange(first, first + n_cycles + 1).astype("datetime64[M]")
    starts_d = months_abs.astype("datetime64[D]") + np.timedelta64(cycle_day - 1, "D")
    cycle_days = np.diff(starts_d).astype(np.float64)
    covered = _covered_days(local_date, cycle, n_cycles, step_s, tz)
    labels = [str(m) for m in months_abs[:-1]]
    return Calendar(
        month=month,
        hour=hour,
        minute=(seconds_of_day // 60).astype(np.int64),
        weekend=weekend,
        local_date=local_date,
        hour_index=hour_index,
        cycle=cycle,
        cycle_labels=labels,
        cycle_month=(months_abs[:-1].astype(np.int64) % 12).astype(np.int64),
        cycle_days=cycle_days,
        covered_days=covered,
        step_h=step_s / 3600.0,
    )


def pysam_calendar(n_intervals: int, year: int = 2023) -> Calendar:
    """The calendar PySAM ``Utilityrate5`` assumes for ``n_intervals`` records of one year.

    Parameters
    ----------
    n_intervals : int
        8760 x steps per hour, 1 to 60 steps per hour.
    year : int
        Only used for the cycle labels.
    """
    steps = n_intervals // 8760
    if steps < 1 or steps > 60 or steps * 8760 != n_intervals:
        raise LoadDataError(
            "n_intervals",
            n_intervals,
            "PySAM-compatible rating needs one 365-day year: 8760 x steps-per-hour records",
        )
    i = np.arange(n_intervals, dtype=np.int64)
    hour_of_year = i // steps
    day = hour_of_year // 24
    month_start = np.concatenate([[0], np.cumsum(DAYS_IN_MONTH)])
    month = (np.searchsorted(month_start, day, side="right") - 1).astype(np.int64)
    local_date = np.datetime64(f"{year}-01-01") + day.astype("timedelta64[D]")
    return Calendar(
        month=month,
        hour=(hour_of_year % 24).astype(np.int64),
        minute=((hour_of_year % 24) * 60 + (i % steps) * 60 // steps).astype(np.int64),
        weekend=(day % 7) >= 5,
        local_date=local_date,
        hour_index=hour_of_year,
        cycle=month,
        cycle_labels=[f"{year}-{m:02d}" for m in range(1, 13)],
        cycle_month=np.arange(12, dtype=np.int64),
        cycle_days=DAYS_IN_MONTH.astype(np.float64),
        covered_days=DAYS_IN_MONTH.astype(np.float64),
        step_h=1.0 / steps,
    )


def period_of(
    calendar: Calendar, weekday: list[list[int]], weekend: list[list[int]]
) -> NDArray[np.int64]:
    """Period index of each interval from 12 x 24 weekday and weekend matrices."""
    wd = np.asarray(weekday, dtype=np.int64)
    we = np.asarray(weekend, dtype=np.int64)
    return np.where(
        calendar.weekend, we[calendar.month, calendar.hour], wd[calendar.month, calendar.hour]
    ).astype(np.int64)
