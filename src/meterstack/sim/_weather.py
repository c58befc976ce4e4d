"""Fleet-wide daily weather: mean air temperature and clear-sky index.

Every meter of a simulated fleet sits in one town, so one daily series drives the heating and
cooling load of all of them and the clouds over all their panels.

* Temperature: a seasonal sinusoid around a coarse zonal climatology plus a first-order
  autoregressive anomaly (weather persists for a few days) [1].
* Clear-sky index (measured over clear-sky GHI): a seasonal mean (summers clearer) plus an
  anomaly correlated with the temperature anomaly, positively in summer (hot days are sunny)
  and negatively in winter (cold days are clear, anticyclonic).
* Degree days with the usual bases: 15.5 degC for heating [2], 18.3 degC (65 degF) for
  cooling [3].

References
----------
.. [1] D. S. Wilks, "Statistical Methods in the Atmospheric Sciences", 3rd ed., Academic
   Press 2011, ch. 9 (autoregressive models of daily weather series).
.. [2] CIBSE TM41, "Degree-days: theory and application", 2006 (UK base 15.5 degC).
.. [3] ASHRAE Handbook - Fundamentals, 2021, ch. 14 (degree days, base 65 degF).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.sim._noise import ar1_series, smoothed_noise

__all__ = [
    "COOLING_BASE_C",
    "HEATING_BASE_C",
    "DailyWeather",
    "cooling_degree_days",
    "daily_weather",
    "heating_degree_days",
    "interval_clear_sky_index",
    "season_phase",
]

FloatArray = npt.NDArray[np.float64]

HEATING_BASE_C = 15.5
COOLING_BASE_C = 18.3
#: Day of year of the warmest day in the northern hemisphere (about a month after the
#: solstice, the thermal lag of land climates).
_WARMEST_DAY_NORTH = 200.0
#: Lag-one autocorrelation and standard deviation of the daily temperature anomaly. [-], [K]
_ANOMALY_PHI = 0.75
_ANOMALY_SD_K = 2.5


@dataclass(frozen=True)
class DailyWeather:
    """One value per local day.

    Attributes
    ----------
    temperature_c : array
        Daily mean air temperature. [degC]
    clear_sky_index : array
        Daily GHI over clear-sky GHI, 0.1 .. 1.0. [-]
    """

    temperature_c: FloatArray
    clear_sky_index: FloatArray


def season_phase(day_of_year: npt.NDArray[np.integer], latitude_deg: float) -> FloatArray:
    """+1 on the warmest day of the year, -1 on the coldest (hemisphere-aware). [-]"""
    warmest = _WARMEST_DAY_NORTH if latitude_deg >= 0.0 else _WARMEST_DAY_NORTH - 365.25 / 2
    result: FloatArray = np.cos(2.0 * np.pi * (day_of_year - warmest) / 365.25)
    return result


def daily_weather(
    rng: np.random.Generator, day_of_year: npt.NDArray[np.integer], latitude_deg: float
) -> DailyWeather:
    """Daily mean temperature and clear-sky index for consecutive local days.

    T[d]  = T_mean + A s[d] + 2.5 x[d],  x an AR(1) with phi = 0.75
    T_mean = min(27, 30 - 0.4 |lat|),  A = 1 + 0.2 |lat|          (coarse zonal fit)
    kc[d] = clip(0.62 + 0.12 s[d] m + 0.18 (rho[d] x[d] + sqrt(1 - rho^2) e[d]), 0.1, 1.0)
    rho[d] = 0.5 s[d],  m = min(1, |lat| / 30)

    where s is :func:`season_phase`.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the weather anomalies.
    day_of_year : int array
        Local day of year of each consecutive day, 1 .. 366.
    latitude_deg : float
        Site latitude. [deg]

    Returns
    -------
    DailyWeather
    """
    n = int(day_of_year.shape[0])
    abs_lat = abs(latitude_deg)
    season = season_phase(day_of_year, latitude_deg)
    anomaly = ar1_series(rng, n, _ANOMALY_PHI)
    mean_c = min(27.0, 30.0 - 0.4 * abs_lat)
    amplitude_k = 1.0 + 0.2 * abs_lat
    temperature = mean_c + amplitude_k * season + _ANOMALY_SD_K * anomaly

    rho = 0.5 * season
    cloud = rho * anomaly + np.sqrt(1.0 - rho * rho) * rng.standard_normal(n)
    seasonal_kc = 0.62 + 0.12 * season * min(1.0, abs_lat / 30.0)
    clear_sky_index = np.clip(seasonal_kc + 0.18 * cloud, 0.1, 1.0)
    return DailyWeather(temperature_c=temperature, clear_sky_index=clear_sky_index)


def interval_clear_sky_index(
    rng: np.random.Generator, daily_index: FloatArray, interval_s: int
) -> FloatArray:
    """Clear-sky index of each interval: the day's value with passing clouds.

    kc[t] = clip(kc_d (1 + 1.6 kc_d (1 - kc_d) n[t]), 0.05, 1.3)

    n is unit Gaussian noise decorrelating over about an hour. The spread peaks on
    broken-cloud days (kc_d near 0.5) and vanishes on clear and overcast days; values above
    1 are cloud enhancement (sun between clouds).

    Parameters
    ----------
    rng : numpy.random.Generator
    daily_index : array
        The clear-sky index of each interval's day. [-]
    interval_s : int
        [s]
    """
    cloud = smoothed_noise(rng, daily_index.shape[0], 3600.0 / interval_s)
    spread = 1.6 * daily_index * (1.0 - daily_index)
    result: FloatArray = np.clip(daily_index * (1.0 + spread * cloud), 0.05, 1.3)
    return result


def heating_degree_days(temperature_c: FloatArray) -> FloatArray:
    """max(15.5 - T, 0) per day [2]. [K d]"""
    result: FloatArray = np.maximum(HEATING_BASE_C - temperature_c, 0.0)
    return result


def cooling_degree_days(temperature_c: FloatArray) -> FloatArray:
    """max(T - 18.3, 0) per day [3]. [K d]"""
    result: FloatArray = np.maximum(temperature_c - COOLING_BASE_C, 0.0)
    return result
