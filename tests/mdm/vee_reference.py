"""The straightforward full-grid VEE rules, kept as the reference for the optimised ones.

This is the vectorised implementation meterstack had before the sparse rewrite of
:mod:`meterstack.mdm.vee.validation` and :mod:`meterstack.mdm.vee.estimation` (every rule
evaluated on every cell of the meters x intervals grid, history included). The tests in
``test_vee_fast_path.py`` check that the optimised code gives bit-for-bit the same checks,
values, quality flags and methods on random grids.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meterstack.mdm.quality import SUBSTITUTE_ON, Check, Method, Quality
from meterstack.mdm.vee.estimation import Estimates, LocalCalendar
from meterstack.mdm.vee.likeday import like_day_offsets
from meterstack.mdm.vee.validation import ChannelGrid, VeeConfig, row_quantiles
from meterstack.meter.profile import ProfileStatus

F64_2 = npt.NDArray[np.float64]
BOOL2 = npt.NDArray[np.bool_]
I64_2 = npt.NDArray[np.int64]
I64 = npt.NDArray[np.int64]

_NOT_ANCHOR = int(SUBSTITUTE_ON | Check.POWER_FAILURE | Check.OUTAGE)


def runs(mask: BOOL2) -> tuple[I64_2, I64_2, I64_2]:
    """For every cell of ``mask`` (meters x intervals), the run of True cells it is in.

    Returns ``(length, first, last)``: the run's length and the time indices of its first
    and last cell; 0 / -1 / -1 for False cells. Runs never cross from one meter to the next.
    """
    m, t = mask.shape
    padded = np.zeros((m, t + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded.ravel())
    starts = np.flatnonzero(step == 1) + 1
    stops = np.flatnonzero(step == -1) + 1
    lengths = stops - starts
    length = np.zeros(padded.size, dtype=np.int64)
    first = np.full(padded.size, -1, dtype=np.int64)
    last = np.full(padded.size, -1, dtype=np.int64)
    if lengths.size:
        total = int(lengths.sum())
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cells = np.repeat(starts, lengths) + offsets
        length[cells] = np.repeat(lengths, lengths)
        row_start = (np.repeat(starts, lengths) // (t + 2)) * (t + 2) + 1
        first[cells] = np.repeat(starts, lengths) - row_start
        last[cells] = np.repeat(stops - 1, lengths) - row_start
    shape = (m, t + 2)
    return (
        length.reshape(shape)[:, 1:-1],
        first.reshape(shape)[:, 1:-1],
        last.reshape(shape)[:, 1:-1],
    )


def history_limits(
    value: F64_2, usable: BOOL2, window_start: int, config: VeeConfig
) -> tuple[F64_2, F64_2, F64_2]:
    """Per-meter high limit, low limit and spike floor from the meter's own history.

    Falls back to the window itself where a meter has fewer than
    ``config.min_history_intervals`` usable history intervals; NaN where neither has
    enough (the limit checks are then skipped for that meter).
    """
    hist = np.full(value.shape, np.nan)
    hist[:, :window_start] = np.where(usable[:, :window_start], value[:, :window_start], np.nan)
    count = np.sum(~np.isnan(hist), axis=1)
    whole = np.where(usable, value, np.nan)
    source = np.where((count < config.min_history_intervals)[:, None], whole, hist)
    enough = np.sum(~np.isnan(source), axis=1) >= config.min_history_intervals
    quantiles = np.full((value.shape[0], 3), np.nan)
    if enough.any():
        quantiles[enough] = row_quantiles(
            source[enough], (config.high_quantile, config.low_quantile, config.spike_quantile)
        )
    high = np.maximum(config.high_factor * quantiles[:, 0], config.min_high_limit)
    low = config.low_factor * quantiles[:, 1]
    spike_floor = quantiles[:, 2]
    high[~enough] = np.nan
    low[~enough] = np.nan
    spike_floor[~enough] = np.nan
    return high, low, spike_floor


def validate(
    grid: ChannelGrid,
    interval_s: int,
    window_start: int,
    config: VeeConfig,
    *,
    reverse_flow: BOOL2 | None = None,
    sum_check: BOOL2 | None = None,
    outage: BOOL2 | None = None,
) -> I64_2:
    """Check bits for every cell of ``grid`` (see :class:`~meterstack.mdm.quality.Check`)."""
    value = grid.value
    present = ~np.isnan(value)
    status = grid.status
    checks = np.zeros(value.shape, dtype=np.int64)

    def flag(mask: BOOL2, check: Check) -> None:
        np.bitwise_or(checks, int(check), out=checks, where=mask)

    flag(~present & ~grid.time_fail, Check.GAP)
    flag(grid.time_fail, Check.TIME_TOLERANCE)
    flag(present & ((status & ProfileStatus.POWER_DOWN) != 0), Check.POWER_FAILURE)
    flag(present & ((status & ProfileStatus.CLOCK_ADJUSTED) != 0), Check.CLOCK_CHANGE)
    flag(present & ((status & ProfileStatus.TAMPER) != 0), Check.TAMPER)
    invalid = (
        ProfileStatus.DATA_NOT_VALID | ProfileStatus.CRITICAL_ERROR | ProfileStatus.CLOCK_INVALID
    )
    flag(present & ((status & invalid) != 0), Check.DATA_NOT_VALID)
    if outage is not None:
        flag(outage, Check.OUTAGE)
    meter_flagged = (
        checks & int(Check.CLOCK_CHANGE | Check.DATA_NOT_VALID | Check.POWER_FAILURE)
    ) != 0
    usable = present & ~meter_flagged
    if outage is not None:
        usable &= ~outage

    high, low, spike_floor = history_limits(value, usable, window_start, config)
    with np.errstate(invalid="ignore"):
        flag(present & (value > high[:, None]), Check.HIGH_LIMIT)
        flag(present & (value < low[:, None]), Check.LOW_LIMIT)
        left = np.full(value.shape, np.nan)
        right = np.full(value.shape, np.nan)
        left[:, 1:] = value[:, :-1]
        right[:, :-1] = value[:, 1:]
        neighbours = np.fmax(left, right)
        both = ~np.isnan(left) & ~np.isnan(right)
        spike = (
            present
            & both
            & (value > config.spike_ratio * neighbours)
            & (value > spike_floor[:, None])
        )
    flag(spike, Check.SPIKE)

    zero_cells = max(1, config.zero_run_s // interval_s)
    flat_cells = max(1, config.flat_run_s // interval_s)
    zero = present & (value == 0)
    zero_length, _, _ = runs(zero)
    flag(zero & (zero_length >= zero_cells), Check.ZERO_RUN)
    same = np.zeros(value.shape, dtype=bool)
    same[:, 1:] = (
        present[:, 1:] & present[:, :-1] & (value[:, 1:] == value[:, :-1]) & (value[:, 1:] != 0)
    )
    # A flat run of k equal values has k - 1 "same as previous" cells; count its first too.
    flat = same.copy()
    flat[:, :-1] |= same[:, 1:]
    flat_length, _, _ = runs(flat)
    flag(flat & (flat_length >= flat_cells), Check.FLAT_LINE)
    if reverse_flow is not None:
        flag(reverse_flow, Check.REVERSE_FLOW)
    if sum_check is not None:
        flag(sum_check, Check.SUM_CHECK)
    return checks


def anchor_mask(value: F64_2, checks: I64_2) -> BOOL2:
    """Cells usable as an anchor or a like-day source: valid actual, no outage."""
    mask: BOOL2 = ~np.isnan(value) & ((checks & _NOT_ANCHOR) == 0)
    return mask


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


def _grid_positions(ends: I64, grid_start: int, interval_s: int, t: int) -> tuple[I64, I64]:
    """Column of each reading (-1 off the grid) and its offset from the column's end [s]."""
    rel = ends - grid_start
    col = (rel + interval_s // 2) // interval_s - 1
    offset = rel - (col + 1) * interval_s
    col[(col < 0) | (col >= t)] = -1
    return col, offset


def build_grid(
    rows: dict[str, np.ndarray],
    select: npt.NDArray[np.bool_],
    row_of: npt.NDArray[np.int64],
    *,
    m: int,
    t: int,
    grid_start: int,
    interval_s: int,
    config: VeeConfig,
) -> tuple[ChannelGrid, I64]:
    """Place the raw readings ``select`` picks on an ``m x t`` grid, the ``k``-th of them on
    row ``row_of[k]``; returns the grid and each cell's ``received_at`` (-1 where empty)."""
    value = np.full((m, t), np.nan)
    status = np.zeros((m, t), dtype=np.int64)
    time_fail = np.zeros((m, t), dtype=bool)
    received = np.full((m, t), -1, dtype=np.int64)
    col, offset = _grid_positions(rows["interval_end"][select], grid_start, interval_s, t)
    on = col >= 0
    within = on & (np.abs(offset) <= config.time_tolerance_s)
    r, c = row_of[within], col[within]
    if (offset[within] != 0).any():
        # Closest reading wins a cell: write the farthest first.
        order = np.argsort(-np.abs(offset[within]), kind="stable")
        r, c = r[order], c[order]
        picked = np.flatnonzero(select)[np.flatnonzero(within)[order]]
    else:
        picked = np.flatnonzero(select)[within]
    value[r, c] = rows["value"][picked]
    status[r, c] = rows["status"][picked]
    received[r, c] = rows["received_at"][picked]
    off = on & ~within
    time_fail[row_of[off], col[off]] = True
    time_fail &= np.isnan(value)
    return ChannelGrid(value, status, time_fail), received
