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
    out = np.full(todo.shape, -1, dtype=np.int64)
    rows, cols = np.nonzero(todo)
    if rows.size:
        members, local = np.unique(rows, return_inverse=True)
        out[rows, cols] = _like_day_cells(~anchor[members], local, cols, calendar, weeks)
    return out


def _like_day_cells(
    not_anchor: BOOL2, row: I64, col: I64, calendar: LocalCalendar, weeks: int
) -> I64:
    """The like-day source column of each cell ``(row, col)`` to substitute (-1: none).

    ``not_anchor`` holds only the rows the cells are on (``row`` indexes it): True where
    a cell cannot lend its value (missing, failed, or an outage).
    """
    n_days = calendar.days
    target = np.full(row.size, -1, dtype=np.int64)
    if row.size == 0 or n_days == 0:
        return target
    m = not_anchor.shape[0]
    day = calendar.day
    whole = calendar.whole_days()
    # Columns are in time order, so each local day is one run of columns.
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    run_day = day[starts]
    # complete[m, d]: every interval of day d is in the grid and a valid actual.
    spoilt = np.zeros((m, n_days), dtype=bool)
    spoilt[:, run_day] = np.logical_or.reduceat(not_anchor, starts, axis=1)
    complete = ~spoilt & whole[None, :]
    wanted = np.zeros((m, n_days), dtype=bool)
    wanted[row, day[col]] = True
    table = [
        like_day_offsets(weekday, holiday, weeks)
        for weekday in range(7)
        for holiday in (False, True)
    ]
    max_rank = max(len(entry) for entry in table)
    offsets = np.zeros((14, max_rank), dtype=np.int64)
    for i, entry in enumerate(table):
        offsets[i, : len(entry)] = entry
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
    chosen = like[row, day[col]]
    found = np.flatnonzero(chosen >= 0)
    slot = calendar.slot[col[found]]
    inside = slot < cell_of.shape[1]
    target[found[inside]] = cell_of[chosen[found[inside]], slot[inside]]
    return target


def _anchor_at(value: F64_2, checks: I64_2, row: I64, col: I64) -> BOOL2:
    """:func:`anchor_mask` at the cells ``(row, col)`` only."""
    mask: BOOL2 = ~np.isnan(value[row, col]) & ((checks[row, col] & _NOT_ANCHOR) == 0)
    return mask


def estimate(
    value: F64_2,
    checks: I64_2,
    interval_s: int,
    *,
    calendar: LocalCalendar,
    config: VeeConfig,
    final_before: I64,
    first_col: int = 0,
) -> Estimates:
    """Validated values for the cells of columns ``first_col`` on (see the module doc).

    ``final_before[m]`` is the first grid column of meter ``m`` that the meter still holds:
    substitutes left of it are final. The columns before ``first_col`` (the history) are
    read, for anchors, like days and the runs that reach into the window, but not
    estimated: the returned arrays hold columns ``first_col ..`` only.

    Only the cells that need a substitute are visited (they are a small part of a grid):
    they are listed once, in row-major order, and every step works on that list.
    """
    m, t = value.shape
    w = first_col
    need_row, window_col = np.nonzero((checks[:, w:] & int(SUBSTITUTE_ON)) != 0)
    need_col = window_col + w
    out = value[:, w:].copy()
    quality = np.full(out.shape, ord(Quality.ACTUAL.value), dtype=np.uint8)
    method = np.zeros(out.shape, dtype=np.int8)
    cell_method = np.full(need_row.size, Method.NONE, dtype=np.int8)
    cell_value = np.full(need_row.size, np.nan)

    # 1. Zero for a confirmed outage.
    zero = (checks[need_row, need_col] & int(Check.OUTAGE)) != 0
    cell_value[zero] = 0.0
    cell_method[zero] = Method.ZERO_OUTAGE

    # 2. Linear interpolation of short runs between valid anchors.
    todo = np.flatnonzero(~zero)
    row, col = need_row[todo], need_col[todo]
    if todo.size:
        # Runs of consecutive cells of one meter: a new run where the row changes or a
        # column is skipped.
        new = np.r_[True, (row[1:] != row[:-1]) | (col[1:] != col[:-1] + 1)]
        first_of = np.flatnonzero(new)
        listed = np.diff(np.r_[first_of, todo.size])  # the run's cells from first_col on
        run_row = row[first_of]
        a = col[first_of] - 1
        length = listed.copy()
        if w > 0:
            # A run that starts at first_col may go on back into the history.
            edge = np.flatnonzero(a == w - 1)
            if edge.size:
                rows_back = run_row[edge]
                back = checks[rows_back, :w]
                stop = ((back & int(SUBSTITUTE_ON)) == 0) | ((back & int(Check.OUTAGE)) != 0)
                stop = stop[:, ::-1]
                more = np.where(stop.any(axis=1), np.argmax(stop, axis=1), w)
                a[edge] -= more
                length[edge] += more
        b = a + length + 1
        short = (length * interval_s <= config.max_interpolation_s) & (a >= 0) & (b < t)
        a_safe, b_safe = np.clip(a, 0, t - 1), np.clip(b, 0, t - 1)
        ok_run = (
            short
            & _anchor_at(value, checks, run_row, a_safe)
            & _anchor_at(value, checks, run_row, b_safe)
        )
        ok = np.repeat(ok_run, listed)
        if ok.any():
            cell_a = np.repeat(a, listed)[ok]
            cell_b = np.repeat(b, listed)[ok]
            va = value[row[ok], cell_a]
            vb = value[row[ok], cell_b]
            picked = todo[ok]
            cell_value[picked] = va + (vb - va) * (col[ok] - cell_a) / (cell_b - cell_a)
            cell_method[picked] = Method.LINEAR_INTERPOLATION
            todo, row, col = todo[~ok], row[~ok], col[~ok]

    # 3. Like day, whole days.
    if todo.size:
        members = np.flatnonzero(np.bincount(row, minlength=m))
        local = np.zeros(m, dtype=np.int64)
        local[members] = np.arange(members.size)
        not_anchor = np.isnan(value[members])
        not_anchor |= (checks[members] & _NOT_ANCHOR) != 0
        source = _like_day_cells(not_anchor, local[row], col, calendar, config.like_day_weeks)
        take = source >= 0
        picked = todo[take]
        cell_value[picked] = value[row[take], source[take]]
        cell_method[picked] = Method.LIKE_DAY
        todo = todo[~take]

    # 4. Null where nothing could be made.
    out[need_row, window_col] = cell_value
    method[need_row, window_col] = cell_method
    cell_quality = np.full(need_row.size, ord(Quality.SUBSTITUTED.value), dtype=np.uint8)
    # Forward estimates: after the meter's last actual interval.
    last_actual = _last_actual(value, need_row, window_col, w)
    cell_quality[need_col > last_actual[need_row]] = ord(Quality.ESTIMATED.value)
    final = (need_col < final_before[need_row]) | zero
    cell_quality[final] = ord(Quality.FINAL_SUBSTITUTE.value)
    cell_quality[todo] = ord(Quality.NULL.value)
    quality[need_row, window_col] = cell_quality
    return Estimates(out, quality, method)


def _last_actual(value: F64_2, need_row: I64, window_col: I64, w: int) -> I64:
    """Each meter's last column from ``w`` on with an actual that needs no substitute (-1:
    none); the cells ``(need_row, window_col + w)`` are those that need one. (Where a
    meter's last actual is in the history, every cell from ``w`` on is after it, as it is
    after -1.)"""
    t = value.shape[1]
    actual = ~np.isnan(value[:, w:])
    actual[need_row, window_col] = False
    last: I64 = np.where(actual.any(axis=1), t - 1 - np.argmax(actual[:, ::-1], axis=1), -1)
    return last
