"""Power-factor adjustments used by real utilities, as plain functions over arrays.

The billing power factor of a cycle is the ratio of active to apparent energy [1]_,

    PF = kWh / sqrt(kWh^2 + kvarh^2)

References
----------
.. [1] IEEE Std 1459-2010, Definitions for the measurement of electric power quantities,
   3.1.2.9 (power factor as the ratio of active to apparent power).
.. [2] Rocky Mountain Power (PacifiCorp), Utah Electric Service Schedule No. 8, "Power
   Factor": where the power factor is less than 90% lagging, the measured demand is
   multiplied by 90% and divided by the power factor.
.. [3] Tennessee Valley Authority, General Power Rate Schedule GSA (Part 2 and 3): the
   billing demand is the higher of the metered kW demand and 85% of the metered kVA demand.
.. [4] Eskom, Schedule of Standard Prices (Megaflex / Miniflex): reactive energy charge per
   kvarh for the reactive energy in excess of 30% of the kWh recorded (power factor 0.96).
.. [5] Ministry of Water Resources and Electric Power (China), "Power factor adjustment of
   electricity charges" (功率因数调整电费办法, (83)水电财字第215号, 1983): with a 0.90
   standard, the energy and demand charges rise 0.5% for each 0.01 below the standard and
   fall 0.15% for each 0.01 above it (reduction at most 0.75%); the percentage is applied
   to the month's charges as computed at the prescribed prices.
.. [6] NDRC, reply on Guangdong's time-of-use prices (发改价格〔2005〕291号): the base of
   the adjustment is the month's basic (demand) charge plus energy charge, government funds
   and surcharges excluded. Energy charges at time-of-use, critical-peak or real-time
   prices are energy charges, so they are in the base; taxes are not.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "billing_power_factor",
    "demand_from_kva",
    "demand_ratio_adjustment",
    "excess_kvarh",
    "percent_per_step_adjustment",
]


def billing_power_factor(
    kwh: NDArray[np.float64], kvarh: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Average power factor of a billing cycle [1]_; 1.0 where no energy flowed.

    Parameters
    ----------
    kwh : array
        Active energy. [kWh]
    kvarh : array
        Reactive energy (magnitude). [kvarh]

    Returns
    -------
    pf : array
        kWh / sqrt(kWh^2 + kvarh^2). [-]
    """
    p = np.asarray(kwh, dtype=np.float64)
    q = np.asarray(kvarh, dtype=np.float64)
    s = np.hypot(p, q)
    with np.errstate(invalid="ignore", divide="ignore"):
        pf = np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0)
    result: NDArray[np.float64] = pf
    return result


def demand_ratio_adjustment(
    demand_kw: NDArray[np.float64],
    pf: NDArray[np.float64],
    target: float,
    max_multiplier: float | None = None,
) -> NDArray[np.float64]:
    """Billed demand raised by target / actual power factor [2]_.

    billed = kW x min(target / PF, cap)   if PF < target, else kW

    Parameters
    ----------
    demand_kw : array
        Measured billing demand. [kW]
    pf : array
        Power factor of the cycle. [-]
    target : float
        Power factor below which the adjustment applies. [-]
    max_multiplier : float, optional
        Largest factor applied. [-]

    Examples
    --------
    51.09 kW at PF 0.871 with a 0.93 target: 51.09 x 0.93 / 0.871 = 54.55 kW.
    """
    pf_safe = np.maximum(np.asarray(pf, dtype=np.float64), 1e-6)
    factor = np.where(pf_safe < target, target / pf_safe, 1.0)
    if max_multiplier is not None:
        factor = np.minimum(factor, max_multiplier)
    result: NDArray[np.float64] = np.asarray(demand_kw, dtype=np.float64) * factor
    return result


def demand_from_kva(
    demand_kw: NDArray[np.float64], demand_kva: NDArray[np.float64], target: float
) -> NDArray[np.float64]:
    """Billing demand as the higher of kW and target x kVA [3]_.

    billed = max(kW, target x kVA)

    Parameters
    ----------
    demand_kw : array
        Peak active demand. [kW]
    demand_kva : array
        Peak apparent demand. [kVA]
    target : float
        Share of kVA billed at least (0.85 in [3]_). [-]
    """
    result: NDArray[np.float64] = np.maximum(
        np.asarray(demand_kw, dtype=np.float64), target * np.asarray(demand_kva, dtype=np.float64)
    )
    return result


def excess_kvarh(
    kwh: NDArray[np.float64], kvarh: NDArray[np.float64], target: float
) -> NDArray[np.float64]:
    """Reactive energy above what a power factor of ``target`` allows [4]_.

    excess = max(0, kvarh - kWh x tan(arccos(target)))

    A target of 0.958 allows 30% of the kWh (Eskom's threshold [4]_).

    Parameters
    ----------
    kwh, kvarh : array
        Active [kWh] and reactive [kvarh] energy of the cycle.
    target : float
        Power factor threshold. [-]

    Returns
    -------
    excess : array
        Chargeable reactive energy. [kvarh]
    """
    allowed = np.asarray(kwh, dtype=np.float64) * np.tan(np.arccos(target))
    result: NDArray[np.float64] = np.maximum(np.asarray(kvarh, dtype=np.float64) - allowed, 0.0)
    return result


def percent_per_step_adjustment(  # noqa: PLR0917
    pf: NDArray[np.float64],
    target: float,
    surcharge_percent_per_step: float,
    incentive_percent_per_step: float,
    max_surcharge_percent: float = 100.0,
    max_incentive_percent: float = 100.0,
    step: float = 0.01,
) -> NDArray[np.float64]:
    """Percentage added to (or, negative, taken off) the bill per 0.01 of PF [5]_.

    The power factor is first rounded to two decimals (half up), as the 1983 rule does.
    The rating engine applies the percentage to the cycle's energy charges (all of them:
    time-of-use, critical-peak and real-time prices) plus its demand charges [6]_; fixed,
    reactive and minimum charges and taxes are outside the base.

    adjustment = +s x (target - PF)/0.01  when PF < target (at most max_surcharge)
                 -i x (PF - target)/0.01  when PF > target (at most max_incentive)

    Returns
    -------
    percent : array
        Signed adjustment of the charges it applies to. [%]
    """
    rounded = np.floor(np.asarray(pf, dtype=np.float64) / step + 0.5 + 1e-9) * step
    steps = np.rint((target - rounded) / step)
    surcharge = np.minimum(
        np.maximum(steps, 0.0) * surcharge_percent_per_step, max_surcharge_percent
    )
    incentive = np.minimum(
        np.maximum(-steps, 0.0) * incentive_percent_per_step, max_incentive_percent
    )
    result: NDArray[np.float64] = surcharge - incentive
    return result
