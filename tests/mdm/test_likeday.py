"""Like-day substitution takes whole days, in the order of WA Metering Code Method 14.

The grid is hourly over three weeks from Monday 1 January 2024 (UTC), and every actual
value names its own day and hour: ``1000 * day + hour``. A substitute therefore says which
like day it came from, and the expected day is read off the order table in
``likeday.py`` by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from meterstack.mdm.quality import Check, Method, Quality
from meterstack.mdm.vee import VeeConfig, estimate, local_calendar

H = 3600
DAYS = 21
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())  # a Monday
ENDS = START + H * np.arange(1, DAYS * 24 + 1)
THURSDAY = 17  # Thursday 18 January, the day being substituted


def actuals() -> np.ndarray:
    column = np.arange(DAYS * 24)
    return (1000.0 * (column // 24) + column % 24)[None, :]


def substitute(
    value: np.ndarray, holidays: tuple[date, ...] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    checks = np.where(np.isnan(value), int(Check.GAP), 0).astype(np.int64)
    calendar = local_calendar(ENDS, H, "UTC", holidays)
    est = estimate(
        value, checks, H,
        calendar=calendar, config=VeeConfig(), final_before=np.zeros(1, dtype=np.int64),
    )  # fmt: skip
    return est.value[0], est.method[0], est.quality[0]


def cells(day: int, hours: range) -> list[int]:
    return [day * 24 + h for h in hours]


def test_the_same_weekday_of_the_week_before_when_it_is_complete() -> None:
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    out, method, quality = substitute(value)
    assert method[gap].tolist() == [Method.LIKE_DAY] * 6
    assert out[gap].tolist() == [10_000.0 + h for h in range(6, 12)]  # Thursday 11 Jan
    assert {chr(q) for q in quality[gap]} == {Quality.SUBSTITUTED.value}


def test_an_incomplete_like_day_is_passed_over_whole() -> None:
    """One missing hour on the week-before Thursday, outside the gap's hours, rules that
    day out: Thursday's next like day is Wednesday of this week (1 day back), then Tuesday
    of this week (2 days back)."""
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    value[0, 10 * 24 + 20] = np.nan  # Thursday 11 Jan, 20:00-21:00
    out, method, _ = substitute(value)
    assert out[gap].tolist() == [16_000.0 + h for h in range(6, 12)]  # Wednesday 17 Jan
    value[0, 16 * 24 + 0] = np.nan  # Wednesday 17 Jan, 00:00-01:00
    out, method, _ = substitute(value)
    assert method[gap].tolist() == [Method.LIKE_DAY] * 6
    assert out[gap].tolist() == [15_000.0 + h for h in range(6, 12)]  # Tuesday 16 Jan


def test_a_flagged_interval_makes_a_day_incomplete() -> None:
    """A day with an interval that failed validation is not complete actual data."""
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    checks = np.where(np.isnan(value), int(Check.GAP), 0).astype(np.int64)
    checks[0, 10 * 24 + 3] |= int(Check.HIGH_LIMIT)
    calendar = local_calendar(ENDS, H, "UTC", ())
    est = estimate(
        value, checks, H,
        calendar=calendar, config=VeeConfig(), final_before=np.zeros(1, dtype=np.int64),
    )  # fmt: skip
    assert est.value[0, gap].tolist() == [16_000.0 + h for h in range(6, 12)]


def test_a_gap_over_midnight_takes_each_day_from_its_own_like_day() -> None:
    value = actuals()
    monday, tuesday = 14, 15
    gap = cells(monday, range(21, 24)) + cells(tuesday, range(0, 4))
    value[0, gap] = np.nan
    out, _, _ = substitute(value)
    assert out[gap].tolist() == [7_000.0 + h for h in range(21, 24)] + [
        8_000.0 + h for h in range(0, 4)
    ]
    # Tuesday's order is Tuesday (7), Wednesday (6), Thursday (5) of the week before.
    value[0, 8 * 24 + 12] = np.nan
    out, _, _ = substitute(value)
    assert out[gap].tolist() == [7_000.0 + h for h in range(21, 24)] + [
        9_000.0 + h for h in range(0, 4)
    ]


def test_a_public_holiday_takes_the_sunday_before() -> None:
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    out, _, _ = substitute(value, holidays=(date(2024, 1, 18),))
    assert out[gap].tolist() == [13_000.0 + h for h in range(6, 12)]  # Sunday 14 Jan


def test_a_public_holiday_never_stands_in_for_an_ordinary_day() -> None:
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    out, _, _ = substitute(value, holidays=(date(2024, 1, 11),))
    assert out[gap].tolist() == [16_000.0 + h for h in range(6, 12)]


def test_nothing_is_invented_without_a_complete_like_day() -> None:
    value = actuals()
    gap = cells(THURSDAY, range(6, 12))
    value[0, gap] = np.nan
    # Break every candidate of a Thursday within four weeks: 7, 1, 2, 8, 9 and 14 ... back.
    for back in (1, 2, 7, 8, 9, 14, 15, 16):
        value[0, (THURSDAY - back) * 24 + 23] = np.nan
    out, method, quality = substitute(value)
    assert np.isnan(out[gap]).all()
    assert method[gap].tolist() == [Method.NONE] * 6
    assert {chr(q) for q in quality[gap]} == {Quality.NULL.value}


def test_like_days_are_local_days_matched_by_wall_clock_across_daylight_saving() -> None:
    """Berlin springs forward on Sunday 31 March 2024 (a 23-hour day). A gap on Sunday
    7 April, 06:00-12:00 local, takes the values of 06:00-12:00 local on 31 March, whose
    intervals started one hour later after the change than they would on a 24-hour day."""
    tz = ZoneInfo("Europe/Berlin")
    first = datetime(2024, 3, 18, tzinfo=tz)  # a Monday
    start = int(first.timestamp())
    ends = start + H * np.arange(1, 21 * 24)  # 23-hour day included: one hour short
    local = [datetime.fromtimestamp(int(e) - H, tz) for e in ends]
    value = np.array([[1000.0 * (t.date() - first.date()).days + t.hour for t in local]])
    target = [i for i, t in enumerate(local) if t.date() == date(2024, 4, 7) and 6 <= t.hour < 12]
    value[0, target] = np.nan
    calendar = local_calendar(ends, H, "Europe/Berlin", ())
    assert calendar.day_slots[13] == 23  # Sunday 31 March
    assert calendar.day_slots[12] == 24
    checks = np.where(np.isnan(value), int(Check.GAP), 0).astype(np.int64)
    est = estimate(
        value, checks, H,
        calendar=calendar, config=VeeConfig(), final_before=np.zeros(1, dtype=np.int64),
    )  # fmt: skip
    assert est.value[0, target].tolist() == [13_000.0 + h for h in range(6, 12)]
