"""Appliance sessions of homes: short high-power uses and electric-vehicle charging.

A session runs at constant power from a start instant for a duration; its energy is split
exactly over the intervals it overlaps, so a three-minute kettle that straddles a boundary
lands in both intervals.

Short uses (kettle, oven, hob, washing machine, dryer)
    Poisson number per home and day with mean ``APPLIANCE_SHARE`` x daily energy / mean
    session energy (``APPLIANCE_SHARE`` = 12 % of a home's energy); start time drawn from
    the home's own morning, midday or evening bump; power 1.5-3 kW, duration 3-30 min.
Electric-vehicle charging
    Homes with an EV plug in on 45 % of days; 30 % of them charge on a timer at
    00:30-00:45 local (night tariffs), the rest on arrival, around 18:30 (sd 1.5 h) on
    weekdays and 14:00 (sd 3 h) at weekends. Charger 7.4 kW (32 A) or 3.7 kW (16 A)
    single-phase [1]; 5-25 kWh a session, so a session lasts 40 min to about 7 h.

References
----------
.. [1] IEC 61851-1:2017, Electric vehicle conductive charging system - Part 1: General
   requirements (mode 3 AC charging at 16 A and 32 A single-phase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.sim._localtime import OffsetTable

__all__ = [
    "APPLIANCE_SHARE",
    "EV_CHARGER_KW",
    "EV_SHARE",
    "Sessions",
    "add_sessions",
    "appliance_sessions",
    "ev_sessions",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

APPLIANCE_SHARE = 0.12
_APPLIANCE_KW = (1.5, 3.0)
_APPLIANCE_MIN = (3.0, 30.0)
_MEAN_APPLIANCE_KWH = sum(_APPLIANCE_KW) / 2 * sum(_APPLIANCE_MIN) / 2 / 60.0
#: Start-time law of short uses: (probability, weekday mean, weekday sd, weekend mean,
#: weekend sd, which per-meter shift applies) for morning, midday and evening.
_APPLIANCE_TIMES = (
    (0.30, 7.5, 1.2, 9.5, 1.8, "morning"),
    (0.25, 13.0, 2.5, 13.0, 2.5, ""),
    (0.45, 19.0, 2.5, 18.5, 2.7, "evening"),
)

EV_SHARE = 0.06
EV_CHARGER_KW = (3.7, 7.4)
_EV_DAILY_PROBABILITY = 0.45
_EV_SESSION_KWH = (5.0, 25.0)
_EV_TIMER_H = 0.5


@dataclass(frozen=True)
class Sessions:
    """Constant-power sessions of the meters of one chunk.

    Attributes
    ----------
    row : int array
        Row of the meter in the chunk's arrays.
    start_s : int array
        Start, POSIX seconds (UTC). [s]
    duration_s : float array
        [s]
    power_kw : float array
        [kW]
    """

    row: IntArray
    start_s: IntArray
    duration_s: FloatArray
    power_kw: FloatArray


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> FloatArray:
    result: FloatArray = bounds[0] + (bounds[1] - bounds[0]) * rng.random(n)
    return result


def _per_day(
    counts: npt.NDArray[np.int64], rows: IntArray, days: IntArray
) -> tuple[IntArray, IntArray]:
    """Row and local day of each session, from a (meters x days) array of session counts."""
    flat = counts.ravel()
    row = np.repeat(np.repeat(rows, days.shape[0]), flat)
    day = np.repeat(np.tile(days, rows.shape[0]), flat)
    return row, day


def appliance_sessions(
    rng: np.random.Generator,
    rows: IntArray,
    *,
    daily_kwh: FloatArray,
    morning_shift_h: npt.NDArray[np.float32],
    evening_shift_h: npt.NDArray[np.float32],
    local_days: IntArray,
    offsets: OffsetTable,
) -> Sessions:
    """Short high-power uses of homes, see the module docstring.

    Parameters
    ----------
    rng : numpy.random.Generator
    rows : int array
        Chunk rows of the homes.
    daily_kwh : float array
        Mean daily energy of each home. [kWh/d]
    morning_shift_h, evening_shift_h : float32 array
        Each home's shift of its morning and evening peak. [h]
    local_days : int array
        Local days to fill, counted from 1970-01-01 local. [d]
    offsets : OffsetTable
        The zone's UTC offsets, to turn local start times into UTC.
    """
    rate = APPLIANCE_SHARE * daily_kwh / _MEAN_APPLIANCE_KWH
    counts = rng.poisson(rate[:, None], size=(rows.shape[0], local_days.shape[0]))
    row, day = _per_day(counts, np.arange(rows.shape[0], dtype=np.int64), local_days)
    n = row.shape[0]
    weekend = (day + 3) % 7 >= 5
    pick = np.searchsorted(np.cumsum([t[0] for t in _APPLIANCE_TIMES])[:-1], rng.random(n))
    mean_h = np.zeros(n)
    sd_h = np.ones(n)
    for k, (_, wd_mean, wd_sd, we_mean, we_sd, shift) in enumerate(_APPLIANCE_TIMES):
        chosen = pick == k
        mean_h[chosen] = np.where(weekend[chosen], we_mean, wd_mean)
        sd_h[chosen] = np.where(weekend[chosen], we_sd, wd_sd)
        if shift == "morning":
            mean_h[chosen] += morning_shift_h[row[chosen]]
        elif shift == "evening":
            mean_h[chosen] += evening_shift_h[row[chosen]]
    omega = 2.0 * np.pi / 24.0
    spread_h = rng.vonmises(0.0, 1.0 / (omega * sd_h) ** 2) / omega
    hour = np.mod(mean_h + spread_h, 24.0)
    local_s = day * 86400 + np.round(hour * 3600.0).astype(np.int64)
    return Sessions(
        row=rows[row],
        start_s=offsets.wall_to_epoch(local_s),
        duration_s=_uniform(rng, _APPLIANCE_MIN, n) * 60.0,
        power_kw=_uniform(rng, _APPLIANCE_KW, n),
    )


def ev_sessions(
    rng: np.random.Generator,
    rows: IntArray,
    *,
    charger_kw: FloatArray,
    on_timer: npt.NDArray[np.bool_],
    local_days: IntArray,
    offsets: OffsetTable,
) -> Sessions:
    """Electric-vehicle charging sessions, see the module docstring.

    Parameters
    ----------
    rng : numpy.random.Generator
    rows : int array
        Chunk rows of the homes with an EV.
    charger_kw : float array
        Each home's charger power. [kW]
    on_timer : bool array
        Whether each home charges on a night timer.
    local_days : int array
        Local days to fill, counted from 1970-01-01 local. [d]
    offsets : OffsetTable
        The zone's UTC offsets.
    """
    plugged = rng.random((rows.shape[0], local_days.shape[0])) < _EV_DAILY_PROBABILITY
    row, day = _per_day(plugged.astype(np.int64), np.arange(rows.shape[0]), local_days)
    n = row.shape[0]
    weekend = (day + 3) % 7 >= 5
    arrival_h = np.where(weekend, rng.normal(14.0, 3.0, n), rng.normal(18.5, 1.5, n)).clip(
        6.0, 23.75
    )
    timer_h = _EV_TIMER_H + rng.uniform(0.0, 0.25, n)
    hour = np.where(on_timer[row], timer_h, arrival_h)
    energy_kwh = _uniform(rng, _EV_SESSION_KWH, n)
    local_s = day * 86400 + np.round(hour * 3600.0).astype(np.int64)
    return Sessions(
        row=rows[row],
        start_s=offsets.wall_to_epoch(local_s),
        duration_s=energy_kwh / charger_kw[row] * 3600.0,
        power_kw=charger_kw[row],
    )


def add_sessions(
    energy_wh: npt.NDArray[np.float32],
    sessions: Sessions,
    first_end_s: int,
    interval_s: int,
) -> None:
    """Add each session's energy to the intervals it overlaps, in place.

    Interval k covers (first_end_s + (k - 1) interval_s, first_end_s + k interval_s]; the
    energy of session j in it is power_j x |overlap| (sessions outside the span are cut).

    Parameters
    ----------
    energy_wh : float32 array (rows x intervals)
        Energy per interval, modified in place. [Wh]
    sessions : Sessions
    first_end_s : int
        End of the first interval, POSIX seconds. [s]
    interval_s : int
        [s]
    """
    n_rows, n_intervals = energy_wh.shape
    if sessions.row.shape[0] == 0:
        return
    origin = first_end_s - interval_s
    span = int(np.ceil(float(sessions.duration_s.max()) / interval_s)) + 1
    first = np.floor_divide(sessions.start_s - origin, interval_s)
    index = first[:, None] + np.arange(span)[None, :]
    lower = np.maximum(origin + index * interval_s, sessions.start_s[:, None])
    upper = np.minimum(
        origin + (index + 1) * interval_s,
        sessions.start_s[:, None] + sessions.duration_s[:, None],
    )
    overlap_s = upper - lower
    keep = (overlap_s > 0) & (index >= 0) & (index < n_intervals)
    energy = (sessions.power_kw[:, None] * overlap_s / 3.6)[keep]
    flat = (sessions.row[:, None] * n_intervals + index)[keep]
    added = np.bincount(flat, weights=energy, minlength=n_rows * n_intervals)
    energy_wh += added.reshape(n_rows, n_intervals).astype(np.float32)
