"""Solar geometry and clear-sky irradiance for rooftop PV.

Plain functions over numpy arrays, after pvlib's ``solarposition`` and ``clearsky`` modules
(the equations below are the published ones; the code is meterstack's own).

References
----------
.. [1] J. W. Spencer, "Fourier series representation of the position of the sun",
   Search 2(5), p. 172, 1971.
.. [2] NOAA Global Monitoring Laboratory, "General Solar Position Calculations"
   (fractional year, declination and equation of time after [1], hour angle, zenith).
.. [3] B. Haurwitz, "Insolation in relation to cloudiness and cloud density",
   Journal of Meteorology 2, pp. 154-166, 1945.
.. [4] M. J. Reno, C. W. Hansen, J. S. Stein, "Global horizontal irradiance clear sky
   models: implementation and analysis", Sandia report SAND2012-2389, 2012.
.. [5] J. A. Duffie, W. A. Beckman, "Solar Engineering of Thermal Processes", 4th ed.,
   Wiley 2013, eq. 1.6.10 (sunset hour angle).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "clear_sky_ghi_haurwitz",
    "cos_zenith",
    "day_length_h",
    "declination_spencer",
    "equation_of_time_spencer",
    "fractional_year",
    "interval_mean_clear_sky_ghi",
]

FloatArray = npt.NDArray[np.float64]

_DAY_S = 86400
#: Sub-step used to average irradiance over an interval. [s]
_SUB_STEP_S = 300


def fractional_year(epoch_s: npt.NDArray[np.int64]) -> FloatArray:
    """Fractional year angle of [2].

    gamma = 2 pi / days_in_year * (day_of_year - 1 + (hour - 12) / 24)

    Parameters
    ----------
    epoch_s : int array
        Instants, POSIX seconds (UTC). [s]

    Returns
    -------
    gamma : array
        [rad]
    """
    seconds = np.asarray(epoch_s, dtype=np.int64)
    days = seconds // _DAY_S
    dates = days.astype("datetime64[D]")
    year_start = dates.astype("datetime64[Y]")
    day_of_year = (dates - year_start).astype(np.int64) + 1
    next_year = (year_start + np.timedelta64(1, "Y")).astype("datetime64[D]")
    days_in_year = (next_year - year_start.astype("datetime64[D]")).astype(np.float64)
    hour = (seconds - days * _DAY_S) / 3600.0
    gamma: FloatArray = 2.0 * np.pi / days_in_year * (day_of_year - 1 + (hour - 12.0) / 24.0)
    return gamma


def declination_spencer(gamma: FloatArray) -> FloatArray:
    """Solar declination, Fourier series of [1] as given in [2].

    delta = 0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g
            + 0.000907 sin 2g - 0.002697 cos 3g + 0.00148 sin 3g

    Parameters
    ----------
    gamma : array
        Fractional year. [rad]

    Returns
    -------
    delta : array
        Declination. [rad]
    """
    return (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )


def equation_of_time_spencer(gamma: FloatArray) -> FloatArray:
    """Equation of time, Fourier series of [1] as given in [2].

    E = 229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g
                - 0.014615 cos 2g - 0.040849 sin 2g)

    Parameters
    ----------
    gamma : array
        Fractional year. [rad]

    Returns
    -------
    eot : array
        Apparent minus mean solar time. [min]
    """
    return 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )


def cos_zenith(
    epoch_s: npt.NDArray[np.int64], latitude_deg: float, longitude_deg: float
) -> FloatArray:
    """Cosine of the solar zenith angle (= sine of the elevation), after [2].

    true solar time  tst = minutes_of_day_utc + eot + 4 longitude     [min]
    hour angle       omega = tst / 4 - 180                            [deg]
    cos(zenith) = sin(phi) sin(delta) + cos(phi) cos(delta) cos(omega)

    Parameters
    ----------
    epoch_s : int array
        Instants, POSIX seconds (UTC). [s]
    latitude_deg : float
        Site latitude, north positive. [deg]
    longitude_deg : float
        Site longitude, east positive. [deg]

    Returns
    -------
    cos_z : array
        Negative when the sun is below the horizon. [-]
    """
    seconds = np.asarray(epoch_s, dtype=np.int64)
    gamma = fractional_year(seconds)
    delta = declination_spencer(gamma)
    minutes_utc = (seconds % _DAY_S) / 60.0
    true_solar_min = minutes_utc + equation_of_time_spencer(gamma) + 4.0 * longitude_deg
    omega = np.radians(true_solar_min / 4.0 - 180.0)
    phi = np.radians(latitude_deg)
    result: FloatArray = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega)
    return result


def clear_sky_ghi_haurwitz(cos_z: FloatArray) -> FloatArray:
    """Clear-sky global horizontal irradiance, Haurwitz model [3], coefficients as in [4].

    GHI = 1098 cos(z) exp(-0.059 / cos(z)),  0 when the sun is below the horizon.

    Parameters
    ----------
    cos_z : array
        Cosine of the solar zenith angle. [-]

    Returns
    -------
    ghi : array
        [W/m^2]
    """
    up = cos_z > 0.0
    safe = np.where(up, cos_z, 1.0)
    return np.where(up, 1098.0 * safe * np.exp(-0.059 / safe), 0.0)


def day_length_h(declination_rad: FloatArray, latitude_deg: float) -> FloatArray:
    """Hours between sunrise and sunset, from the sunset hour angle of [5].

    cos(omega_s) = -tan(phi) tan(delta),  day length = 2 omega_s / 15

    Clipped to 0 (polar night) and 24 h (midnight sun).

    Parameters
    ----------
    declination_rad : array
        Solar declination. [rad]
    latitude_deg : float
        Site latitude. [deg]

    Returns
    -------
    hours : array
        [h]
    """
    cos_ws = np.clip(-np.tan(np.radians(latitude_deg)) * np.tan(declination_rad), -1.0, 1.0)
    result: FloatArray = 2.0 * np.degrees(np.arccos(cos_ws)) / 15.0
    return result


def interval_mean_clear_sky_ghi(
    interval_end_s: npt.NDArray[np.int64],
    interval_s: int,
    latitude_deg: float,
    longitude_deg: float,
) -> FloatArray:
    """Clear-sky GHI averaged over each interval ``(end - interval_s, end]``.

    The average is taken over the midpoints of ``_SUB_STEP_S`` sub-steps, so an interval
    gets irradiance only if the sun is up during part of it.

    Parameters
    ----------
    interval_end_s : int array
        Interval end labels, POSIX seconds (UTC). [s]
    interval_s : int
        Interval length, a multiple of 300. [s]
    latitude_deg, longitude_deg : float
        Site position. [deg]

    Returns
    -------
    ghi : array
        Interval-mean clear-sky GHI. [W/m^2]
    """
    n_sub = max(1, interval_s // _SUB_STEP_S)
    step = interval_s // n_sub
    offsets = np.arange(n_sub, dtype=np.int64) * step + step // 2 - interval_s
    instants = interval_end_s[:, None] + offsets[None, :]
    ghi = clear_sky_ghi_haurwitz(cos_zenith(instants, latitude_deg, longitude_deg))
    result: FloatArray = ghi.mean(axis=1)
    return result
