"""Power-quality compliance across the fleet, week by week, in the manner of EN 50160.

EN 50160 [1]_ states its limits over each period of one week: for low-voltage supply,

* **supply voltage variations**: 95 % of the 10-minute mean rms values within
  ``Un +/- 10 %``, and all of them within ``Un +10 % / -15 %`` (4.2.2.2);
* **supply voltage unbalance**: 95 % of the 10-minute mean values of the negative-sequence
  component within 0-2 % of the positive-sequence component (4.2.5);
* **harmonic voltage**: 95 % of the 10-minute mean values of each harmonic within Table 1
  and the THD (to order 40) at most 8 % (4.2.6).

Values flagged by the meter (taken during a dip, swell or interruption, IEC 61000-4-30
flagging) are left out of the statistics, as EN 50160 and IEC 61000-4-30 2.6 require. A
fleet's meters record their load profile's average voltage per capture period; where
that period is 30 minutes the same statistics are taken on 30-minute means, which smooth a
little more than 10-minute ones: the report states the interval it was computed on.

Transformers are overloaded when the apparent power they deliver exceeds their rating for
longer than ``overload_hours`` in a week, or ever exceeds ``overload_peak`` times it.

References
----------
.. [1] EN 50160:2010+A1:2015, Voltage characteristics of electricity supplied by public
   electricity networks, clause 4 (low-voltage supply), Table 1 (harmonic voltages).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.analytics.network import NetworkModel
from meterstack.core.errors import InvalidInputError

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

WEEK_S = 7 * 86400

#: EN 50160 Table 1: individual harmonic voltages at the supply terminals, % of Un.
HARMONIC_LIMITS_PCT: dict[int, float] = {
    2: 2.0,
    3: 5.0,
    4: 1.0,
    5: 6.0,
    6: 0.5,
    7: 5.0,
    8: 0.5,
    9: 1.5,
    10: 0.5,
    11: 3.5,
    12: 0.5,
    13: 3.0,
    14: 0.5,
    15: 0.5,
    16: 0.5,
    17: 2.0,
    18: 0.5,
    19: 1.5,
    20: 0.5,
    21: 0.5,
    22: 0.5,
    23: 1.5,
    24: 0.5,
    25: 1.5,
}
THD_LIMIT_PCT = 8.0
UNBALANCE_LIMIT_PCT = 2.0


@dataclass(frozen=True)
class VoltageCompliance:
    """Per meter and week (shape (n_meters, n_weeks)).

    ``within_10_pct`` is the share of valid values within Un +/- 10 %; ``compliant`` is
    True where that share is at least 95 % and every value is within +10 % / -15 %;
    ``valid`` counts the values the statistics used (NaN and flagged values left out).
    """

    interval_s: int
    nominal_v: float
    within_10_pct: FloatArray
    min_v: FloatArray
    max_v: FloatArray
    valid: npt.NDArray[np.int64]
    compliant: BoolArray

    @property
    def non_compliant_meters(self) -> npt.NDArray[np.intp]:
        """Meters that failed at least one complete week."""
        return np.flatnonzero(np.any(~self.compliant & (self.valid > 0), axis=1))


def _weeks(n_int: int, interval_s: int) -> list[slice]:
    if interval_s <= 0 or WEEK_S % interval_s:
        raise InvalidInputError("interval_s", interval_s, "must divide one week")
    per_week = WEEK_S // interval_s
    if n_int < per_week:
        raise InvalidInputError("T", n_int, f"at least one week of data ({per_week} intervals)")
    return [slice(lo, lo + per_week) for lo in range(0, n_int - per_week + 1, per_week)]


def voltage_compliance(
    voltage_v: Float32Array,
    interval_s: int,
    nominal_v: float = 230.0,
    *,
    flagged: BoolArray | None = None,
) -> VoltageCompliance:
    """EN 50160 supply-voltage variation statistics, per meter and complete week.

    Parameters
    ----------
    voltage_v : float array (n_meters, T)
        Mean rms voltage of each interval (NaN where missing). [V]
    interval_s : int
        The averaging interval (600 for EN 50160's 10 minutes). [s]
    nominal_v : float
        Un. [V]
    flagged : bool array (n_meters, T), optional
        Intervals that overlap a dip, swell or interruption.
    """
    if voltage_v.ndim != 2:
        raise InvalidInputError("voltage_v", voltage_v.shape, "must be (n_meters, T)")
    if not nominal_v > 0:
        raise InvalidInputError("nominal_v", nominal_v, "must be positive")
    if flagged is not None and flagged.shape != voltage_v.shape:
        raise InvalidInputError("flagged", flagged.shape, f"must be {voltage_v.shape}")
    weeks = _weeks(voltage_v.shape[1], interval_s)
    n = voltage_v.shape[0]
    shape = (n, len(weeks))
    within = np.full(shape, np.nan)
    low, high = np.full(shape, np.nan), np.full(shape, np.nan)
    valid = np.zeros(shape, dtype=np.int64)
    compliant = np.zeros(shape, dtype=bool)
    band = (0.9 * nominal_v, 1.1 * nominal_v)
    hard = (0.85 * nominal_v, 1.1 * nominal_v)
    for w, part in enumerate(weeks):
        v = voltage_v[:, part].astype(np.float32, copy=False)
        ok = np.isfinite(v)
        if flagged is not None:
            ok &= ~flagged[:, part]
        count = ok.sum(axis=1)
        inside = (ok & (v >= band[0]) & (v <= band[1])).sum(axis=1)
        outside_hard = (ok & ((v < hard[0]) | (v > hard[1]))).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            within[:, w] = np.where(count > 0, inside / np.maximum(count, 1), np.nan)
        masked = np.where(ok, v, np.nan)
        has = count > 0
        low[has, w] = np.nanmin(masked[has], axis=1)
        high[has, w] = np.nanmax(masked[has], axis=1)
        valid[:, w] = count
        compliant[:, w] = has & (within[:, w] >= 0.95) & (outside_hard == 0)
    return VoltageCompliance(interval_s, nominal_v, within, low, high, valid, compliant)


@dataclass(frozen=True)
class DistortionWarnings:
    """Per meter and week: the 95th percentiles and whether they break EN 50160's limits."""

    thd_p95_pct: FloatArray
    unbalance_p95_pct: FloatArray
    thd_warning: BoolArray
    unbalance_warning: BoolArray
    #: Harmonic orders whose 95th percentile broke Table 1, per meter (any week).
    harmonic_orders: dict[int, list[int]]


def distortion_warnings(
    interval_s: int,
    *,
    thd_pct: Float32Array | None = None,
    unbalance_pct: Float32Array | None = None,
    harmonics_pct: dict[int, Float32Array] | None = None,
) -> DistortionWarnings:
    """Weekly 95th percentiles of THD, unbalance and individual harmonics against EN 50160.

    Parameters
    ----------
    thd_pct, unbalance_pct : float array (n_meters, T), optional
        Voltage THD and negative- to positive-sequence ratio per interval (NaN where
        missing). [%]
    harmonics_pct : mapping of order to float array (n_meters, T), optional
        Individual harmonic voltages. [% of Un]
    """
    arrays = [a for a in (thd_pct, unbalance_pct, *(harmonics_pct or {}).values()) if a is not None]
    if not arrays:
        raise InvalidInputError("thd_pct", None, "give at least one of the distortion series")
    shape = arrays[0].shape
    for a in arrays:
        if a.shape != shape or a.ndim != 2:
            raise InvalidInputError("distortion", a.shape, f"every series must be {shape}")
    weeks = _weeks(shape[1], interval_s)

    def p95(series: Float32Array | None) -> FloatArray:
        out = np.full((shape[0], len(weeks)), np.nan)
        if series is None:
            return out
        for w, part in enumerate(weeks):
            block = series[:, part]
            has = np.isfinite(block).any(axis=1)
            if has.any():
                out[has, w] = np.nanpercentile(block[has], 95, axis=1)
        return out

    thd = p95(thd_pct)
    unbalance = p95(unbalance_pct)
    orders: dict[int, list[int]] = {}
    for order, series in sorted((harmonics_pct or {}).items()):
        limit = HARMONIC_LIMITS_PCT.get(order)
        if limit is None:
            raise InvalidInputError("harmonics_pct", order, "EN 50160 Table 1 covers orders 2-25")
        over = np.flatnonzero(np.any(p95(series) > limit, axis=1))
        for meter in over.tolist():
            orders.setdefault(meter, []).append(order)
    return DistortionWarnings(
        thd_p95_pct=thd,
        unbalance_p95_pct=unbalance,
        thd_warning=np.nan_to_num(thd, nan=0.0) > THD_LIMIT_PCT,
        unbalance_warning=np.nan_to_num(unbalance, nan=0.0) > UNBALANCE_LIMIT_PCT,
        harmonic_orders=orders,
    )


@dataclass(frozen=True)
class TransformerLoading:
    """Per transformer over the period: peak loading and hours above the rating."""

    peak_pct: FloatArray
    hours_over: FloatArray
    overloaded: BoolArray

    def overloaded_transformers(self, network: NetworkModel) -> list[str]:
        return [network.transformers[t] for t in np.flatnonzero(self.overloaded)]


def transformer_loading(
    network: NetworkModel,
    delivered_wh: Float32Array,
    interval_s: int,
    *,
    power_factor: float = 0.95,
    overload_hours: float = 2.0,
    overload_peak: float = 1.5,
) -> TransformerLoading:
    """Loading of each transformer from the energy it delivered per interval.

    Parameters
    ----------
    delivered_wh : float array (n_transformers, T)
        Check-meter energy, or the customers' sum plus losses where there is none. [Wh]
    power_factor : float
        To turn active into apparent power where reactive energy is not measured.
    overload_hours : float
        Hours above the rating in any week that make a transformer overloaded. [h]
    overload_peak : float
        A loading (per unit of the rating) that is an overload however briefly.
    """
    if delivered_wh.shape[0] != network.n_transformers:
        raise InvalidInputError("delivered_wh", delivered_wh.shape, "one row per transformer")
    if not 0 < power_factor <= 1:
        raise InvalidInputError("power_factor", power_factor, "in (0, 1]")
    dt_h = interval_s / 3600.0
    rating_va = network.rating_kva * 1000.0
    load_va = delivered_wh.astype(np.float64) / dt_h / power_factor
    with np.errstate(invalid="ignore", divide="ignore"):
        loading = load_va / rating_va[:, None]
    peak = np.nanmax(np.where(np.isfinite(loading), loading, -np.inf), axis=1)
    peak = np.where(np.isfinite(peak), peak, np.nan)
    over = np.nan_to_num(loading, nan=0.0) > 1.0
    per_week = WEEK_S // interval_s if WEEK_S % interval_s == 0 else over.shape[1]
    worst_week_h = np.zeros(network.n_transformers)
    for lo in range(0, over.shape[1], per_week):
        worst_week_h = np.maximum(worst_week_h, over[:, lo : lo + per_week].sum(axis=1) * dt_h)
    overloaded = (worst_week_h >= overload_hours) | (np.nan_to_num(peak, nan=0.0) >= overload_peak)
    return TransformerLoading(peak * 100.0, worst_week_h, overloaded)
