"""A rating plan: everything about one tariff on one interval grid that no meter changes.

Every meter of a bill run is rated on the same interval grid, so the calendar (local month,
hour, day type, billing cycle of each interval), the period of each interval, the runs of
equal (cycle, period), the demand windows and the groups they fall in are worked out once,
here, and reused for every chunk of meters (:func:`meterstack.tariff.rating.rate_with_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meterstack.core.time import zone
from meterstack.tariff.demand import DemandWindows, demand_windows
from meterstack.tariff.model import Tariff, parse_hours
from meterstack.tariff.schedule import Calendar, local_calendar, period_of
from meterstack.tariff.segments import Grouping, SegmentPlan, grouping, runs_of
from meterstack.tariff.tables import DemandTables, EnergyTables, demand_tables, energy_tables

__all__ = ["RatingPlan", "plan_on_calendar", "plan_rating", "segment_plan"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(eq=False)
class RatingPlan:
    """What rating ``tariff`` on ``calendar`` needs that does not depend on the meters.

    Attributes
    ----------
    energy_runs : Grouping
        Intervals by ``cycle * P + period`` (P energy periods).
    cycles : Grouping
        Intervals by cycle.
    windows : DemandWindows or None
        Demand windows, when the tariff has demand charges or kWh/kW blocks.
    hours, hour_runs : Grouping or None
        Net billing per hour: intervals by local clock hour; hours by ``cycle * P + period``.
    events : Grouping or None
        Critical-peak pricing: intervals by ``cycle * 2 + in_event``.
    proration : float array (K,)
        Share of each cycle the data cover (1 where the tariff does not prorate).
    segments : SegmentPlan or None
        Energy runs and demand windows for the one-pass compiled reduction (None with
        sliding windows).
    demand_window_min : int or None
        The demand window used: the tariff's, or the data's step where ``coarse_demand``
        allowed data coarser than the tariff's window.
    """

    tariff: Tariff
    calendar: Calendar
    energy: EnergyTables
    demand: DemandTables | None
    period: IntArray
    energy_runs: Grouping
    cycles: Grouping
    windows: DemandWindows | None
    hours: Grouping | None
    hour_runs: Grouping | None
    events: Grouping | None
    proration: Array
    segments: SegmentPlan | None
    demand_window_min: int | None = None

    @property
    def n_cycles(self) -> int:
        return self.calendar.n_cycles

    @property
    def n_intervals(self) -> int:
        return self.calendar.n_intervals

    @property
    def n_periods(self) -> int:
        return len(self.energy.names)


def _event_mask(tariff: Tariff, calendar: Calendar) -> NDArray[np.bool_]:
    cpp = tariff.energy.critical_peak
    if cpp is None:
        return np.zeros(calendar.n_intervals, dtype=bool)
    hours = {h % 24 for h in parse_hours(cpp.hours, "critical_peak.hours")}
    days = np.array(cpp.days, dtype="datetime64[D]")
    mask: NDArray[np.bool_] = np.isin(calendar.local_date, days) & np.isin(
        calendar.hour, sorted(hours)
    )
    return mask


def segment_plan(energy_runs: Grouping, windows: DemandWindows | None) -> SegmentPlan | None:
    """Segments for :func:`~meterstack.tariff.segments.segment_pass`, or None.

    Without demand, the segments are the energy runs. With windows of one interval, they
    are the runs of equal (energy run, demand group). With fixed windows of n intervals,
    they are the windows, provided none straddles two energy runs (periods change on the
    hour and windows of 5-60 min are aligned to the local clock, so none does).
    """
    n = energy_runs.n_positions
    if windows is None:
        return SegmentPlan(
            starts=np.append(energy_runs.starts, n),
            run=np.arange(energy_runs.n_runs, dtype=np.int64),
            group=np.full(energy_runs.n_runs, -1, dtype=np.int64),
            window=1,
            n_runs=energy_runs.n_runs,
            n_groups=0,
        )
    if windows.sliding:
        return None
    n_groups = windows.n_cycles * windows.n_periods
    labels = windows.groups.run_label
    if windows.per_window == 1:
        starts = np.union1d(energy_runs.starts, windows.groups.starts).astype(np.int64)
        run = np.searchsorted(energy_runs.starts, starts, side="right") - 1
        group = labels[np.searchsorted(windows.groups.starts, starts, side="right") - 1]
        group = np.where(group < n_groups, group, -1)
        window = 1
    else:
        assert windows.windows is not None
        starts = windows.windows.starts
        ends = np.append(starts[1:], n) - 1
        run = np.searchsorted(energy_runs.starts, starts, side="right") - 1
        if not np.array_equal(run, np.searchsorted(energy_runs.starts, ends, side="right") - 1):
            return None
        window_group = np.empty(windows.groups.n_positions, dtype=np.int64)
        bounds = np.append(windows.groups.starts, windows.groups.n_positions)
        window_group[:] = np.repeat(labels, np.diff(bounds))
        group = np.where(window_group < n_groups, window_group, -1)
        window = windows.per_window
    return SegmentPlan(
        starts=np.append(starts, n).astype(np.int64),
        run=run.astype(np.int64),
        group=group.astype(np.int64),
        window=window,
        n_runs=energy_runs.n_runs,
        n_groups=n_groups,
    )


def plan_on_calendar(tariff: Tariff, calendar: Calendar, coarse_demand: bool = False) -> RatingPlan:
    """The rating plan of ``tariff`` on a calendar already built.

    ``coarse_demand``: where the data's step is longer than the tariff's demand window,
    take the demand over the data's intervals instead of refusing the data. The demand of
    a longer window is an average over more time, so it can only be lower than the
    tariff's: an estimate for studies (NREL SAM does the same [1]_), not for billing.

    References
    ----------
    .. [1] NREL, SAM Help, "Electricity Rates: Demand Charges": demand is the peak power of
       the load data's time step.
    """
    k_n = calendar.n_cycles
    cycle = calendar.cycle
    et = energy_tables(tariff)
    p_n = len(et.names)
    per = period_of(calendar, et.weekday, et.weekend)
    dt = demand_tables(tariff)
    windows = None
    window: int | None = None
    if dt is not None or et.unit in ("kWh/kW", "kWh/kW/day"):
        window = tariff.demand.window_min if tariff.demand is not None else 15
        sliding = tariff.demand.sliding if tariff.demand is not None else False
        step_min = round(calendar.step_h * 60)
        if coarse_demand and step_min > window:
            window = step_min
        if dt is not None and dt.tou_names:
            dper = period_of(calendar, dt.weekday, dt.weekend)
            windows = demand_windows(calendar, window, sliding, dper, len(dt.tou_names))
        else:
            windows = demand_windows(calendar, window, sliding)
    hours = hour_runs = None
    if tariff.export.mode == "net_billing_hourly":
        hours = runs_of(calendar.hour_index)
        first = hours.starts
        hour_runs = grouping(cycle[first] * p_n + per[first], k_n * p_n)
    events = None
    mask = _event_mask(tariff, calendar)
    if mask.any():
        events = grouping(cycle * 2 + mask, k_n * 2)
    proration = (
        np.minimum(calendar.covered_days / calendar.cycle_days, 1.0)
        if tariff.billing.prorate
        else np.ones(k_n)
    )
    energy_runs = grouping(cycle * p_n + per, k_n * p_n)
    return RatingPlan(
        tariff=tariff,
        calendar=calendar,
        energy=et,
        demand=dt,
        period=per,
        energy_runs=energy_runs,
        cycles=grouping(cycle, k_n),
        windows=windows,
        hours=hours,
        hour_runs=hour_runs,
        events=events,
        proration=proration,
        segments=segment_plan(energy_runs, windows),
        demand_window_min=window,
    )


def plan_rating(
    tariff: Tariff, interval_end: NDArray[np.datetime64], coarse_demand: bool = False
) -> RatingPlan:
    """The rating plan of ``tariff`` for intervals ending at ``interval_end`` (UTC).

    Build it once per tariff and interval grid and rate any number of meters with it
    (:func:`meterstack.tariff.rating.rate_with_plan`). ``coarse_demand``: see
    :func:`plan_on_calendar`.
    """
    tz = zone(tariff.timezone)
    calendar = local_calendar(interval_end, tz, tariff.holidays, tariff.billing.cycle_day)
    return plan_on_calendar(tariff, calendar, coarse_demand)
