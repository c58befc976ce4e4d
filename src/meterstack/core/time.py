"""Time: UTC at every boundary, intervals labelled by their end, clocks that are passed in.

Conventions
-----------
* Every timestamp that crosses a module boundary is a timezone-aware ``datetime`` in UTC.
  Inside hot loops meterstack uses POSIX seconds (``float``), and inside vectorised code
  ``numpy.datetime64``.
* An interval ``(start, end]`` is labelled by its end. A reading at exactly 10:30 belongs to
  the interval that ends at 10:30.
* Nothing in ``meter``, ``metrology``, ``tariff`` or ``sts`` reads the wall clock: the time
  is passed in, so a simulated month runs in seconds and every test is deterministic.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterstack.core.errors import ClockError, ConfigError

__all__ = [
    "UTC",
    "Clock",
    "LocalDays",
    "SimulatedClock",
    "SystemClock",
    "ensure_utc",
    "from_epoch",
    "interval_end",
    "next_aligned",
    "to_epoch",
    "zone",
]


class Clock(Protocol):
    """A source of the current time, passed to whoever needs one."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock. Only the faces (CLI, API) and the head-end construct one."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to: for simulations and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, step: timedelta | float) -> datetime:
        """Move forward by ``step`` (a ``timedelta`` or seconds) and return the new time."""
        seconds = step.total_seconds() if isinstance(step, timedelta) else float(step)
        if not math.isfinite(seconds) or seconds < 0:
            raise ClockError("step", step, "a simulated clock only moves forward")
        self._now = self._now + timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forward or back: this is how a clock adjustment is simulated)."""
        self._now = ensure_utc(when, "when")


def ensure_utc(value: datetime, field: str = "timestamp") -> datetime:
    """Return ``value`` converted to UTC; raise :class:`ClockError` if it is naive."""
    if not isinstance(value, datetime):
        raise ClockError(field, value, "expected a datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ClockError(field, value, "timestamps must be timezone-aware (use UTC)")
    return value.astimezone(UTC)


def to_epoch(value: datetime, field: str = "timestamp") -> float:
    """POSIX seconds of an aware datetime."""
    if value.tzinfo is None:
        raise ClockError(field, value, "timestamps must be timezone-aware (use UTC)")
    return value.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Aware UTC datetime from POSIX seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def interval_end(value: datetime, period_s: int) -> datetime:
    """The end label of the ``period_s`` interval that contains ``value`` (UTC-aligned).

    >>> interval_end(datetime(2024, 1, 1, 10, 10, tzinfo=UTC), 1800).time()
    datetime.time(10, 30)
    >>> interval_end(datetime(2024, 1, 1, 10, 30, tzinfo=UTC), 1800).time()
    datetime.time(10, 30)
    """
    seconds = to_epoch(value)
    return from_epoch(math.ceil(seconds / period_s) * period_s)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raise :class:`ConfigError` if it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'"
        ) from exc


def next_aligned(epoch: float, period_s: int, tz: ZoneInfo) -> float:
    """The first boundary strictly after ``epoch`` of periods aligned to local clock time.

    A 60-minute demand period in a UTC+05:30 zone ends on the local hour, not the UTC hour.
    The alignment uses the UTC offset in force at ``epoch``.
    """
    offset = _utc_offset_s(epoch, tz)
    local = epoch + offset
    boundary = (math.floor(local / period_s) + 1) * period_s
    return boundary - offset


def _utc_offset_s(epoch: float, tz: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(epoch, tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


class LocalDays:
    """Local calendar days of a time zone, as POSIX-second boundaries.

    Used by the time-of-use calendar, friendly-credit windows and daily standing charges,
    which all change at local clock times.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._day_start: dict[date, float] = {}

    def local_datetime(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.tz)

    def local_date(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, self.tz).date()

    def at(self, day: date, seconds_of_day: int) -> float:
        """POSIX seconds of local wall time ``seconds_of_day`` on ``day``.

        A wall time that does not exist (the spring-forward gap) maps to the instant the gap
        ends; an ambiguous one (the autumn repeat) maps to its first occurrence.
        """
        if seconds_of_day >= 86400:
            return self.day_start(day + timedelta(days=1))
        hours, rest = divmod(seconds_of_day, 3600)
        wall = datetime(day.year, day.month, day.day, hours, rest // 60, rest % 60, tzinfo=self.tz)
        first = wall.timestamp()
        if datetime.fromtimestamp(first, self.tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
            return first
        second = wall.replace(fold=1).timestamp()
        return _offset_change_between(min(first, second), max(first, second), self.tz)

    def day_start(self, day: date) -> float:
        """POSIX seconds of the local midnight that starts ``day``."""
        cached = self._day_start.get(day)
        if cached is None:
            cached = self.at(day, 0)
            self._day_start[day] = cached
        return cached

    def next_day_start(self, epoch: float) -> float:
        """The first local midnight strictly after ``epoch``."""
        return self.day_start(self.local_date(epoch) + timedelta(days=1))


def _offset_change_between(low: float, high: float, tz: ZoneInfo) -> float:
    """The instant, to the second, at which the UTC offset changes within [low, high]."""
    before = _utc_offset_s(low, tz)
    while high - low > 1:
        mid = math.floor((low + high) / 2)
        if _utc_offset_s(mid, tz) == before:
            low = mid
        else:
            high = mid
    return float(math.ceil(high))
