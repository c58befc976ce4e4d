from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from meterstack.core import ClockError, ConfigError, SimulatedClock
from meterstack.core.time import LocalDays, ensure_utc, from_epoch, interval_end, next_aligned, zone


def test_interval_end_labels_the_end_of_the_interval() -> None:
    t = datetime(2024, 5, 1, 10, 10, tzinfo=UTC)
    assert interval_end(t, 1800) == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    # A reading exactly on the boundary belongs to the interval that ends there.
    assert interval_end(datetime(2024, 5, 1, 10, 30, tzinfo=UTC), 1800) == datetime(
        2024, 5, 1, 10, 30, tzinfo=UTC
    )


def test_ensure_utc_converts_and_rejects_naive() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert ensure_utc(datetime(2024, 1, 1, 12, tzinfo=plus_two)) == datetime(
        2024, 1, 1, 10, tzinfo=UTC
    )
    with pytest.raises(ClockError) as caught:
        ensure_utc(datetime(2024, 1, 1), "start")
    assert caught.value.field == "start"


def test_simulated_clock_moves_only_when_told() -> None:
    clock = SimulatedClock(datetime(2024, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now()
    assert clock.advance(90) == datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1)).hour == 1
    with pytest.raises(ClockError):
        clock.advance(-1)


def test_next_aligned_follows_local_clock_in_half_hour_zones() -> None:
    kolkata = zone("Asia/Kolkata")  # UTC+05:30
    t = datetime(2024, 1, 1, 0, 0, tzinfo=UTC).timestamp()
    # The next local hour boundary is 06:00 IST = 00:30 UTC.
    assert from_epoch(next_aligned(t, 3600, kolkata)) == datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    assert from_epoch(next_aligned(t, 1800, kolkata)) == datetime(2024, 1, 1, 0, 30, tzinfo=UTC)


def test_local_days_across_daylight_saving() -> None:
    london = LocalDays(zone("Europe/London"))
    # 2024-03-31 has 23 hours in London; 2024-10-27 has 25.
    spring = london.day_start(date(2024, 4, 1)) - london.day_start(date(2024, 3, 31))
    autumn = london.day_start(date(2024, 10, 28)) - london.day_start(date(2024, 10, 27))
    assert spring == 23 * 3600
    assert autumn == 25 * 3600
    # 01:30 does not exist on the spring day: it maps to the end of the gap, 01:00 UTC.
    assert from_epoch(london.at(date(2024, 3, 31), 5400)) == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    # 01:30 happens twice in autumn: the first one (BST) is 00:30 UTC.
    assert from_epoch(london.at(date(2024, 10, 27), 5400)) == datetime(
        2024, 10, 27, 0, 30, tzinfo=UTC
    )


def test_a_day_that_starts_after_midnight() -> None:
    # Chile moved clocks forward at 00:00 on 2024-09-08: the day starts at 01:00 local.
    santiago = LocalDays(zone("America/Santiago"))
    start = santiago.day_start(date(2024, 9, 8))
    assert santiago.local_datetime(start).hour == 1


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        zone("Mars/Olympus_Mons")
