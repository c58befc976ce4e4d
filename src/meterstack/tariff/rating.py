"""Vectorised rating: a fleet's interval data in, per-cycle charge components out.

:func:`rate` takes (meters x intervals) arrays and returns a :class:`RatingResult` of
(meters x cycles) arrays, one per component of a bill. Floats are used throughout; the bill
documents (:mod:`meterstack.billing`) turn them into ``Decimal`` line items.

Order of a bill (each step uses the ones before it):

1. energy: blocks are filled in time order by the cycle's cumulative consumption, each kWh
   priced at the (period, block) it falls in; under net metering the cycle's net kWh fill
   the blocks instead (:mod:`meterstack.tariff.net_metering`);
2. demand: flat and time-of-use, on the tariff's demand window, with ratchets;
3. power factor and reactive charges (:mod:`meterstack.tariff.power_factor`);
4. fixed charges, prorated by the days a partial cycle covers;
5. minimum charge: ``max(0, minimum - max(bill, 0))``;
6. taxes: percent of the bill and per imported kWh.

How it is fast: what does not depend on the meters (calendar, periods, runs of equal
(cycle, period), demand windows) is a :class:`~meterstack.tariff.plan.RatingPlan`, built
once per tariff and interval grid; meters are rated in chunks that fit the processor's
cache, each chunk in one compiled pass over its data (Numba), or a few NumPy passes
(segment sums and maxima, :mod:`meterstack.tariff.segments`); blocks are split on run sums,
not on intervals, which is exact because a run lies in one (cycle, period) and blocks are
filled in time order.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from meterstack.tariff.blocks import tiered_charge
from meterstack.tariff.demand import ratchet_billing_demand
from meterstack.tariff.errors import LoadDataError
from meterstack.tariff.model import Tariff
from meterstack.tariff.net_metering import net_metering_credit, net_metering_kwh
from meterstack.tariff.plan import RatingPlan, plan_on_calendar, plan_rating
from meterstack.tariff.power_factor import (
    billing_power_factor,
    demand_from_kva,
    demand_ratio_adjustment,
    excess_kvarh,
    percent_per_step_adjustment,
)
from meterstack.tariff.schedule import Calendar
from meterstack.tariff.segments import (
    Grouping,
    compiled_run_blocks,
    compiled_segment_pass,
    grouping,
    run_sums,
)
from meterstack.tariff.tables import DemandTables, EnergyTables

__all__ = [
    "COMPONENTS",
    "RatingResult",
    "blocks_of_runs",
    "chronological_blocks",
    "rate",
    "rate_on_calendar",
    "rate_with_plan",
]

COMPONENTS = ("fixed", "energy", "demand", "pf", "minimum", "taxes", "export_credit", "total")
Array = NDArray[np.float64]

_CHUNK_VALUES = 1 << 20
"""Interval values per chunk of meters (8 MiB of float64): small enough for the cache."""
_CHUNK_VALUES_COMPILED = 1 << 22
"""The same with the compiled one-pass reduction, which reads each value once."""
_COMPILED_MIN_METERS = 64
"""Chunks of fewer meters are reduced with NumPy: not worth compiling for."""


@dataclass
class RatingResult:
    """Charges of M meters over K billing cycles (all money in currency units, floats).

    ``total = fixed + energy + demand + pf + minimum + taxes - export_credit``.
    """

    tariff: Tariff
    cycle_labels: list[str]
    fixed: Array
    energy: Array
    demand: Array
    pf: Array
    minimum: Array
    taxes: Array
    export_credit: Array
    total: Array
    import_kwh: Array
    export_kwh: Array
    energy_kwh: Array  # (M, K, P, B) billed kWh per period and block
    energy_cost: Array  # (M, K, P, B)
    energy_extra: Array  # (M, K) real-time and critical-peak charges
    demand_flat_kw: Array  # (M, K) billed flat demand
    demand_flat_cost: Array
    demand_tou_kw: Array  # (M, K, Pd)
    demand_tou_cost: Array
    power_factor: Array  # (M, K)
    pf_billed_kw: Array  # (M, K) flat demand after the PF adjustment
    reactive_cost: Array  # (M, K)
    fixed_detail: Array  # (M, K, F)
    tax_detail: Array  # (M, K, X)
    proration: Array  # (K,)
    period_names: list[str] = field(default_factory=list)
    block_limits: Array = field(default_factory=lambda: np.zeros(0))
    demand_window_min: int | None = None  # the window used (the data's step if coarser)

    @property
    def n_meters(self) -> int:
        return int(self.total.shape[0])


_PER_METER = (
    "fixed",
    "energy",
    "demand",
    "pf",
    "minimum",
    "taxes",
    "export_credit",
    "total",
    "import_kwh",
    "export_kwh",
    "energy_kwh",
    "energy_cost",
    "energy_extra",
    "demand_flat_kw",
    "demand_flat_cost",
    "demand_tou_kw",
    "demand_tou_cost",
    "power_factor",
    "pf_billed_kw",
    "reactive_cost",
    "fixed_detail",
    "tax_detail",
)


def _as_energy(name: str, values: Array | None, shape: tuple[int, ...]) -> Array | None:
    """(M, T) C-contiguous float64 view or copy of ``values``; shape checked, values not."""
    if values is None:
        return None
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape != shape:
        raise LoadDataError(name, arr.shape, f"expected shape {shape} (meters x intervals)")
    return arr


def _locate_bad(name: str, arr: Array, first_meter: int) -> NoReturn:
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        m, t = (int(i[0]) for i in np.nonzero(bad))
        raise LoadDataError(
            f"{name}[{m + first_meter}, {t}]", float(arr[m, t]), "must be finite and >= 0"
        )
    raise LoadDataError(name, None, "values so large that their sums overflow")


def _check_values(name: str, arr: Array | None, first_meter: int) -> None:
    """Negative values and NaN (``min`` is NaN or < 0); +inf shows in the sums later."""
    if arr is not None and arr.size and not arr.min() >= 0:
        _locate_bad(name, arr, first_meter)


def _check_sums(name: str, arr: Array, sums: Array, first_meter: int) -> None:
    if not np.isfinite(sums).all():
        _locate_bad(name, arr, first_meter)


def rate(  # noqa: PLR0917
    tariff: Tariff,
    interval_end: NDArray[np.datetime64],
    import_kwh: Array,
    export_kwh: Array | None = None,
    kvarh: Array | None = None,
    price_series: Array | None = None,
    demand_history_kw: Array | None = None,
    meters_per_site: Array | None = None,
    *,
    threads: int = 1,
    compiled: bool | None = None,
    coarse_demand: bool = False,
) -> RatingResult:
    """Rate M meters' interval data under ``tariff``.

    Parameters
    ----------
    tariff : Tariff
    interval_end : datetime64 array (T,)
        UTC end of each interval, fixed step of 5 to 60 min.
    import_kwh : array (M, T) or (T,)
        Energy taken from the grid in each interval. [kWh]
    export_kwh : array (M, T), optional
        Energy sent to the grid. [kWh]
    kvarh : array (M, T), optional
        Reactive energy (magnitude). [kvarh]
    price_series : array (T,), optional
        Real-time price per interval, needed when ``tariff.energy.price_series``. [currency/kWh]
    demand_history_kw : array (M, H), optional
        Peak demand of the H cycles before the first, for ratchets. [kW]
    meters_per_site : array (M,), optional
        Number of meters, for fixed charges ``per: meter`` (default 1).
    threads : int
        Chunks of meters rated at once (NumPy and the compiled pass release the GIL).
    compiled : bool, optional
        Reduce intervals with the compiled one-pass kernel (Numba): True where available,
        False never, None (default) for calls of at least 64 meters. Results agree with
        the NumPy path to rounding (about 1e-15 relative).
    coarse_demand : bool
        Accept data whose step is longer than the tariff's demand window and take the
        demand over the data's intervals (an estimate; see
        :func:`meterstack.tariff.plan.plan_on_calendar`). By default such data are refused.

    To rate many chunks of meters on one interval grid, build the plan once
    (:func:`meterstack.tariff.plan.plan_rating`) and call :func:`rate_with_plan`.
    """
    return rate_with_plan(
        plan_rating(tariff, interval_end, coarse_demand),
        import_kwh,
        export_kwh,
        kvarh,
        price_series,
        demand_history_kw,
        meters_per_site,
        threads=threads,
        compiled=compiled,
    )


def rate_on_calendar(  # noqa: PLR0917
    tariff: Tariff,
    calendar: Calendar,
    import_kwh: Array,
    export_kwh: Array | None = None,
    kvarh: Array | None = None,
    price_series: Array | None = None,
    demand_history_kw: Array | None = None,
    meters_per_site: Array | None = None,
    *,
    coarse_demand: bool = False,
) -> RatingResult:
    """:func:`rate` on a calendar already built (see :mod:`meterstack.tariff.schedule`)."""
    return rate_with_plan(
        plan_on_calendar(tariff, calendar, coarse_demand),
        import_kwh,
        export_kwh,
        kvarh,
        price_series,
        demand_history_kw,
        meters_per_site,
    )


def rate_with_plan(  # noqa: PLR0917
    plan: RatingPlan,
    import_kwh: Array,
    export_kwh: Array | None = None,
    kvarh: Array | None = None,
    price_series: Array | None = None,
    demand_history_kw: Array | None = None,
    meters_per_site: Array | None = None,
    *,
    threads: int = 1,
    chunk_meters: int | None = None,
    compiled: bool | None = None,
) -> RatingResult:
    """:func:`rate` with a plan built once for the tariff and the interval grid.

    Parameters
    ----------
    plan : RatingPlan
        From :func:`meterstack.tariff.plan.plan_rating` (or ``plan_on_calendar``).
    import_kwh, export_kwh, kvarh, price_series, demand_history_kw, meters_per_site
        As in :func:`rate`.
    threads : int
        Chunks rated at once.
    chunk_meters : int, optional
        Meters per chunk (default: about 2**20 interval values per chunk, 2**22 with the
        compiled pass).
    compiled : bool, optional
        As in :func:`rate`.
    """
    t_n = plan.n_intervals
    imp_in = np.asarray(import_kwh)
    m_n = imp_in.shape[0] if imp_in.ndim == 2 else 1
    shape = (m_n, t_n)
    imp = _as_energy("import_kwh", import_kwh, shape)
    assert imp is not None
    exp = _as_energy("export_kwh", export_kwh, shape)
    kvar = _as_energy("kvarh", kvarh, shape)
    price = None
    if plan.tariff.energy.price_series:
        if price_series is None or np.asarray(price_series).shape != (t_n,):
            raise LoadDataError(
                "price_series", None, f"this tariff needs a price per interval ({t_n} values)"
            )
        price = np.asarray(price_series, dtype=np.float64)
        if not np.isfinite(price).all():
            i = int(np.flatnonzero(~np.isfinite(price))[0])
            raise LoadDataError(f"price_series[{i}]", float(price[i]), "must be finite")
    hist = None if demand_history_kw is None else np.asarray(demand_history_kw, dtype=np.float64)
    meters = (
        np.ones(m_n)
        if meters_per_site is None
        else np.broadcast_to(np.asarray(meters_per_site, dtype=np.float64), (m_n,))
    )
    # Numba is imported and the kernels compiled only for bulk work (or when asked for).
    wanted = compiled is True or (compiled is None and m_n >= _COMPILED_MIN_METERS)
    kernel = compiled_segment_pass() if wanted and plan.segments else None
    values = _CHUNK_VALUES_COMPILED if kernel is not None else _CHUNK_VALUES
    step = chunk_meters if chunk_meters is not None else max(1, values // max(t_n, 1))
    if chunk_meters is None and m_n > step:  # even chunks: no small remainder at the end
        step = -(-m_n // -(-m_n // step))
    bounds = [(a, min(a + step, m_n)) for a in range(0, m_n, step)] or [(0, 0)]

    def one(span: tuple[int, int]) -> dict[str, Array]:
        a, b = span
        return _rate_chunk(
            plan,
            imp[a:b],
            None if exp is None else exp[a:b],
            None if kvar is None else kvar[a:b],
            price,
            None if hist is None else hist[a:b],
            meters[a:b],
            a,
            kernel,
        )

    if threads > 1 and len(bounds) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(one, bounds))
    else:
        parts = [one(span) for span in bounds]
    joined = (
        parts[0]
        if len(parts) == 1
        else {name: np.concatenate([p[name] for p in parts], axis=0) for name in _PER_METER}
    )
    return RatingResult(
        tariff=plan.tariff,
        cycle_labels=plan.calendar.cycle_labels,
        proration=plan.proration,
        period_names=plan.energy.names,
        block_limits=plan.energy.limit,
        demand_window_min=plan.demand_window_min,
        **joined,
    )


def _limits(tables: EnergyTables, calendar: Calendar, proration: Array, billing_kw: Array) -> Array:
    """Block limits of each meter and cycle (M, K, B) in kWh."""
    base = tables.limit[None, None, :]
    days = calendar.covered_days[None, :, None]
    kw = billing_kw[:, :, None]
    if tables.unit == "kWh":
        limits = base * proration[None, :, None]
    elif tables.unit == "kWh/day":
        limits = base * days
    elif tables.unit == "kWh/kW":
        limits = base * kw * proration[None, :, None]
    else:
        limits = base * kw * days
    limits = np.where(np.isfinite(base), limits, np.inf)
    result: Array = np.broadcast_to(
        limits, (billing_kw.shape[0], calendar.n_cycles, tables.n_blocks)
    ).copy()
    return result


def blocks_of_runs(  # noqa: PLR0917
    sums: Array,
    runs: Grouping,
    n_cycles: int,
    n_periods: int,
    limits: Array,
    compiled: bool = False,
) -> Array:
    """kWh per (cycle, period, block) from the sums of runs, blocks filled in time order.

    Blocks are filled by the cycle's cumulative consumption C. A run r (one cycle, one
    period) spans ``(C_{r-1}, C_r]``; the part of it at or below a block limit L is

        u_r(L) = min(C_r, L) - min(C_{r-1}, L)

    which is the sum of the same expression over the run's intervals (it telescopes), so
    splitting runs instead of intervals changes nothing. Block b of a (cycle, period) holds
    ``sum_r u_r(L_b) - sum_r u_r(L_{b-1})`` over the runs of that (cycle, period), with
    ``u(L_{-1}) = 0`` and ``u(L_{B-1} = inf)`` the whole sum.

    Parameters
    ----------
    sums : array (M, R)
        Energy of each run, >= 0. [kWh]
    runs : Grouping
        Runs labelled ``cycle * n_periods + period``, in time order.
    limits : array (M, K, B)
        Upper limit of each block of each cycle (``inf`` for the last). [kWh]
    compiled : bool
        Use the compiled loop (:func:`meterstack.tariff.segments.run_blocks`) if Numba is
        there.

    Returns
    -------
    array (M, K, P, B) [kWh]
    """
    m_n = sums.shape[0]
    b_n = limits.shape[2]
    kernel = compiled_run_blocks() if compiled and b_n > 1 else None
    if kernel is not None:
        split = np.empty((m_n, n_cycles * n_periods, b_n))
        kernel(
            np.ascontiguousarray(sums),
            runs.run_label // n_periods,
            runs.run_label,
            np.ascontiguousarray(limits),
            split,
        )
        return split.reshape(m_n, n_cycles, n_periods, b_n)
    total = runs.sums_of_runs(sums)  # (M, K * P)
    out = np.empty((m_n, n_cycles * n_periods, b_n))
    if b_n == 1:
        out[:, :, 0] = total
        return out.reshape(m_n, n_cycles, n_periods, 1)
    # Runs along the first axis from here on: each step works on whole rows of meters.
    run_cycle = runs.run_label // n_periods
    cum = _cumulative_by_cycle(sums, run_cycle)  # (R, M)
    prev = cum - sums.T
    to_groups = runs.onehot().T  # (G, R)
    below_prev = np.zeros((n_cycles * n_periods, m_n))
    for b in range(b_n - 1):
        per_cycle = limits[:, :, b].T  # (K, M)
        limit = per_cycle if n_cycles == 1 else per_cycle[run_cycle]
        below = to_groups @ (np.minimum(cum, limit) - np.minimum(prev, limit))
        out[:, :, b] = (below - below_prev).T
        below_prev = below
    out[:, :, b_n - 1] = total - below_prev.T
    return out.reshape(m_n, n_cycles, n_periods, b_n)


def _cumulative_by_cycle(sums: Array, run_cycle: NDArray[np.int64]) -> Array:
    """Running sum of runs within each cycle, (M, R) in, (R, M) out.

    NumPy's ``cumsum`` along a short axis is slow (about 3 ns a value); for many meters,
    adding whole rows of the transposed array run after run is faster.
    """
    m_n, r_n = sums.shape
    restart = np.concatenate([[False], run_cycle[1:] != run_cycle[:-1]])
    if m_n < 256:
        cum = np.cumsum(sums, axis=1)
        first = np.flatnonzero(restart)
        if first.size:
            step = np.zeros((m_n, r_n))
            step[:, first] = np.diff(cum[:, first - 1], axis=1, prepend=0.0)
            cum -= np.cumsum(step, axis=1)
        return np.ascontiguousarray(cum.T)
    running = np.ascontiguousarray(sums.T)
    for r in range(1, r_n):
        if not restart[r]:
            np.add(running[r], running[r - 1], out=running[r])
    return running


def chronological_blocks(
    quantity: Array,
    period: NDArray[np.int64],
    cycle: NDArray[np.int64],
    limits: Array,
    n_periods: int,
) -> Array:
    """kWh per (cycle, period, block), blocks filled in time order within each cycle.

    Parameters
    ----------
    quantity : array (M, T)
        Energy per interval, >= 0. [kWh]
    period, cycle : int arrays (T,)
        Period and cycle of each interval (cycles in time order).
    limits : array (M, K, B)
        Block limits of each cycle. [kWh]

    Returns
    -------
    array (M, K, P, B) [kWh]
    """
    k_n = limits.shape[1]
    runs = grouping(cycle * n_periods + period, k_n * n_periods)
    q = np.ascontiguousarray(quantity, dtype=np.float64)
    return blocks_of_runs(run_sums(q, runs), runs, k_n, n_periods, limits)


def _rate_chunk(  # noqa: PLR0917
    plan: RatingPlan,
    imp: Array,
    exp: Array | None,
    kvar: Array | None,
    price: Array | None,
    hist: Array | None,
    meters: Array,
    first_meter: int,
    kernel: Callable[..., int] | None = None,
) -> dict[str, Array]:
    """Rate one chunk of meters; the keys are the per-meter fields of RatingResult."""
    tariff = plan.tariff
    calendar = plan.calendar
    et = plan.energy
    dt = plan.demand
    m_n = imp.shape[0]
    k_n = plan.n_cycles
    p_n = plan.n_periods
    proration = plan.proration
    windows = plan.windows
    kernel_peaks = None
    if kernel is not None and plan.segments is not None:
        seg = plan.segments
        imp_runs = np.empty((m_n, seg.n_runs))
        maxima = np.empty((m_n, seg.n_groups))
        bad = kernel(imp, seg.starts, seg.run, seg.group, seg.window, imp_runs, maxima)
        if bad >= 0:
            _locate_bad("import_kwh", imp[bad : bad + 1], first_meter + bad)
        if windows is not None:
            kernel_peaks = (maxima / windows.window_h).reshape(
                m_n, windows.n_cycles, windows.n_periods
            )
    else:
        _check_values("import_kwh", imp, first_meter)
        imp_runs = run_sums(imp, plan.energy_runs)
    _check_values("export_kwh", exp, first_meter)
    _check_values("kvarh", kvar, first_meter)
    _check_sums("import_kwh", imp, imp_runs, first_meter)
    imp_cp = plan.energy_runs.sums_of_runs(imp_runs).reshape(m_n, k_n, p_n)
    import_sum = imp_cp.sum(axis=2)
    exp_runs = None
    exp_cp = np.zeros((m_n, k_n, p_n))
    if exp is not None:
        exp_runs = run_sums(exp, plan.energy_runs)
        _check_sums("export_kwh", exp, exp_runs, first_meter)
        exp_cp = plan.energy_runs.sums_of_runs(exp_runs).reshape(m_n, k_n, p_n)
    export_sum = exp_cp.sum(axis=2)
    kvar_sum = None
    if kvar is not None:
        kvar_sum = plan.cycles.sums(kvar)
        _check_sums("kvarh", kvar, kvar_sum, first_meter)

    # --- demand peaks (needed first: kWh/kW blocks use the billing demand) ---
    d_tou = len(dt.tou_names) if dt is not None else 0
    flat_peak = np.zeros((m_n, k_n))
    tou_peak = np.zeros((m_n, k_n, d_tou))
    kva_flat = np.zeros((m_n, k_n))
    kva_tou = np.zeros_like(tou_peak)
    kvar_peak = np.zeros((m_n, k_n))
    if windows is not None:
        peaks = kernel_peaks if kernel_peaks is not None else windows.peaks(windows.sums(imp))
        flat_peak = peaks.max(axis=2)
        kva_peaks = peaks
        if kvar is not None:
            kw_energy = windows.sums(imp)
            kvar_energy = windows.sums(kvar)
            kvar_peak = windows.peaks(kvar_energy).max(axis=2)
            kva_peaks = windows.peaks(np.hypot(kw_energy, kvar_energy))
        kva_flat = kva_peaks.max(axis=2)
        if d_tou:
            tou_peak, kva_tou = peaks, kva_peaks
        if kvar is None and tariff.demand is not None and tariff.demand.measure == "kVA":
            raise LoadDataError("kvarh", None, "kVA demand billing needs reactive energy data")
    billing_flat = flat_peak if tariff.demand is None or tariff.demand.measure == "kW" else kva_flat
    billing_tou = tou_peak if tariff.demand is None or tariff.demand.measure == "kW" else kva_tou
    if tariff.demand is not None:
        billing_flat = np.maximum(billing_flat, tariff.demand.minimum_kw)
        r = tariff.demand.ratchet
        if r is not None:
            billing_flat = ratchet_billing_demand(
                billing_flat,
                calendar.cycle_month,
                r.percent,
                r.months,
                r.floor_actual,
                r.apply_months,
                hist,
            )

    # --- energy ---
    limits = _limits(et, calendar, proration, billing_flat)
    mode = tariff.export.mode
    export_credit = np.zeros((m_n, k_n))
    if mode in ("net_metering_kwh", "net_metering_credit"):
        net = imp_cp - exp_cp
        if mode == "net_metering_kwh":
            energy_kwh, _, payout = net_metering_kwh(
                net,
                limits,
                calendar.cycle_month,
                tariff.export.true_up_month,
                tariff.export.yearend_sell_rate,
            )
            export_credit = payout
        else:
            energy_kwh, applied, _, payout = net_metering_credit(
                net, limits, et.rate, et.sell, calendar.cycle_month, tariff.export.true_up_month
            )
            export_credit = applied + payout
    elif mode == "net_billing_hourly":
        assert plan.hours is not None
        assert plan.hour_runs is not None
        net_h = run_sums(imp - exp if exp is not None else imp, plan.hours)
        hour_runs = plan.hour_runs
        bought = run_sums(np.maximum(net_h, 0.0), hour_runs)
        fast = kernel is not None
        energy_kwh = blocks_of_runs(bought, hour_runs, k_n, p_n, limits, fast)
        sold_runs = run_sums(np.maximum(-net_h, 0.0), hour_runs)
        sold = blocks_of_runs(sold_runs, hour_runs, k_n, p_n, limits, fast)
        export_credit = (sold * et.sell).sum(axis=(2, 3))
    else:
        fast = kernel is not None
        energy_kwh = blocks_of_runs(imp_runs, plan.energy_runs, k_n, p_n, limits, fast)
        if exp_runs is not None and mode != "none":
            sold = blocks_of_runs(exp_runs, plan.energy_runs, k_n, p_n, limits, fast)
            export_credit = (sold * et.sell).sum(axis=(2, 3))
    energy_cost = energy_kwh * et.rate
    energy_extra = np.zeros((m_n, k_n))
    if price is not None:
        energy_extra += plan.cycles.sums(imp * price[None, :])
    if plan.events is not None and tariff.energy.critical_peak is not None:
        in_event = plan.events.sums(imp).reshape(m_n, k_n, 2)[:, :, 1]
        energy_extra += in_event * tariff.energy.critical_peak.adder
    energy = energy_cost.sum(axis=(2, 3)) + energy_extra

    # --- demand charges and power factor ---
    demand = np.zeros((m_n, k_n))
    flat_cost = np.zeros((m_n, k_n))
    tou_cost = np.zeros_like(tou_peak)
    pf_amount = np.zeros((m_n, k_n))
    reactive = np.zeros((m_n, k_n))
    pf_values = (
        billing_power_factor(import_sum, kvar_sum) if kvar_sum is not None else np.ones((m_n, k_n))
    )
    pf_flat, pf_tou = billing_flat, billing_tou
    pf_rule = tariff.power_factor
    if pf_rule is not None and pf_rule.method in ("demand_ratio", "kva_demand"):
        if kvar is None:
            raise LoadDataError("kvarh", None, f"power factor rule {pf_rule.method!r} needs kvarh")
        if pf_rule.method == "demand_ratio":
            pf_flat = demand_ratio_adjustment(
                billing_flat, pf_values, pf_rule.target, pf_rule.max_multiplier
            )
            pf_tou = demand_ratio_adjustment(
                billing_tou, pf_values[:, :, None], pf_rule.target, pf_rule.max_multiplier
            )
        else:
            pf_flat = demand_from_kva(billing_flat, kva_flat, pf_rule.target)
            pf_tou = demand_from_kva(billing_tou, kva_tou, pf_rule.target)
    if dt is not None:
        share = proration if tariff.billing.prorate_demand else np.ones(k_n)
        flat_cost, tou_cost = _demand_costs(dt, calendar, billing_flat, billing_tou, share)
        adj_flat, adj_tou = _demand_costs(dt, calendar, pf_flat, pf_tou, share)
        demand = flat_cost + tou_cost.sum(axis=2)
        pf_amount += adj_flat + adj_tou.sum(axis=2) - demand
    if tariff.reactive is not None and kvar_sum is not None:
        rx = tariff.reactive
        reactive = rx.per_kvarh * np.maximum(kvar_sum - rx.free_kvarh_ratio * import_sum, 0.0)
        reactive += rx.per_kvar * kvar_peak
    if pf_rule is not None and pf_rule.method == "kvarh_threshold":
        if kvar_sum is None:
            raise LoadDataError("kvarh", None, "power factor rule 'kvarh_threshold' needs kvarh")
        reactive += pf_rule.rate_per_kvarh * excess_kvarh(import_sum, kvar_sum, pf_rule.target)
    if pf_rule is not None and pf_rule.method == "percent_per_step":
        if kvar_sum is None:
            raise LoadDataError("kvarh", None, "power factor rule 'percent_per_step' needs kvarh")
        pct = percent_per_step_adjustment(
            pf_values,
            pf_rule.target,
            pf_rule.surcharge_percent_per_step,
            pf_rule.incentive_percent_per_step,
            pf_rule.max_surcharge_percent,
            pf_rule.max_incentive_percent,
        )
        pf_amount += pct / 100.0 * (energy + demand)
    pf_amount += reactive

    # --- fixed, minimum, taxes ---
    fixed_detail = np.zeros((m_n, k_n, len(tariff.fixed)))
    for i, charge in enumerate(tariff.fixed):
        if charge.per == "day":
            fixed_detail[:, :, i] = charge.amount * calendar.covered_days[None, :]
        elif charge.per == "meter":
            fixed_detail[:, :, i] = charge.amount * meters[:, None] * proration[None, :]
        else:
            fixed_detail[:, :, i] = charge.amount * proration[None, :]
    fixed = fixed_detail.sum(axis=2)
    subtotal = fixed + energy + demand + pf_amount - export_credit
    minimum = np.maximum(
        tariff.minimum.monthly * proration[None, :] - np.maximum(subtotal, 0.0), 0.0
    )
    if tariff.minimum.annual > 0:
        year_of = np.array([int(label[:4]) for label in calendar.cycle_labels])
        running = np.maximum(subtotal, 0.0) + minimum
        for k in range(k_n):
            if int(calendar.cycle_month[k]) == 11:
                same = year_of == year_of[k]
                paid = running[:, same].sum(axis=1)
                minimum[:, k] += np.maximum(tariff.minimum.annual - paid, 0.0)
    before_tax = subtotal + minimum
    tax_detail = np.zeros((m_n, k_n, len(tariff.taxes)))
    for i, tax in enumerate(tariff.taxes):
        tax_detail[:, :, i] = tax.percent / 100.0 * np.maximum(before_tax, 0.0)
        tax_detail[:, :, i] += tax.per_kwh * import_sum
    taxes = tax_detail.sum(axis=2)
    total = before_tax + taxes
    return {
        "fixed": fixed,
        "energy": energy,
        "demand": demand,
        "pf": pf_amount,
        "minimum": minimum,
        "taxes": taxes,
        "export_credit": export_credit,
        "total": total,
        "import_kwh": import_sum,
        "export_kwh": export_sum,
        "energy_kwh": energy_kwh,
        "energy_cost": energy_cost,
        "energy_extra": energy_extra,
        "demand_flat_kw": billing_flat,
        "demand_flat_cost": flat_cost,
        "demand_tou_kw": billing_tou,
        "demand_tou_cost": tou_cost,
        "power_factor": pf_values,
        "pf_billed_kw": pf_flat,
        "reactive_cost": reactive,
        "fixed_detail": fixed_detail,
        "tax_detail": tax_detail,
    }


def _demand_costs(
    dt: DemandTables, calendar: Calendar, flat_kw: Array, tou_kw: Array, share: Array
) -> tuple[Array, Array]:
    """Flat and time-of-use demand charges of billed demands, x ``share`` (K,). [currency]"""
    m_n, k_n = flat_kw.shape
    flat_cost = np.zeros((m_n, k_n))
    if dt.flat_rate.shape[0]:
        rows = dt.flat_months[calendar.cycle_month]  # (K,)
        flat_cost = tiered_charge(flat_kw, dt.flat_limit[rows][None], dt.flat_rate[rows][None])
    tou_cost = np.zeros_like(tou_kw)
    if dt.tou_rate.shape[0]:
        tou_cost = tiered_charge(tou_kw, dt.tou_limit[None, None], dt.tou_rate[None, None])
    if not np.all(share == 1.0):
        flat_cost = flat_cost * share[None, :]
        tou_cost = tou_cost * share[None, :, None]
    return flat_cost, tou_cost
