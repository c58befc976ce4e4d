"""Local-time calendars of the meter: tariff rates by time of use, friendly-credit windows.

Both answer the same question for the device model, fast: what holds at POSIX second ``t``
and when does it next change? Days are resolved once in the meter's time zone and cached, so
daylight-saving days are exact.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

from meterstack.core.time import LocalDays
from meterstack.meter.config import FriendlyCalendar, TouCalendarConfig, seconds_of_day

_CACHE_DAYS = 32
_ONE_DAY = timedelta(days=1)


class TouCalendar:
    """Which tariff rate is active, from a :class:`TouCalendarConfig` (or one flat rate)."""

    def __init__(self, config: TouCalendarConfig | None, days: LocalDays) -> None:
        self.config = config
        self._days = days
        self._day_cache: dict[date, tuple[list[float], list[int]]] = {}
        if config is not None:
            self._seasons = sorted(
                ((int(s.start[:2]), int(s.start[3:])), s.week_profile) for s in config.seasons
            )
            self._switches = {
                name: [(seconds_of_day(s.start), s.rate) for s in switches]
                for name, switches in config.day_profiles.items()
            }

    def day_profile_name(self, day: date) -> str:
        """The day profile that governs local ``day``."""
        assert self.config is not None
        special = self.config.special_days.get(day)
        if special is not None:
            return special
        key = (day.month, day.day)
        week_profile = self._seasons[-1][1]  # before the first season: last year's last
        for start, name in self._seasons:
            if start <= key:
                week_profile = name
        return self.config.week_profiles[week_profile][day.weekday()]

    def _day(self, day: date) -> tuple[list[float], list[int]]:
        cached = self._day_cache.get(day)
        if cached is None:
            switches = self._switches[self.day_profile_name(day)]
            times = [self._days.at(day, second) for second, _ in switches]
            cached = (times, [rate for _, rate in switches])
            if len(self._day_cache) >= _CACHE_DAYS:
                self._day_cache.clear()
            self._day_cache[day] = cached
        return cached

    def rate_at(self, t: float) -> tuple[int, float]:
        """The rate in force at ``t`` and the POSIX second it may next change."""
        if self.config is None:
            return 1, float("inf")
        day = self._days.local_date(t)
        times, rates = self._day(day)
        index = bisect_right(times, t) - 1
        if index < 0:  # ``t`` is before the (DST-shifted) first switch: yesterday's last rate
            return self._day(day - _ONE_DAY)[1][-1], times[0]
        if index + 1 < len(times):
            return rates[index], times[index + 1]
        return rates[index], self._day(day + _ONE_DAY)[0][0]


class FriendlySchedule:
    """When disconnection for lack of credit waits: daily windows, weekends, holidays."""

    def __init__(self, config: FriendlyCalendar, days: LocalDays) -> None:
        self.config = config
        self._days = days
        self._holidays = frozenset(config.holidays)
        self._windows = [(seconds_of_day(w.start), seconds_of_day(w.end)) for w in config.daily]
        self._day_cache: dict[date, list[tuple[float, float]]] = {}
        self.enabled = bool(self._windows or config.weekends or self._holidays)

    def _whole_day(self, day: date) -> bool:
        return (self.config.weekends and day.weekday() >= 5) or day in self._holidays

    def _intervals(self, day: date) -> list[tuple[float, float]]:
        """Friendly spans that start on local ``day``."""
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        spans: list[tuple[float, float]] = []
        if self._whole_day(day):
            spans.append((self._days.day_start(day), self._days.day_start(day + _ONE_DAY)))
        for start, end in self._windows:
            end_day = day if end > start else day + _ONE_DAY
            spans.append((self._days.at(day, start), self._days.at(end_day, end)))
        if len(self._day_cache) >= _CACHE_DAYS:
            self._day_cache.clear()
        self._day_cache[day] = spans
        return spans

    def state_at(self, t: float) -> tuple[bool, float]:
        """Whether ``t`` is in a friendly period, and the POSIX second that may change.

        The second returned is a time to look again; the state there may be unchanged.
        """
        if not self.enabled:
            return False, float("inf")
        day = self._days.local_date(t)
        spans = sorted(
            self._intervals(day - _ONE_DAY) + self._intervals(day) + self._intervals(day + _ONE_DAY)
        )
        merged: list[tuple[float, float]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        for start, end in merged:
            if start <= t < end:
                return True, end
            if start > t:
                return False, start
        return False, self._days.day_start(day + 2 * _ONE_DAY)
