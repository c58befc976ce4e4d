"""Load warnings: IEEE 519-2022 harmonic limits, voltage unbalance and overload.

IEEE 519-2022 Table 1, voltage distortion limits at the PCC (individual harmonic h and
THD, in % of the fundamental; identical to the 2014 edition):

    bus voltage V at the PCC     individual harmonic   THD
    V <= 1.0 kV                  5.0                   8.0
    1 kV < V <= 69 kV            3.0                   5.0
    69 kV < V <= 161 kV          1.5                   2.5
    161 kV < V                   1.0                   1.5

IEEE 519-2022 Table 2, current distortion limits for systems rated 120 V through 69 kV
(maximum harmonic current in % of the maximum demand load current I_L, odd harmonics,
h up to 50; TDD = total demand distortion):

    I_SC/I_L       3<=h<11   11<=h<17   17<=h<23   23<=h<35   35<=h<=50   TDD
    < 20           4.0       2.0        1.5        0.6        0.3         5.0
    20 to < 50     7.0       3.5        2.5        1.0        0.5         8.0
    50 to < 100    10.0      4.5        4.0        1.5        0.7         12.0
    100 to < 1000  12.0      5.5        5.0        2.0        1.0         15.0
    >= 1000        15.0      7.0        6.0        2.5        1.4         20.0

Even harmonics (2022 edition): h <= 6 are limited to 50 % of the odd limits of their
range, h > 6 to 100 % (the 2014 edition had 25 % for all even orders). The tables for
systems above 69 kV (Tables 3 and 4) are not recorded here; asking for them is an error.

IEEE 519-2022 5.1 and 5.2 apply the limits to statistics of the measured values: weekly
95th percentiles of short-time (10 min) values shall be below the limits, daily 99th
percentiles of very-short-time (3 s, 150/180-cycle) values below 1.5 times the limits.
:func:`assess` compares single aggregated values with the limits times a ``factor``, so
a monitor can warn as soon as a value exceeds what the statistics would allow.

TDD = sqrt(sum_{h=2}^{50} I_h^2) / I_L * 100.

Voltage unbalance is compared with a configurable threshold (2 %, the EN 50160 value for
95 % of 10-min values); overload is an RMS current above a configurable rating.

References
----------
.. [1] IEEE Std 519-2022, IEEE Standard for Harmonic Control in Electric Power Systems,
       Table 1, Table 2 and clause 5.
.. [2] EN 50160:2010, 4.2.5 (supply voltage unbalance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.record import FloatArray

__all__ = [
    "CURRENT_LIMITS_PCT",
    "CURRENT_RANGES",
    "VOLTAGE_LIMITS_PCT",
    "LimitSettings",
    "LoadWarning",
    "assess",
    "current_harmonic_limits_pct",
    "tdd_limit_pct",
    "total_demand_distortion",
    "voltage_distortion_limits_pct",
]

WarningKind = Literal[
    "voltage_harmonic", "voltage_thd", "current_harmonic", "current_tdd", "unbalance", "overload"
]

#: IEEE 519-2022 Table 1: (upper bus voltage [V], individual [%], THD [%]).
VOLTAGE_LIMITS_PCT: tuple[tuple[float, float, float], ...] = (
    (1_000.0, 5.0, 8.0),
    (69_000.0, 3.0, 5.0),
    (161_000.0, 1.5, 2.5),
    (float("inf"), 1.0, 1.5),
)

#: IEEE 519-2022 Table 2 harmonic ranges: (lowest h, highest h) of each column.
CURRENT_RANGES: tuple[tuple[int, int], ...] = ((3, 10), (11, 16), (17, 22), (23, 34), (35, 50))

#: IEEE 519-2022 Table 2: (upper I_SC/I_L (exclusive), five range limits, TDD) [%].
CURRENT_LIMITS_PCT: tuple[tuple[float, tuple[float, ...], float], ...] = (
    (20.0, (4.0, 2.0, 1.5, 0.6, 0.3), 5.0),
    (50.0, (7.0, 3.5, 2.5, 1.0, 0.5), 8.0),
    (100.0, (10.0, 4.5, 4.0, 1.5, 0.7), 12.0),
    (1000.0, (12.0, 5.5, 5.0, 2.0, 1.0), 15.0),
    (float("inf"), (15.0, 7.0, 6.0, 2.5, 1.4), 20.0),
)

_TABLE_2_MAX_V = 69_000.0


def voltage_distortion_limits_pct(bus_voltage_v: float) -> tuple[float, float]:
    """(individual harmonic, THD) limits at a PCC of nominal voltage ``bus_voltage_v``.

    Parameters
    ----------
    bus_voltage_v : float
        Nominal line-to-line voltage at the PCC. [V]

    Returns
    -------
    tuple of float
        IEEE 519-2022 Table 1 limits. [%]
    """
    if not np.isfinite(bus_voltage_v) or bus_voltage_v <= 0:
        raise InvalidInputError("bus_voltage_v", bus_voltage_v, "must be a positive voltage")
    for upper, individual, thd in VOLTAGE_LIMITS_PCT:
        if bus_voltage_v <= upper:
            return individual, thd
    raise AssertionError("unreachable: the last row has no upper bound")


def _row(isc_over_il: float) -> tuple[float, tuple[float, ...], float]:
    if not np.isfinite(isc_over_il) or isc_over_il <= 0:
        raise InvalidInputError("isc_over_il", isc_over_il, "must be a positive ratio")
    for row in CURRENT_LIMITS_PCT:
        if isc_over_il < row[0]:
            return row
    return CURRENT_LIMITS_PCT[-1]


def current_harmonic_limits_pct(isc_over_il: float, max_order: int = 50) -> FloatArray:
    """Individual current harmonic limits for orders 1 .. ``max_order`` (index h - 1).

    Orders 1 and above 50 have no limit (inf); order 2 takes half of the 3 <= h < 11
    limit, like 4 and 6 (IEEE 519-2022: even h <= 6 at 50 %, even h > 6 at 100 %). [%]
    """
    _, columns, _ = _row(isc_over_il)
    limits = np.full(max_order, np.inf)
    orders = np.arange(1, max_order + 1)
    for (low, high), value in zip(CURRENT_RANGES, columns, strict=True):
        limits[(orders >= low) & (orders <= high)] = value
    low_even = (orders <= 6) & (orders % 2 == 0)
    limits[low_even] = 0.5 * columns[0]
    return limits


def tdd_limit_pct(isc_over_il: float) -> float:
    """TDD limit for the short-circuit ratio ``isc_over_il`` (IEEE 519-2022 Table 2). [%]"""
    return _row(isc_over_il)[2]


def total_demand_distortion(harmonic_rms_a: FloatArray, demand_current_a: float) -> FloatArray:
    """TDD = sqrt(sum_{h=2}^{50} I_h^2) / I_L * 100.

    Parameters
    ----------
    harmonic_rms_a : array, shape (..., H)
        Current harmonic RMS values, orders 1 .. H. [A]
    demand_current_a : float
        I_L, the maximum demand load current (fundamental) at the PCC. [A]

    Returns
    -------
    array
        TDD. [%]
    """
    if not np.isfinite(demand_current_a) or demand_current_a <= 0:
        raise InvalidInputError("demand_current_a", demand_current_a, "must be positive")
    values = np.asarray(harmonic_rms_a, dtype=np.float64)
    result: FloatArray = np.sqrt(np.sum(values[..., 1:50] ** 2, axis=-1)) / demand_current_a * 100.0
    return result


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """What a site's load warnings are measured against.

    Attributes
    ----------
    bus_voltage_v : float
        Nominal line-to-line voltage at the PCC (selects the Table 1 row). [V]
    isc_over_il : float or None
        Short-circuit ratio at the PCC (selects the Table 2 row); None: no current limits.
    demand_current_a : float or None
        I_L for TDD and the current limits. [A]
    unbalance_pct : float
        Voltage unbalance threshold. [%]
    rated_current_a : float or None
        Overload above this RMS current; None: no overload warning. [A]
    factor : float
        Multiplier of the harmonic limits (1.0 for 10-min values, 1.5 for 3-s values).
    """

    bus_voltage_v: float = 400.0
    isc_over_il: float | None = None
    demand_current_a: float | None = None
    unbalance_pct: float = 2.0
    rated_current_a: float | None = None
    factor: float = 1.0

    def __post_init__(self) -> None:
        voltage_distortion_limits_pct(self.bus_voltage_v)
        if self.bus_voltage_v > _TABLE_2_MAX_V and self.isc_over_il is not None:
            raise InvalidInputError(
                "bus_voltage_v",
                self.bus_voltage_v,
                "current limits above 69 kV (IEEE 519-2022 Tables 3 and 4) are not recorded",
            )
        if (self.isc_over_il is None) != (self.demand_current_a is None):
            raise InvalidInputError(
                "demand_current_a",
                self.demand_current_a,
                "current limits need both isc_over_il and demand_current_a",
            )
        if self.isc_over_il is not None:
            _row(self.isc_over_il)
        if not self.unbalance_pct > 0:
            raise InvalidInputError("unbalance_pct", self.unbalance_pct, "must be positive")
        if not self.factor > 0:
            raise InvalidInputError("factor", self.factor, "must be positive")


@dataclass(frozen=True, slots=True)
class LoadWarning:
    """One value above its limit.

    Attributes
    ----------
    kind : str
        What was exceeded.
    at : float
        POSIX time of the value (the end of its aggregation interval). [s]
    phase : int or None
        Phase index, None for three-phase quantities.
    order : int or None
        Harmonic order for individual-harmonic warnings.
    value, limit : float
        The value and the limit it exceeded (same unit: %, or A for overload).
    """

    kind: WarningKind
    at: float
    phase: int | None
    order: int | None
    value: float
    limit: float

    @property
    def detail(self) -> str:
        where = "" if self.phase is None else f" L{self.phase + 1}"
        order = "" if self.order is None else f" h{self.order}"
        unit = "A" if self.kind == "overload" else "%"
        return f"{self.kind}{where}{order} {self.value:.2f} {unit} > {self.limit:.2f} {unit}"


def _exceed(
    kind: WarningKind,
    values: FloatArray,
    limit: FloatArray | float,
    times: FloatArray,
    *,
    first_order: int | None = None,
    phased: bool = True,
) -> list[LoadWarning]:
    """Warnings where ``values`` (phases, times[, orders]) exceed ``limit``; the last axis
    holds harmonic orders from ``first_order`` when that is given."""
    bounds = np.broadcast_to(np.asarray(limit, dtype=np.float64), values.shape)
    found: list[LoadWarning] = []
    for index in np.argwhere(values > bounds):
        at = tuple(int(i) for i in index)
        order = at[2] + first_order if first_order is not None else None
        phase = at[0] if phased else None
        found.append(
            LoadWarning(
                kind, float(times[at[1]]), phase, order, float(values[at]), float(bounds[at])
            )
        )
    return found


def assess(
    times: FloatArray,
    settings: LimitSettings,
    *,
    voltage_harmonics_v: FloatArray | None = None,
    current_harmonics_a: FloatArray | None = None,
    unbalance_pct: FloatArray | None = None,
    current_rms_a: FloatArray | None = None,
) -> list[LoadWarning]:
    """Compare aggregated values with the limits; one warning per value above a limit.

    Parameters
    ----------
    times : array, shape (T,)
        POSIX end time of each aggregated value. [s]
    settings : LimitSettings
        The site's limits.
    voltage_harmonics_v : array, shape (phases, T, H), optional
        Harmonic voltages, orders 1 .. H. [V]
    current_harmonics_a : array, shape (phases, T, H), optional
        Harmonic currents, orders 1 .. H. [A]
    unbalance_pct : array, shape (T,), optional
        Voltage unbalance u2. [%]
    current_rms_a : array, shape (phases, T), optional
        RMS currents. [A]

    Returns
    -------
    list of LoadWarning
        In time order.
    """
    factor = settings.factor
    warnings_found: list[LoadWarning] = []
    if voltage_harmonics_v is not None:
        individual, thd = voltage_distortion_limits_pct(settings.bus_voltage_v)
        harmonics = np.asarray(voltage_harmonics_v, dtype=np.float64)
        fundamental = harmonics[..., :1]
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(fundamental > 0, harmonics / fundamental * 100.0, 0.0)
        relative = np.nan_to_num(relative[..., 1:50])
        warnings_found += _exceed(
            "voltage_harmonic", relative, individual * factor, times, first_order=2
        )
        total = np.sqrt(np.sum(relative**2, axis=-1))
        warnings_found += _exceed("voltage_thd", total, thd * factor, times)
    if (
        current_harmonics_a is not None
        and settings.isc_over_il is not None
        and settings.demand_current_a is not None
    ):
        harmonics = np.nan_to_num(np.asarray(current_harmonics_a, dtype=np.float64))
        orders = min(harmonics.shape[-1], 50)
        limits = current_harmonic_limits_pct(settings.isc_over_il, orders)[1:orders] * factor
        relative = harmonics[..., 1:orders] / settings.demand_current_a * 100.0
        warnings_found += _exceed("current_harmonic", relative, limits, times, first_order=2)
        tdd = total_demand_distortion(harmonics, settings.demand_current_a)
        warnings_found += _exceed(
            "current_tdd", tdd, tdd_limit_pct(settings.isc_over_il) * factor, times
        )
    if unbalance_pct is not None:
        values = np.nan_to_num(np.asarray(unbalance_pct, dtype=np.float64))[np.newaxis, :]
        warnings_found += _exceed("unbalance", values, settings.unbalance_pct, times, phased=False)
    if current_rms_a is not None and settings.rated_current_a is not None:
        warnings_found += _exceed(
            "overload", np.asarray(current_rms_a), settings.rated_current_a, times
        )
    warnings_found.sort(key=lambda w: (w.at, w.kind, w.phase or 0, w.order or 0))
    return warnings_found
