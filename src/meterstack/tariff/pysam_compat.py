"""Rating by the rules of NREL PySAM ``Utilityrate5`` (SAM's utility-rate model), year one.

These rules differ from :func:`meterstack.tariff.rating.rate` (see ``docs/tariff.md``):

* the data are one 365-day year of ``8760 x k`` records starting on a Monday, cycles are
  calendar months, there are no holidays and no daylight-saving time;
* demand is the largest import power of one record: the data's step is the demand window;
* with net metering (options 0 and 1) blocks are applied to the month's total consumption
  and split across periods by their share; kWh surplus rolls over to the period in force at
  the same weekday hour (12 am, 6 am, 12 pm, 6 pm) of the next month;
* with net billing (2, 3) and buy-all/sell-all (4) each record is priced as it comes, blocks
  filled in time order by the month's cumulative purchases (or sales);
* fixed charges per day become ``x 365 / 12`` per month, as PySAM's URDB converter does.

Metering options (``ur_metering_option`` [1]_): 0 net metering with kWh roll-over, 1 net
metering with money roll-over, 2 net billing, 3 net billing with money roll-over, 4 buy
all / sell all (two meters).

References
----------
.. [1] NREL, SSC ``ssc/cmod_utilityrate5.cpp`` (``ur_calc``, ``ur_calc_timestep``) and
   ``shared/lib_utility_rate_equations.cpp``; PySAM ``Utilityrate5`` documentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meterstack.tariff.blocks import tiered_charge
from meterstack.tariff.demand import group_peaks
from meterstack.tariff.errors import UnsupportedByPySAMError
from meterstack.tariff.model import Tariff
from meterstack.tariff.net_metering import shared_blocks
from meterstack.tariff.rating import chronological_blocks
from meterstack.tariff.schedule import DAYS_IN_MONTH, Calendar, period_of, pysam_calendar
from meterstack.tariff.tables import EnergyTables, demand_tables, energy_tables

__all__ = ["METERING_OPTIONS", "PySAMBills", "check_pysam_compatible", "rate_pysam"]

Array = NDArray[np.float64]

METERING_OPTIONS = {
    "net_metering_kwh": 0,
    "net_metering_credit": 1,
    "net_billing_instantaneous": 2,
    "net_billing_hourly": 3,
    "buy_all_sell_all": 4,
    "none": 2,
}
"""Our export modes as ``ur_metering_option`` (``none``: rated as net billing, sell 0)."""


@dataclass
class PySAMBills:
    """Monthly components (M, 12) in PySAM's terms, currency units.

    ``energy`` is PySAM's ``charge_w_sys_ec_ym`` (after credits), ``demand`` the sum of
    ``charge_w_sys_dc_fixed_ym`` and ``charge_w_sys_dc_tou_ym``, ``export_credit`` the
    true-up credit, ``total`` ``utility_bill_w_sys_ym``.
    """

    cycle_labels: list[str]
    fixed: Array
    energy: Array
    demand: Array
    minimum: Array
    export_credit: Array
    total: Array


def check_pysam_compatible(tariff: Tariff) -> None:
    """Raise :class:`UnsupportedByPySAMError` for a feature PySAM cannot represent."""
    reasons = {
        "power_factor": tariff.power_factor is not None,
        "reactive": tariff.reactive is not None,
        "taxes": bool(tariff.taxes),
        "energy.price_series": tariff.energy.price_series,
        "energy.critical_peak": tariff.energy.critical_peak is not None,
    }
    for name, present in reasons.items():
        if present:
            raise UnsupportedByPySAMError(name, "present", "Utilityrate5 has no input for it")
    if tariff.demand is not None:
        if tariff.demand.measure != "kW":
            raise UnsupportedByPySAMError("demand.measure", "kVA", "Utilityrate5 bills kW only")
        if tariff.demand.ratchet is not None:
            raise UnsupportedByPySAMError(
                "demand.ratchet",
                "present",
                "Utilityrate5 ratchets need year-zero peaks and its own look-back table",
            )
        if tariff.demand.minimum_kw > 0:
            raise UnsupportedByPySAMError(
                "demand.minimum_kw", tariff.demand.minimum_kw, "Utilityrate5 has no demand floor"
            )


def rate_pysam(
    tariff: Tariff,
    load_kwh: Array,
    gen_kwh: Array | None,
    metering_option: int | None = None,
    year: int = 2023,
) -> PySAMBills:
    """Monthly bills of M meters as PySAM ``Utilityrate5`` computes them (year 1).

    Parameters
    ----------
    tariff : Tariff
    load_kwh : array (M, N)
        Energy bought (options 0-3: taken from the grid; option 4: all consumption) in each
        of N = 8760 x k records. [kWh]
    gen_kwh : array (M, N), optional
        Energy exported (options 0-3) or generated (option 4). [kWh]
    metering_option : int, optional
        ``ur_metering_option`` 0-4; default from ``tariff.export.mode``.
    year : int
        Label of the cycles.
    """
    check_pysam_compatible(tariff)
    load = np.atleast_2d(np.asarray(load_kwh, dtype=np.float64))
    gen = np.zeros_like(load) if gen_kwh is None else np.atleast_2d(np.asarray(gen_kwh, float))
    option = METERING_OPTIONS[tariff.export.mode] if metering_option is None else metering_option
    cal = pysam_calendar(load.shape[1], year)
    step_h = cal.step_h
    et = energy_tables(tariff)
    if option == 4 and et.unit in ("kWh/kW", "kWh/kW/day"):
        raise UnsupportedByPySAMError(
            "energy.tiers.unit", et.unit, "PySAM's kWh/kW blocks are not reproduced for option 4"
        )
    per = period_of(cal, et.weekday, et.weekend)
    m_n = load.shape[0]
    fixed_month = sum(c.amount * (365 / 12 if c.per == "day" else 1.0) for c in tariff.fixed)
    if option == 4:
        load_part = _timestep(tariff, cal, per, et, -load, step_h, 2, True)
        gen_part = _timestep(tariff, cal, per, et, gen, step_h, 2, False, gen_only=True)
        fixed, energy, demand, minimum, credit, total = (
            load_part[i] + gen_part[i] for i in range(6)
        )
    elif option in (2, 3):
        fixed, energy, demand, minimum, credit, total = _timestep(
            tariff, cal, per, et, gen - load, step_h, option, True
        )
    else:
        fixed, energy, demand, minimum, credit, total = _monthly(
            tariff, cal, per, et, gen - load, step_h, option, fixed_month
        )
    return PySAMBills(
        cycle_labels=cal.cycle_labels,
        fixed=np.broadcast_to(fixed, (m_n, 12)).copy(),
        energy=energy,
        demand=demand,
        minimum=minimum,
        export_credit=credit,
        total=total,
    )


def _month_limits(et_limit: Array, unit: str, peak: Array) -> Array:
    """(M, 12, B) block limits in kWh, PySAM style (daily limits x days of the month)."""
    days = DAYS_IN_MONTH.astype(np.float64)[None, :, None]
    base = et_limit[None, None, :]
    if unit == "kWh":
        lim = np.broadcast_to(base, (peak.shape[0], 12, base.shape[-1]))
    elif unit == "kWh/day":
        lim = np.broadcast_to(base * days, (peak.shape[0], 12, base.shape[-1]))
    elif unit == "kWh/kW":
        lim = base * peak[:, :, None]
    else:
        lim = base * days * peak[:, :, None]
    result: Array = np.where(np.isfinite(base), lim, np.inf)
    return result


def _demand(
    tariff: Tariff, cal_month: NDArray[np.int64], cal: object, grid_kw: Array
) -> tuple[Array, Array]:
    """Flat peak (M, 12) and demand charge (M, 12) from record powers (import negative)."""

    assert isinstance(cal, Calendar)
    m_n = grid_kw.shape[0]
    import_kw = np.maximum(-grid_kw, 0.0)
    flat_peak = group_peaks(import_kw, cal_month, 12)
    dt = demand_tables(tariff)
    if dt is None:
        return flat_peak, np.zeros((m_n, 12))
    charge = np.zeros((m_n, 12))
    if dt.flat_rate.shape[0]:
        rows = dt.flat_months[np.arange(12)]
        charge += tiered_charge(flat_peak, dt.flat_limit[rows][None], dt.flat_rate[rows][None])
    if dt.tou_rate.shape[0]:
        d_n = len(dt.tou_names)
        dper = period_of(cal, dt.weekday, dt.weekend)
        peaks = group_peaks(import_kw, cal_month * d_n + dper, 12 * d_n).reshape(m_n, 12, d_n)
        charge += tiered_charge(peaks, dt.tou_limit[None, None], dt.tou_rate[None, None]).sum(
            axis=2
        )
    return flat_peak, charge


def _fixed_and_minimum(
    tariff: Tariff, bill: Array, fixed_month: float, option_nm_income: Array
) -> tuple[Array, Array]:
    """Monthly and annual minimum charges on bills that already include fixed charges."""
    m_n = bill.shape[0]
    minimum = np.zeros((m_n, 12))
    ann = np.zeros(m_n)
    for m in range(12):
        mon_bill = np.maximum(bill[:, m] - option_nm_income[:, m], 0.0)
        minimum[:, m] = np.where(
            mon_bill < tariff.minimum.monthly, tariff.minimum.monthly - mon_bill, 0.0
        )
        ann += mon_bill
    if tariff.minimum.annual > 0:
        minimum[:, 11] += np.where(ann < tariff.minimum.annual, tariff.minimum.annual - ann, 0.0)
    return np.full((m_n, 12), fixed_month), minimum


def _monthly(  # noqa: PLR0917
    tariff: Tariff,
    cal: object,
    per: NDArray[np.int64],
    et: object,
    grid_kwh: Array,
    step_h: float,
    option: int,
    fixed_month: float,
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """``ur_calc``: net metering, options 0 (kWh roll-over) and 1 (money roll-over)."""

    assert isinstance(cal, Calendar)
    assert isinstance(et, EnergyTables)
    m_n = grid_kwh.shape[0]
    p_n = len(et.names)
    flat_peak, demand = _demand(tariff, cal.cycle, cal, grid_kwh / step_h)
    limits = _month_limits(et.limit, et.unit, flat_peak)
    credit_month = tariff.export.true_up_month - 1
    onehot = np.zeros((grid_kwh.shape[1], 12 * p_n))
    onehot[np.arange(grid_kwh.shape[1]), cal.cycle * p_n + per] = 1.0
    month_net = (grid_kwh @ onehot).reshape(m_n, 12, p_n)  # + = surplus
    energy_net = month_net.sum(axis=2)
    wd = np.asarray(et.weekday)
    rollover = wd[:, [0, 5, 11, 17]]  # (12, 4) period at 12a, 6a, 12p, 6p on weekdays
    prev_surplus = np.zeros((m_n, p_n))
    ec = np.zeros((m_n, 12))
    cum_dollars = np.zeros((m_n, 12))
    for m in range(12):
        use = month_net[:, m, :].copy()
        skip = m == 0 or m == credit_month + 1
        if not skip and option == 0:
            for src in range(p_n):
                hits = np.flatnonzero(rollover[m - 1] == src)
                if hits.size == 0:
                    continue  # PySAM drops surplus of a period absent at those hours
                target = int(rollover[m, int(hits[0])])
                use[:, target] += prev_surplus[:, src]
        surplus = np.maximum(use, 0.0)
        consumption = np.where(use > 0, 0.0, -use)
        billed = shared_blocks(consumption, limits[:, m])
        charge = (billed * et.rate).sum(axis=(1, 2))
        if option == 1:
            sold = shared_blocks(surplus, limits[:, m])
            cum_dollars[:, m] = (sold * et.sell).sum(axis=(1, 2))
        prev_surplus = surplus
        value = charge.copy()
        if m > 0 and m != credit_month + 1:
            value -= cum_dollars[:, m - 1]
        negative = value < 0
        if option == 1:
            cum_dollars[:, m] = np.where(negative, cum_dollars[:, m] - value, cum_dollars[:, m])
        value = np.where(negative, 0.0, value)
        after = value - cum_dollars[:, m]
        over = (~negative) & (after < 0)
        keep = (~negative) & (after >= 0)
        if option == 1:
            cum_dollars[:, m] = np.where(over, -after, cum_dollars[:, m])
        cum_dollars[:, m] = np.where(keep, 0.0, cum_dollars[:, m])
        ec[:, m] = np.where(negative, 0.0, np.where(over, 0.0, after))
    income = np.zeros((m_n, 12))
    if option == 0:
        cum_energy = np.zeros((m_n, 12))
        for m in range(12):
            prev = cum_energy[:, m - 1] if m > 0 and m != credit_month + 1 else 0.0
            cum_energy[:, m] = np.maximum(prev + energy_net[:, m], 0.0)
        income[:, credit_month] = cum_energy[:, credit_month] * tariff.export.yearend_sell_rate
    else:
        income[:, credit_month] = np.maximum(cum_dollars[:, credit_month], 0.0)
    bill = ec + demand + fixed_month
    fixed, minimum = _fixed_and_minimum(tariff, bill, fixed_month, np.zeros((m_n, 12)))
    total = bill + minimum - income
    return fixed, ec, demand, minimum, income, total


def _timestep(  # noqa: PLR0917
    tariff: Tariff,
    cal: object,
    per: NDArray[np.int64],
    et: object,
    grid_kwh: Array,
    step_h: float,
    option: int,
    include_fixed: bool,
    gen_only: bool = False,
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """``ur_calc_timestep``: net billing (2), with money roll-over (3), one meter of (4)."""

    assert isinstance(cal, Calendar)
    assert isinstance(et, EnergyTables)
    m_n = grid_kwh.shape[0]
    p_n = len(et.names)
    flat_peak, demand = _demand(tariff, cal.cycle, cal, grid_kwh / step_h)
    limits = _month_limits(
        et.limit, et.unit, flat_peak if not gen_only else np.ones_like(flat_peak)
    )
    bought = chronological_blocks(np.maximum(-grid_kwh, 0.0), per, cal.cycle, limits, p_n)
    sold = chronological_blocks(np.maximum(grid_kwh, 0.0), per, cal.cycle, limits, p_n)
    charges = (bought * et.rate).sum(axis=(2, 3))
    credits = (sold * et.sell).sum(axis=(2, 3))
    credit_month = tariff.export.true_up_month - 1
    income = np.zeros((m_n, 12))
    if option == 3:
        ec = np.zeros((m_n, 12))
        cum = credits.copy()
        for m in range(12):
            value = charges[:, m].copy()
            if m > 0 and m != credit_month + 1:
                value -= cum[:, m - 1]
            negative = value < 0
            cum[:, m] = np.where(negative, cum[:, m] - value, cum[:, m])
            ec[:, m] = np.where(negative, 0.0, value)
        income[:, credit_month] = np.maximum(cum[:, credit_month], 0.0)
    else:
        ec = charges - credits
    fixed_month = (
        sum(c.amount * (365 / 12 if c.per == "day" else 1.0) for c in tariff.fixed)
        if include_fixed
        else 0.0
    )
    bill = ec + demand + fixed_month
    fixed, minimum = _fixed_and_minimum(tariff, bill, fixed_month, np.zeros((m_n, 12)))
    if not include_fixed:
        minimum = np.zeros_like(minimum)
    total = bill + minimum - income
    return fixed, ec, demand, minimum, income, total
