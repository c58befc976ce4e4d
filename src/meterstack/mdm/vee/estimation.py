"""Estimation (substitution) of failed and missing intervals, vectorised over the grid.

In order of preference, for each interval that failed a substitution check
(:data:`~meterstack.mdm.quality.SUBSTITUTE_ON`) or is missing:

1. **Zero for a confirmed outage.** An interval wholly inside a supply outage the meter
   logged (power down ... power up) had no energy: 0, quality ``F``.
2. **Linear interpolation** across a run of at most ``max_interpolation_s`` (2 h), between
   the valid actual intervals on either side [1]_:

       E_k = E_a + (E_b - E_a) * (k - a) / (b - a),   a < k < b

   An anchor must be an actual interval that passed validation and is not an outage or
   power-failure interval: interpolation is never anchored on an outage, so a run next to
   one goes on to the like day.
3. **Like day**, whole days: each local day touched by what is left of a gap takes its
   values from the first of its like days (in the order of
   :mod:`meterstack.mdm.vee.likeday`) that has complete actual data: every interval of
   that whole day present, valid and not an outage. The gap's intervals on that day take
   the like day's values of the same local time slots. A like day is always earlier than
   the day it stands in for, and a public holiday stands in only for a public holiday.
4. Otherwise **null** (quality ``N``): nothing is invented.

Quality: ``S`` substituted; ``E`` for intervals after the meter's last actual interval of
the grid (a forward estimate); ``F`` for zero outages and for intervals older than the
meter's load-profile capacity (the meter can no longer send the actual).

References
----------
.. [1] AEMO, Metrology Procedure: Part B, substitution types for interval metering data
   (like day, linear interpolation of short gaps, zero where no energy flowed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.mdm.errors import EstimationRefusedError
from meterstack.mdm.quality import SUBSTITUTE_ON, Check, Method, Quality
from meterstack.mdm.vee.likeday import like_day_offsets
from meterstack.mdm.vee.runs import runs
from meterstack.mdm.vee.validation import VeeConfig

F64_2 = npt.NDArray[np.float64]
BOOL2 = npt.NDArray[np.bool_]
I64_2 = npt.NDArray[np.int64]
I64 = npt.NDArray[np.int64]

_NOT_ANCHOR = int(SUBSTITUTE_ON | Check.POWER_FAILURE | Check.OUTAGE)


@dataclass(frozen=True)
class LocalCalendar:
    """Where each grid column falls in local time (one time zone per grid).

    Attributes
    ----------
    day : (T,) int
        Local day number of the interval's start, counted from the grid's first day.
    weekday : (T,) int
        Monday 0 ... Sunday 6.
    slot : (T,) int
        Position of the interval within its local day.
    holiday : (T,) bool
        The local day is a public holiday.
    cell_of : (D, S) int
        Grid column of (day, slot), -1 where there is none (a daylight-saving gap, or a
        day the grid holds only part of).
    day_slots : (D,) int
        Intervals in the whole local day (46, 48 or 50 half hours across daylight saving).
    """

    day: I64
    weekday: I64
    slot: I64
    holiday: npt.NDArray[np.bool_]
    cell_of: I64_2
    day_slots: I64

    @property
    def days(self) -> int:
        return int(self.cell_of.shape[0])

    def day_weekday(self) -> I64:
        """Weekday of each local day (Monday 0)."""
        out = np.zeros(self.days, dtype=np.int64)
        out[self.day] = self.weekday
        return out

    def day_holiday(self) -> npt.NDArray[np.bool_]:
        out = np.zeros(self.days, dtype=bool)
        out[self.day] = self.holiday
        return out

    def whole_days(self) -> npt.NDArray[np.bool_]:
        """Days the grid holds every interval of."""
        columns = np.bincount(self.day, minlength=self.days)
        whole: npt.NDArray[np.bool_] = columns == self.day_slots
        return whole


@dataclass
class Estimates:
    """Validated values, NEM12 quality code points (``ord('A')``...) and methods."""

    value: F64_2
    quality: npt.NDArray[np.uint8]
    method: npt.NDArray[np.int8]


def anchor_mask(value: F64_2, checks: I64_2) -> BOOL2:
    """Cells usable as an anchor or a like-day source: valid actual, no outage."""
    mask: BOOL2 = ~np.isnan(value) & ((checks & _NOT_ANCHOR) == 0)
    return mask


def interpolate_gap(
    value: npt.NDArray[np.float64], checks: npt.NDArray[np.int64], first: int, last: int
) -> npt.NDArray[np.float64]:
    """Linear interpolation of cells ``first..last`` of one meter's series.

    Raises
    ------
    EstimationRefusedError
        The gap has no valid actual on one side, or an anchor (or a cell of the gap) is an
        outage or power-failure interval: an estimate is never made across an outage.
    """
    a, b = first - 1, last + 1
    if a < 0 or b >= value.size:
        raise EstimationRefusedError("interpolate", "the gap has no actual interval on one side")
    span = checks[first : last + 1]
    if np.any(span & int(Check.OUTAGE | Check.POWER_FAILURE)):
        raise EstimationRefusedError("interpolate", "the gap spans a supply outage")
    for side in (a, b):
        if np.isnan(value[side]) or checks[side] & _NOT_ANCHOR:
            reason = (
                "an anchor interval is an outage interval"
                if checks[side] & int(Check.OUTAGE | Check.POWER_FAILURE)
                else "an anchor interval is not a valid actual"
            )
            raise EstimationRefusedError("interpolate", reason)
    k = np.arange(first, last + 1)
    line: npt.NDArray[np.float64] = value[a] + (value[b] - value[a]) * (k - a) / (b - a)
    return line


def like_day_sources(anchor: BOOL2, todo: BOOL2, calendar: LocalCalendar, weeks: int) -> I64_2:
    """For every cell to substitute, the grid column whose value stands in for it (-1: none).

    Each meter's local day that holds a cell of ``todo`` looks for its first like day, in
    the order of :func:`~meterstack.mdm.vee.likeday.like_day_offsets`, that the grid holds
    whole and whose intervals are all ``anchor`` (valid actuals); its cells then take the
    like day's cells of the same local slot (a slot the like day lacks, across a
    daylight-saving change, stays at -1). A public holiday stands in only for a public
    holiday; an ordinary day never takes one.
    """
    m, t = todo.shape
    n_days = calendar.days
    out = np.full((m, t), -1, dtype=np.int64)
    if not todo.any() or n_days == 0:
        return out
    day = calendar.day
    whole = calendar.whole_days()
    # Columns are in time order, so each local day is one run of columns.
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    run_day = day[starts]
    # complete[m, d]: every interval of day d is in the grid and a valid actual.
    missing = np.zeros((m, n_days), dtype=np.int64)
    missing[:, run_day] = np.add.reduceat((~anchor).astype(np.int64), starts, axis=1)
    complete = (missing == 0) & whole[None, :]
    wanted = np.zeros((m, n_days), dtype=bool)
    wanted[:, run_day] = np.logical_or.reduceat(todo, starts, axis=1)
    table = [
        like_day_offsets(weekday, holiday, weeks)
        for weekday in range(7)
        for holiday in (False, True)
    ]
    max_rank = max(len(row) for row in table)
    offsets = np.zeros((14, max_rank), dtype=np.int64)
    for i, row in enumerate(table):
        offsets[i, : len(row)] = row
    weekday_of_day = calendar.day_weekday()
    holiday_of_day = calendar.day_holiday()
    kind = weekday_of_day * 2 + holiday_of_day.astype(np.int64)
    days = np.arange(n_days, dtype=np.int64)
    cell_of = calendar.cell_of
    like = np.full((m, n_days), -1, dtype=np.int64)
    for rank in range(max_rank):
        offset = offsets[kind, rank]
        candidate = days - offset
        usable = (offset > 0) & (candidate >= 0)
        safe = np.where(usable, candidate, 0)
        # A holiday never stands in for an ordinary day.
        usable &= ~holiday_of_day[safe] | holiday_of_day
        pick = wanted & (like < 0) & usable[None, :] & complete[:, safe]
        like[pick] = np.broadcast_to(safe, (m, n_days))[pick]
        if not (wanted & (like < 0)).any():
            break
    rows, cols = np.nonzero(todo)
    chosen = like[rows, day[cols]]
    found = chosen >= 0
    slot = calendar.slot[cols[found]]
    slots = cell_of.shape[1]
    target = np.full(found.size, -1, dtype=np.int64)
    inside = slot < slots
    picked = np.flatnonzero(found)
    target[picked[inside]] = cell_of[chosen[found][inside], slot[inside]]
    out[rows, cols] = target
    return out


def estimate(
    value: F64_2,
    checks: I64_2,
    interval_s: int,
    *,
    calendar: LocalCalendar,
    config: VeeConfig,
    final_before: I64,
) -> Estimates:
    """Validated values for every cell (see the module doc).

    ``final_before[m]`` is the first grid column of meter ``m`` that the meter still holds:
    substitutes left of it are final.
    """
    m, t = value.shape
    need = (checks & int(SUBSTITUTE_ON)) != 0
    outage = (checks & int(Check.OUTAGE)) != 0
    anchor = anchor_mask(value, checks)
    out = np.where(need, np.nan, value)
    quality = np.full((m, t), ord(Quality.ACTUAL.value), dtype=np.uint8)
    method = np.zeros((m, t), dtype=np.int8)

    # 1. Zero for a confirmed outage.
    zero = need & outage
    out[zero] = 0.0
    method[zero] = Method.ZERO_OUTAGE

    # 2. Linear interpolation of short runs between valid anchors.
    todo = need & ~outage
    length, first, last = runs(todo)
    rows = np.broadcast_to(np.arange(m)[:, None], (m, t))
    a = first - 1
    b = last + 1
    short = todo & (length * interval_s <= config.max_interpolation_s) & (a >= 0) & (b < t)
    a_safe = np.clip(a, 0, t - 1)
    b_safe = np.clip(b, 0, t - 1)
    ok = short & anchor[rows, a_safe] & anchor[rows, b_safe]
    cols = np.broadcast_to(np.arange(t)[None, :], (m, t))
    va = value[rows, a_safe]
    vb = value[rows, b_safe]
    with np.errstate(invalid="ignore", divide="ignore"):
        interpolated = va + (vb - va) * (cols - a) / (b - a)
    out[ok] = interpolated[ok]
    method[ok] = Method.LINEAR_INTERPOLATION
    todo &= ~ok

    # 3. Like day, whole days.
    if todo.any():
        source = like_day_sources(anchor, todo, calendar, config.like_day_weeks)
        take = todo & (source >= 0)
        if take.any():
            r, c = np.nonzero(take)
            out[r, c] = value[r, source[r, c]]
            method[take] = Method.LIKE_DAY
            todo &= ~take

    # 4. Null where nothing could be made.
    method[todo] = Method.NONE
    out[todo] = np.nan

    substituted = need
    quality[substituted] = ord(Quality.SUBSTITUTED.value)
    # Forward estimates: after the meter's last actual interval.
    actual = ~np.isnan(value) & ~need
    last_actual = np.where(actual.any(axis=1), t - 1 - np.argmax(actual[:, ::-1], axis=1), -1)
    forward = substituted & (cols > last_actual[:, None])
    quality[forward] = ord(Quality.ESTIMATED.value)
    final = substituted & ((cols < final_before[:, None]) | zero)
    quality[final] = ord(Quality.FINAL_SUBSTITUTE.value)
    quality[todo] = ord(Quality.NULL.value)
    return Estimates(out, quality, method)
