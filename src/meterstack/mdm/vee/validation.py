"""Validation rules over a meters x intervals grid of one channel, all vectorised.

Each rule returns a boolean grid; :func:`validate` combines them into a grid of
:class:`~meterstack.mdm.quality.Check` bits. The grid's first ``window_start`` columns
are history (the meter's own past, used for its limits); VEE reports on the rest.

Limits against the meter's own history [1]_ [2]_: for every meter, from its valid history
intervals,

    high limit = high_factor * Q(high_quantile),   Q: empirical quantile [channel unit]
    low limit  = low_factor  * Q(low_quantile)

and a spike is an interval that is both above ``spike_ratio`` times the larger of its two
neighbours and above the meter's ``spike_quantile`` of history. A zero (flat-line) run is
``zero_run_s`` (``flat_run_s``) seconds or more of zero (identical non-zero) values. The
sum check compares the intervals between two register reads with the register's advance:

    | sum(E_i, t_a < end_i <= t_b) - (R(t_b) - R(t_a)) |
        <= max(abs_tol, rel_tol * |R(t_b) - R(t_a)|)

References
----------
.. [1] AEMO, Metrology Procedure: Part B, Metering Data Validation, Substitution and
   Estimation Procedure for Metering Types 1-7, validation of interval metering data
   (comparison with the meter's history, check against the accumulated register, meter
   alarms and event flags).
.. [2] Edison Electric Institute / AEIC, Uniform Business Practices for Unbundled
   Electricity Metering, Vol. 2: VEE (high/low usage, spike, zero and time tolerance checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.mdm.quality import Check
from meterstack.mdm.vee.runs import long_run_cells
from meterstack.meter.profile import ProfileStatus

F64_2 = npt.NDArray[np.float64]
BOOL2 = npt.NDArray[np.bool_]
I64_2 = npt.NDArray[np.int64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class VeeConfig:
    """Thresholds of validation and estimation (units: the channel's, seconds)."""

    time_tolerance_s: int = 60
    high_factor: float = 3.0
    high_quantile: float = 0.99
    min_high_limit: float = 0.0
    low_factor: float = 0.0
    low_quantile: float = 0.01
    spike_ratio: float = 4.0
    spike_quantile: float = 0.95
    zero_run_s: int = 86_400
    flat_run_s: int = 86_400
    reverse_flow_threshold: float = 0.0
    sum_abs_tolerance: float = 1.0
    sum_rel_tolerance: float = 0.005
    max_interpolation_s: int = 7_200
    like_day_weeks: int = 4
    min_history_intervals: int = 48


@dataclass
class ChannelGrid:
    """One channel of a group of meters on a common grid of interval ends.

    Attributes
    ----------
    value : (M, T) float
        Interval values; NaN where nothing arrived. [channel unit]
    status : (M, T) int
        The meter's load-profile status word (0 where nothing arrived).
    time_fail : (M, T) bool
        A reading arrived for the cell but its ``interval_end`` was off the grid by more
        than the time tolerance: it cannot be placed.
    """

    value: F64_2
    status: I64_2
    time_fail: BOOL2


def row_quantiles(values: F64_2, q: tuple[float, ...]) -> F64_2:
    """Empirical quantiles ``q`` of each row of ``values``, NaNs left out, all rows at once.

    The same linear interpolation as ``numpy.nanquantile`` (Hyndman and Fan type 7): of
    the ``n`` sorted valid values ``x_0 <= ... <= x_(n-1)``, with ``h = (n - 1) q``,

        Q(q) = x_floor(h) + (h - floor(h)) (x_(floor(h)+1) - x_floor(h))

    Rows with no valid value give NaN.
    """
    ordered = np.sort(values, axis=1)  # NaNs sort last
    n = np.sum(~np.isnan(values), axis=1)
    out = np.full((values.shape[0], len(q)), np.nan)
    rows = np.arange(values.shape[0])
    has = n > 0
    for k, fraction in enumerate(q):
        h = (n - 1) * fraction
        low = np.floor(h).astype(np.int64)
        high = np.minimum(low + 1, n - 1)
        low_v = ordered[rows[has], low[has]]
        high_v = ordered[rows[has], high[has]]
        out[has, k] = low_v + (h[has] - low[has]) * (high_v - low_v)
    return out


def history_limits(
    value: F64_2, usable: BOOL2, window_start: int, config: VeeConfig
) -> tuple[F64_2, F64_2, F64_2]:
    """Per-meter high limit, low limit and spike floor from the meter's own history.

    Falls back to the window itself where a meter has fewer than
    ``config.min_history_intervals`` usable history intervals; NaN where neither has
    enough (the limit checks are then skipped for that meter). Only the rows and columns
    each meter's limits come from are sorted.
    """
    m = value.shape[0]
    valid = usable & ~np.isnan(value)
    in_history = np.count_nonzero(valid[:, :window_start], axis=1)
    from_history = in_history >= config.min_history_intervals
    enough = from_history.copy()
    fallback = np.flatnonzero(~from_history)
    if fallback.size:
        enough[fallback] = np.count_nonzero(valid[fallback], axis=1) >= config.min_history_intervals
    quantiles = np.full((m, 3), np.nan)
    q = (config.high_quantile, config.low_quantile, config.spike_quantile)
    for rows, width in (
        (np.flatnonzero(from_history), window_start),
        (np.flatnonzero(enough & ~from_history), value.shape[1]),
    ):
        if rows.size == m:  # every row: no copy to pick them
            quantiles[:] = row_quantiles(np.where(valid[:, :width], value[:, :width], np.nan), q)
        elif rows.size:
            source = np.where(valid[rows, :width], value[rows, :width], np.nan)
            quantiles[rows] = row_quantiles(source, q)
    high = np.maximum(config.high_factor * quantiles[:, 0], config.min_high_limit)
    low = config.low_factor * quantiles[:, 1]
    spike_floor = quantiles[:, 2]
    high[~enough] = np.nan
    low[~enough] = np.nan
    spike_floor[~enough] = np.nan
    return high, low, spike_floor


_METER_FLAGS = (
    (int(ProfileStatus.POWER_DOWN), int(Check.POWER_FAILURE)),
    (int(ProfileStatus.CLOCK_ADJUSTED), int(Check.CLOCK_CHANGE)),
    (int(ProfileStatus.TAMPER), int(Check.TAMPER)),
    (
        int(
            ProfileStatus.DATA_NOT_VALID
            | ProfileStatus.CRITICAL_ERROR
            | ProfileStatus.CLOCK_INVALID
        ),
        int(Check.DATA_NOT_VALID),
    ),
)
_UNUSABLE = int(Check.CLOCK_CHANGE | Check.DATA_NOT_VALID | Check.POWER_FAILURE)


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
    """Check bits for every cell of ``grid`` (see :class:`~meterstack.mdm.quality.Check`).

    Only the gap check is a whole-grid pass; the others find their (few) failing cells
    first and set bits on those alone.
    """
    value = grid.value
    t = value.shape[1]
    present = ~np.isnan(value)
    gap = ~present
    gap &= ~grid.time_fail
    checks: I64_2 = np.multiply(gap, int(Check.GAP), dtype=np.int64)
    flat_checks = checks.reshape(-1)

    def flag(cells: I64, check: int) -> None:
        flat_checks[cells] |= check

    def flag_mask(mask: BOOL2, check: int) -> None:
        flag(np.flatnonzero(mask), check)

    flag_mask(grid.time_fail, int(Check.TIME_TOLERANCE))
    # The meter's status word: only cells with a non-zero status can raise a flag.
    status = grid.status.reshape(-1)
    flagged = np.flatnonzero(status)
    flagged = flagged[present.reshape(-1)[flagged]]
    if flagged.size:
        words = status[flagged]
        bits = np.zeros(flagged.size, dtype=np.int64)
        for mask, check in _METER_FLAGS:
            bits[(words & mask) != 0] |= check
        flat_checks[flagged] |= bits
    if outage is not None:
        flag_mask(outage, int(Check.OUTAGE))
    usable = present.copy()
    usable.reshape(-1)[flagged[(flat_checks[flagged] & _UNUSABLE) != 0]] = False
    if outage is not None:
        usable &= ~outage

    high, low, spike_floor = history_limits(value, usable, window_start, config)
    with np.errstate(invalid="ignore"):
        # A NaN value or limit compares False: no limit, or nothing to judge.
        flag_mask(value > high[:, None], int(Check.HIGH_LIMIT))
        flag_mask(value < low[:, None], int(Check.LOW_LIMIT))
        if t >= 3:
            # A spike is above the meter's spike floor (few cells) and above spike_ratio
            # times the larger of two present neighbours.
            r, c = np.nonzero(value[:, 1:-1] > spike_floor[:, None])
            c += 1
            here, left, right = value[r, c], value[r, c - 1], value[r, c + 1]
            spike = (
                ~np.isnan(left)
                & ~np.isnan(right)
                & (here > config.spike_ratio * np.fmax(left, right))
            )
            flag(r[spike] * t + c[spike], int(Check.SPIKE))

    zero_cells = max(1, config.zero_run_s // interval_s)
    flat_cells = max(1, config.flat_run_s // interval_s)
    flag(long_run_cells(value == 0, zero_cells), int(Check.ZERO_RUN))
    # NaN is never equal to anything, so "same" implies both cells present.
    same = np.zeros(value.shape, dtype=bool)
    np.equal(value[:, 1:], value[:, :-1], out=same[:, 1:])
    same[:, 1:] &= value[:, 1:] != 0
    # A flat run of k equal values has k - 1 "same as previous" cells; count its first too.
    flat = same.copy()
    flat[:, :-1] |= same[:, 1:]
    flag(long_run_cells(flat, flat_cells), int(Check.FLAT_LINE))
    if reverse_flow is not None:
        flag_mask(reverse_flow, int(Check.REVERSE_FLOW))
    if sum_check is not None:
        flag_mask(sum_check, int(Check.SUM_CHECK))
    return checks


def sum_check_failures(
    value: F64_2,
    register_row: npt.NDArray[np.int64],
    register_col: npt.NDArray[np.int64],
    register_value: npt.NDArray[np.float64],
    config: VeeConfig,
) -> BOOL2:
    """Cells between two consecutive register reads whose intervals do not add up to the
    register's advance (see the module doc). Register read ``k`` is at the end of grid
    column ``register_col[k]`` of meter row ``register_row[k]``; a period with a missing
    interval is not judged.
    """
    m, t = value.shape
    failed = np.zeros((m, t), dtype=bool)
    if register_row.size < 2:
        return failed
    order = np.lexsort((register_col, register_row))
    row, col, reg = register_row[order], register_col[order], register_value[order]
    pair = row[1:] == row[:-1]
    a_row, a_col, b_col = row[:-1][pair], col[:-1][pair], col[1:][pair]
    delta = reg[1:][pair] - reg[:-1][pair]
    filled = np.nan_to_num(value, nan=0.0)
    cumulative = np.zeros((m, t + 1))
    cumulative[:, 1:] = np.cumsum(filled, axis=1)
    missing = np.zeros((m, t + 1), dtype=np.int64)
    missing[:, 1:] = np.cumsum(np.isnan(value), axis=1)
    # Intervals a+1 .. b (grid columns), i.e. cumulative indices a+1 .. b+1.
    total = cumulative[a_row, b_col + 1] - cumulative[a_row, a_col + 1]
    holes = missing[a_row, b_col + 1] - missing[a_row, a_col + 1]
    tolerance = np.maximum(config.sum_abs_tolerance, config.sum_rel_tolerance * np.abs(delta))
    bad = (holes == 0) & (np.abs(total - delta) > tolerance) & (b_col > a_col)
    marks = np.zeros((m, t + 1), dtype=np.int64)
    np.add.at(marks, (a_row[bad], a_col[bad] + 1), 1)
    np.add.at(marks, (a_row[bad], b_col[bad] + 1), -1)
    failed = np.cumsum(marks, axis=1)[:, :t] > 0
    return failed
