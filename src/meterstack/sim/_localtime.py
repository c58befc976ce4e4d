"""Local wall time of a time zone over a span of POSIX seconds, vectorised.

``zoneinfo`` answers one instant at a time. A simulated month has thousands of intervals, so
the UTC offset is sampled once per day over the span, every change found is located to the
second by bisection, and the offsets of any number of instants are then read with one
``searchsorted``. Two offset changes less than a day apart would be missed; no IANA zone has
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

__all__ = ["LocalTimeFeatures", "OffsetTable", "local_time_features"]

_DAY_S = 86400
#: 1970-01-01 was a Thursday; with Monday = 0 that is weekday 3.
_EPOCH_WEEKDAY = 3


def _offsets_at(epoch: float, tz: ZoneInfo) -> tuple[int, int]:
    """UTC offset and its daylight-saving part at ``epoch``. [s]"""
    local = datetime.fromtimestamp(epoch, tz)
    utc_offset = local.utcoffset()
    dst = local.dst()
    total = int(utc_offset.total_seconds()) if utc_offset is not None else 0
    return total, int(dst.total_seconds()) if dst is not None else 0


@dataclass(frozen=True)
class OffsetTable:
    """Piecewise-constant UTC offsets of a zone over a span.

    ``offset_s[k]`` (and ``dst_s[k]``) hold from ``change_epoch_s[k - 1]`` (inclusive) to
    ``change_epoch_s[k]`` (exclusive); ``offset_s[0]`` holds before the first change.
    """

    change_epoch_s: npt.NDArray[np.int64]
    offset_s: npt.NDArray[np.int64]
    dst_s: npt.NDArray[np.int64]

    @classmethod
    def build(cls, tz: ZoneInfo, first_epoch_s: float, last_epoch_s: float) -> OffsetTable:
        """Sample ``tz`` daily from two days before ``first_epoch_s`` to two days after
        ``last_epoch_s`` and bisect every change to the second."""
        low = math.floor(first_epoch_s) - 2 * _DAY_S
        n_days = math.ceil((last_epoch_s - low) / _DAY_S) + 2
        samples = [low + k * _DAY_S for k in range(n_days + 1)]
        states = [_offsets_at(s, tz) for s in samples]
        changes: list[int] = []
        offsets = [states[0][0]]
        dsts = [states[0][1]]
        for k in range(1, len(samples)):
            if states[k] == states[k - 1]:
                continue
            before, lo, hi = states[k - 1], samples[k - 1], samples[k]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offsets_at(mid, tz) == before:
                    lo = mid
                else:
                    hi = mid
            changes.append(hi)
            offsets.append(states[k][0])
            dsts.append(states[k][1])
        return cls(
            change_epoch_s=np.asarray(changes, dtype=np.int64),
            offset_s=np.asarray(offsets, dtype=np.int64),
            dst_s=np.asarray(dsts, dtype=np.int64),
        )

    def offset_at(self, epoch_s: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """UTC offset in force at each instant (local = UTC + offset). [s]"""
        return self.offset_s[np.searchsorted(self.change_epoch_s, epoch_s, side="right")]

    def standard_offset_at(self, epoch_s: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """UTC offset without daylight saving at each instant. [s]"""
        k = np.searchsorted(self.change_epoch_s, epoch_s, side="right")
        return self.offset_s[k] - self.dst_s[k]

    def wall_to_epoch(self, local_s: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """POSIX seconds of local wall times given as seconds since 1970-01-01 00:00 local.

        A wall time in the spring-forward gap maps one offset step later (the clock has
        already jumped); an ambiguous one in the autumn repeat maps to one of its two
        occurrences. Both are what a timer set to that wall time does on most devices.
        """
        guess = local_s - self.offset_at(local_s - self.offset_s[0])
        return local_s - self.offset_at(guess)


@dataclass(frozen=True)
class LocalTimeFeatures:
    """Calendar features of instants in a zone's local time.

    Attributes
    ----------
    hour : float32 array
        Local wall-clock hour of day, 0 <= hour < 24. [h]
    weekday : int8 array
        Local day of week, Monday = 0 .. Sunday = 6.
    local_day : int64 array
        Local calendar day, counted from 1970-01-01 local. [d]
    day_of_year : int16 array
        Local day of year, 1 .. 366.
    """

    hour: npt.NDArray[np.float32]
    weekday: npt.NDArray[np.int8]
    local_day: npt.NDArray[np.int64]
    day_of_year: npt.NDArray[np.int16]


def local_time_features(epoch_s: npt.NDArray[np.int64], offsets: OffsetTable) -> LocalTimeFeatures:
    """Local hour, weekday, day and day of year of ``epoch_s`` (POSIX seconds, UTC)."""
    local_s = epoch_s + offsets.offset_at(epoch_s)
    local_day = np.floor_divide(local_s, _DAY_S)
    second_of_day = local_s - local_day * _DAY_S
    dates = local_day.astype("datetime64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    return LocalTimeFeatures(
        hour=(second_of_day / 3600.0).astype(np.float32),
        weekday=((local_day + _EPOCH_WEEKDAY) % 7).astype(np.int8),
        local_day=local_day,
        day_of_year=day_of_year.astype(np.int16),
    )
