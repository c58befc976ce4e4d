"""Demand of the three customer classes: daily and weekly shapes, weather, noise.

Each class draws its per-meter parameters once (``draw``) and turns them into a shape over a
:class:`ShapeClock` (``shape``): a float32 (meters x intervals) array whose mean over a
reference week (five weekdays, a Saturday and a Sunday, evening gain 1) is exactly 1, so
``daily_kwh`` is each meter's weather-neutral mean daily energy. :func:`demand_kw` then
applies the weather and the noise and scales to power.

Residential
    base + morning + midday + evening, each a von Mises bump on the 24-h circle
    (a periodic Gaussian), normalised so that its daily mean is its weight:

        bump(h) = g exp(kappa cos(omega (h - mu - s))) / I0(kappa),  omega = 2 pi / 24 h,
        kappa = 1 / (omega sd)^2

    with per-meter weights and shifts ``s`` of the morning and evening peaks; weekends have
    a later, flatter morning and a heavier midday (the shape of standard residential load
    profiles such as Elexon profile class 1 [1] and BDEW H0 [2]). The evening bump carries
    the lighting gain (longer nights, more lighting).
Commercial
    base + (1 - base) W(h) day(w), with W a business-hours window of logistic edges
    (open 06:30-09:00, close 17:00-20:30) and day(w) 1 on weekdays, a per-meter Saturday
    factor (shops open, offices closed) and a smaller Sunday factor [1].
Industrial
    base + (1 - base) W(h) day(w), with W the window of 1, 2 or 3 eight-hour shifts
    starting 05:30-07:00 (three shifts run round the clock), a high base (ventilation,
    compressed air, furnaces held hot, refrigeration) and reduced weekends.

Weather: power is multiplied by 1 + H HDD + C CDD with per-meter heating and cooling
sensitivities (fraction of demand per degree day), largest for homes.

Noise: a mean-one lognormal day factor per meter and day (occupancy, production volume)
times a mean-one lognormal factor per interval whose spread grows as sqrt(1800 s / interval)
(shorter intervals average less).

References
----------
.. [1] Elexon, "Load Profiles and their use in Electricity Settlement", 2013
   (profile classes 1-8: domestic, non-domestic, maximum-demand customers).
.. [2] VDEW (now BDEW), "Repräsentative VDEW-Lastprofile", 1999 (standard load profiles
   H0 household, G0-G6 business, L0-L2 farm).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "CommercialParams",
    "IndustrialParams",
    "ResidentialParams",
    "ShapeClock",
    "demand_kw",
    "lighting_gain",
]

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

_OMEGA = 2.0 * np.pi / 24.0  # [rad/h]


@dataclass(frozen=True)
class ShapeClock:
    """Per-interval inputs of the shapes (all arrays of one length).

    Attributes
    ----------
    hour : float32 array
        Local hour of day at the interval midpoint. [h]
    weekday : int8 array
        Local day of week, Monday = 0.
    evening_gain : float32 array
        Lighting gain of the residential evening bump, 1 at a 12-h day. [-]
    """

    hour: Float32Array
    weekday: npt.NDArray[np.int8]
    evening_gain: Float32Array

    @property
    def weekend(self) -> npt.NDArray[np.bool_]:
        return self.weekday >= 5

    def day_factor(self, saturday: Float32Array, sunday: Float32Array) -> Float32Array:
        """1 on weekdays, the per-meter Saturday or Sunday factor otherwise. (meters x T)"""
        is_saturday = (self.weekday == 5).astype(np.float32)
        is_sunday = (self.weekday == 6).astype(np.float32)
        factor: Float32Array = np.multiply.outer(saturday, is_saturday)
        factor += np.multiply.outer(sunday, is_sunday)
        factor += (self.weekday < 5).astype(np.float32)
        return factor


class _PerMeter:
    """Mixin: every field is a per-meter array; ``take`` selects meters."""

    def take(self, rows: npt.NDArray[np.intp]) -> Self:
        changes = {f.name: getattr(self, f.name)[rows] for f in fields(self)}  # type: ignore[arg-type]
        return replace(self, **changes)  # type: ignore[type-var]


def lighting_gain(day_length_h: FloatArray) -> FloatArray:
    """Gain of the residential evening bump from the day length. [-]

    g = clip(1 + 0.05 (12 - day_length), 0.7, 1.4): about +-17 % at 45 deg latitude between
    the solstices, the winter/summer swing of evening lighting in domestic profiles [1].

    Parameters
    ----------
    day_length_h : array
        Hours from sunrise to sunset. [h]
    """
    result: FloatArray = np.clip(1.0 + 0.05 * (12.0 - day_length_h), 0.7, 1.4)
    return result


def _f32(values: FloatArray) -> Float32Array:
    return np.asarray(values, dtype=np.float32)


def _logistic(x: Float32Array) -> Float32Array:
    """1 / (1 + exp(-x)), written through tanh so large |x| never overflows."""
    result: Float32Array = np.tanh(x * np.float32(0.5))
    result += np.float32(1.0)
    result *= np.float32(0.5)
    return result


@dataclass(frozen=True)
class _Bump:
    """One von Mises bump of the residential shape."""

    mean_h: tuple[float, float]  # (weekday, weekend) [h]
    sd_h: tuple[float, float]  # (weekday, weekend) [h]
    weekend_gain: float  # [-]
    lit: bool  # carries the lighting gain


_MORNING = _Bump(mean_h=(7.5, 9.5), sd_h=(1.2, 1.8), weekend_gain=0.9, lit=False)
_MIDDAY = _Bump(mean_h=(13.0, 13.0), sd_h=(2.5, 2.5), weekend_gain=1.6, lit=False)
_EVENING = _Bump(mean_h=(19.0, 18.5), sd_h=(2.5, 2.7), weekend_gain=1.05, lit=True)


def _bump_terms(bump: _Bump, clock: ShapeClock) -> tuple[Float32Array, Float32Array, Float32Array]:
    """Per-interval c, s, d with log(bump) = c cos(b) + s sin(b) + d, b = omega x shift."""
    weekend = clock.weekend
    mean_h = np.where(weekend, bump.mean_h[1], bump.mean_h[0])
    sd_h = np.where(weekend, bump.sd_h[1], bump.sd_h[0])
    gain = np.where(weekend, bump.weekend_gain, 1.0)
    if bump.lit:
        gain = gain * clock.evening_gain
    kappa = 1.0 / (_OMEGA * sd_h) ** 2
    angle = _OMEGA * (clock.hour - mean_h)
    return (
        _f32(kappa * np.cos(angle)),
        _f32(kappa * np.sin(angle)),
        _f32(np.log(gain) - np.log(np.i0(kappa))),
    )


def _add_bump(
    out: Float32Array,
    bump: _Bump,
    clock: ShapeClock,
    weight: Float32Array,
    shift_h: Float32Array | None,
) -> None:
    """out += weight * bump, with the bump shifted by ``shift_h`` per meter (vectorised:
    cos(a - b) = cos a cos b + sin a sin b, so only one exp per element)."""
    c, s, d = _bump_terms(bump, clock)
    if shift_h is None:
        out += np.multiply.outer(weight, np.exp(c + d))
        return
    b = shift_h * np.float32(_OMEGA)
    work = np.multiply.outer(np.cos(b), c)
    work += np.multiply.outer(np.sin(b), s)
    work += d
    np.exp(work, out=work)
    work *= weight[:, None]
    out += work


@dataclass(frozen=True)
class ResidentialParams(_PerMeter):
    """Per-meter parameters of homes.

    daily_kwh: lognormal, median 9 kWh/day, sigma 0.45 (mean 10 kWh/day, about 3,600 kWh a
    year: the order of a European or Australian home without electric heating).
    """

    daily_kwh: FloatArray  # [kWh/d]
    heating_per_k: FloatArray  # [1/(K d)]
    cooling_per_k: FloatArray  # [1/(K d)]
    base_weight: Float32Array  # [-]
    morning_weight: Float32Array  # [-]
    midday_weight: Float32Array  # [-]
    evening_weight: Float32Array  # [-]
    morning_shift_h: Float32Array  # [h]
    evening_shift_h: Float32Array  # [h]

    DAY_SD = 0.15
    INTERVAL_SD_30MIN = 0.25

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> ResidentialParams:
        raw = rng.uniform((0.40, 0.08, 0.10, 0.20), (0.60, 0.16, 0.22, 0.32), size=(n, 4))
        weights = raw / raw.sum(axis=1, keepdims=True)
        shifts = np.clip(rng.normal(0.0, 0.6, size=(n, 2)), -1.5, 1.5)
        return cls(
            daily_kwh=np.clip(rng.lognormal(np.log(9.0), 0.45, n), 1.5, 60.0),
            heating_per_k=np.clip(rng.lognormal(np.log(0.012), 0.8, n), 0.0, 0.08),
            cooling_per_k=np.clip(rng.lognormal(np.log(0.015), 0.9, n), 0.0, 0.10),
            base_weight=_f32(weights[:, 0]),
            morning_weight=_f32(weights[:, 1]),
            midday_weight=_f32(weights[:, 2]),
            evening_weight=_f32(weights[:, 3]),
            morning_shift_h=_f32(shifts[:, 0]),
            evening_shift_h=_f32(shifts[:, 1]),
        )

    @classmethod
    def typical(cls) -> ResidentialParams:
        """One home with the mean weights, no peak shifts and 10 kWh/day."""
        weights = np.array([0.50, 0.12, 0.16, 0.26])
        weights /= weights.sum()
        return cls(
            daily_kwh=np.array([10.0]),
            heating_per_k=np.array([0.017]),
            cooling_per_k=np.array([0.023]),
            base_weight=_f32(weights[:1]),
            morning_weight=_f32(weights[1:2]),
            midday_weight=_f32(weights[2:3]),
            evening_weight=_f32(weights[3:]),
            morning_shift_h=np.zeros(1, dtype=np.float32),
            evening_shift_h=np.zeros(1, dtype=np.float32),
        )

    def shape(self, clock: ShapeClock) -> Float32Array:
        out = np.empty((self.base_weight.shape[0], clock.hour.shape[0]), dtype=np.float32)
        out[...] = self.base_weight[:, None]
        _add_bump(out, _MORNING, clock, self.morning_weight, self.morning_shift_h)
        _add_bump(out, _MIDDAY, clock, self.midday_weight, None)
        _add_bump(out, _EVENING, clock, self.evening_weight, self.evening_shift_h)
        # Reference-week mean: each bump's daily mean is its gain (1 on weekdays).
        week = [(5.0 + 2.0 * b.weekend_gain) / 7.0 for b in (_MORNING, _MIDDAY, _EVENING)]
        mean = (
            self.base_weight
            + self.morning_weight * week[0]
            + self.midday_weight * week[1]
            + self.evening_weight * week[2]
        )
        out /= mean[:, None]
        return out


@dataclass(frozen=True)
class CommercialParams(_PerMeter):
    """Per-meter parameters of shops, offices, schools.

    daily_kwh: lognormal, median 190 kWh/day, sigma 0.55 (90 % between about 75 and
    470 kWh/day; a small office to a supermarket).
    """

    daily_kwh: FloatArray
    heating_per_k: FloatArray
    cooling_per_k: FloatArray
    base: Float32Array  # share of the open-hours level kept at night [-]
    open_h: Float32Array  # [h]
    close_h: Float32Array  # [h]
    saturday: Float32Array  # [-]
    sunday: Float32Array  # [-]

    DAY_SD = 0.06
    INTERVAL_SD_30MIN = 0.08
    EDGE_H = 0.4

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> CommercialParams:
        opens_saturday = rng.random(n) < 0.4
        opens_sunday = rng.random(n) < 0.15
        return cls(
            daily_kwh=np.clip(rng.lognormal(np.log(190.0), 0.55, n), 20.0, 3000.0),
            heating_per_k=np.clip(rng.lognormal(np.log(0.004), 0.5, n), 0.0, 0.03),
            cooling_per_k=np.clip(rng.lognormal(np.log(0.020), 0.5, n), 0.0, 0.08),
            base=_f32(rng.uniform(0.15, 0.35, n)),
            open_h=_f32(rng.uniform(6.5, 9.0, n)),
            close_h=_f32(rng.uniform(17.0, 20.5, n)),
            saturday=_f32(
                np.where(opens_saturday, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.15, n))
            ),
            sunday=_f32(
                np.where(opens_sunday, rng.uniform(0.4, 0.8, n), rng.uniform(0.0, 0.05, n))
            ),
        )

    def shape(self, clock: ShapeClock) -> Float32Array:
        inv_edge = np.float32(1.0 / self.EDGE_H)
        hour = clock.hour[None, :]
        window = _logistic((hour - self.open_h[:, None]) * inv_edge)
        window -= _logistic((hour - self.close_h[:, None]) * inv_edge)
        window *= clock.day_factor(self.saturday, self.sunday)
        window *= (1.0 - self.base)[:, None]
        window += self.base[:, None]
        # Reference-week mean: the window integrates to (close - open) hours a day.
        open_share = (self.close_h - self.open_h) / 24.0
        days = (5.0 + self.saturday + self.sunday) / 7.0
        window /= (self.base + (1.0 - self.base) * open_share * days)[:, None]
        return window


@dataclass(frozen=True)
class IndustrialParams(_PerMeter):
    """Per-meter parameters of factories and plants.

    daily_kwh: lognormal, median 4.5 MWh/day, sigma 0.75 (90 % between about 1.3 and
    15 MWh/day).
    """

    daily_kwh: FloatArray
    heating_per_k: FloatArray
    cooling_per_k: FloatArray
    base: Float32Array  # [-]
    shifts: Float32Array  # 1, 2 or 3 eight-hour shifts
    first_shift_h: Float32Array  # start of the first shift [h]
    saturday: Float32Array  # [-]
    sunday: Float32Array  # [-]

    DAY_SD = 0.08
    INTERVAL_SD_30MIN = 0.06
    EDGE_H = 0.25
    SHIFT_H = 8.0

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> IndustrialParams:
        shifts = rng.choice(np.array([1.0, 2.0, 3.0]), size=n, p=[0.2, 0.45, 0.35])
        continuous = shifts == 3.0
        return cls(
            daily_kwh=np.clip(rng.lognormal(np.log(4500.0), 0.75, n), 300.0, 60000.0),
            heating_per_k=np.clip(rng.lognormal(np.log(0.001), 0.5, n), 0.0, 0.01),
            cooling_per_k=np.clip(rng.lognormal(np.log(0.004), 0.5, n), 0.0, 0.02),
            base=_f32(rng.uniform(0.35, 0.60, n)),
            shifts=_f32(shifts),
            first_shift_h=_f32(rng.uniform(5.5, 7.0, n)),
            saturday=_f32(np.where(continuous, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.5, n))),
            sunday=_f32(np.where(continuous, rng.uniform(0.2, 0.9, n), rng.uniform(0.0, 0.2, n))),
        )

    def shape(self, clock: ShapeClock) -> Float32Array:
        inv_edge = np.float32(1.0 / self.EDGE_H)
        start = self.first_shift_h[:, None]
        end = start + np.float32(self.SHIFT_H) * self.shifts[:, None]
        hour = clock.hour[None, :]
        # Periodic window: copies one day either side close windows that wrap midnight
        # (three shifts: the copies telescope to 1 all day).
        window = np.zeros((self.base.shape[0], clock.hour.shape[0]), dtype=np.float32)
        for day in (-24.0, 0.0, 24.0):
            shifted = hour + np.float32(day)
            window += _logistic((shifted - start) * inv_edge)
            window -= _logistic((shifted - end) * inv_edge)
        window *= clock.day_factor(self.saturday, self.sunday)
        window *= (1.0 - self.base)[:, None]
        window += self.base[:, None]
        open_share = self.SHIFT_H * self.shifts / 24.0
        days = (5.0 + self.saturday + self.sunday) / 7.0
        window /= (self.base + (1.0 - self.base) * open_share * days)[:, None]
        return window


DemandParams = ResidentialParams | CommercialParams | IndustrialParams


def demand_kw(
    params: DemandParams,
    clock: ShapeClock,
    *,
    heating_dd: Float32Array,
    cooling_dd: Float32Array,
    day_index: npt.NDArray[np.intp],
    n_days: int,
    interval_s: int,
    rng: np.random.Generator,
) -> Float32Array:
    """Mean power of each meter in each interval, weather and noise applied.

    P[i, t] = daily_kwh[i] / 24 h * shape[i, t] * (1 + H[i] HDD[t] + C[i] CDD[t])
              * exp(sd_d z[i, day(t)] + sd_t z[i, t] - (sd_d^2 + sd_t^2) / 2)

    Parameters
    ----------
    params : ResidentialParams, CommercialParams or IndustrialParams
        The meters of one class.
    clock : ShapeClock
        Local time of each interval.
    heating_dd, cooling_dd : float32 array
        Heating and cooling degree days of each interval's local day. [K d]
    day_index : int array
        Index of each interval's local day into ``0 .. n_days - 1``.
    n_days : int
        Number of local days touched by the intervals.
    interval_s : int
        Interval length. [s]
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    power : float32 array (meters x intervals)
        [kW]
    """
    power = params.shape(clock)
    n_meters, n_intervals = power.shape
    weather = np.multiply.outer(_f32(params.heating_per_k), heating_dd)
    weather += np.multiply.outer(_f32(params.cooling_per_k), cooling_dd)
    weather += np.float32(1.0)
    power *= weather
    del weather

    interval_sd = min(
        params.INTERVAL_SD_30MIN * float(np.sqrt(1800.0 / interval_s)),
        2.0 * params.INTERVAL_SD_30MIN,
    )
    noise = rng.standard_normal((n_meters, n_intervals), dtype=np.float32)
    noise *= np.float32(interval_sd)
    day_noise = rng.standard_normal((n_meters, n_days), dtype=np.float32)
    noise += day_noise[:, day_index] * np.float32(params.DAY_SD)
    noise -= np.float32((interval_sd**2 + params.DAY_SD**2) / 2.0)
    np.exp(noise, out=noise)
    power *= noise
    del noise
    power *= _f32(params.daily_kwh / 24.0)[:, None]
    return power
