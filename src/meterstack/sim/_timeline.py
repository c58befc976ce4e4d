"""Everything per interval that all meters share: local time, weather, sun, fleet voltage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.core.time import zone
from meterstack.sim import _demand, _solar, _streams, _voltage, _weather
from meterstack.sim._localtime import OffsetTable, local_time_features

__all__ = ["Timeline", "build_timeline"]

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Timeline:
    """Per-interval series shared by every meter of the fleet.

    Attributes
    ----------
    first_end_s : int
        End of the first interval, POSIX seconds. [s]
    interval_s : int
        [s]
    clock : ShapeClock
        Local hour, weekday and lighting gain of each interval.
    day_index : int array
        Index of each interval's local day into ``local_days``.
    local_days : int array
        Local days touched, counted from 1970-01-01 local, starting the day before the
        first interval (sessions may start then). [d]
    heating_dd, cooling_dd : float32 array
        Degree days of each interval's local day. [K d]
    pv_kw_per_kwp : float32 array
        GHI / 1000 W/m^2: PV output per kWp at a performance ratio of 1. [kW/kWp]
    fleet_voltage_pu : float32 array
        Voltage deviation common to the fleet. [pu]
    offsets : OffsetTable
        UTC offsets of the zone over the span.
    """

    first_end_s: int
    interval_s: int
    clock: _demand.ShapeClock
    day_index: npt.NDArray[np.intp]
    local_days: npt.NDArray[np.int64]
    heating_dd: Float32Array
    cooling_dd: Float32Array
    pv_kw_per_kwp: Float32Array
    fleet_voltage_pu: Float32Array
    offsets: OffsetTable

    @property
    def n_days(self) -> int:
        return int(self.local_days.shape[0])

    @property
    def n_intervals(self) -> int:
        return int(self.clock.hour.shape[0])


def build_timeline(
    interval_end_s: npt.NDArray[np.int64],
    interval_s: int,
    *,
    seed: int,
    timezone: str,
    latitude_deg: float,
    pv_penetration: float,
) -> Timeline:
    """Compute the shared series for intervals ending at ``interval_end_s``.

    The fleet is placed on its zone's standard meridian, longitude = 15 deg/h x the standard
    (non-DST) UTC offset at the start, for lack of a longitude argument: solar noon then
    falls near 12:00 local standard time, give or take the equation of time.
    """
    offsets = OffsetTable.build(
        zone(timezone), float(interval_end_s[0] - interval_s), float(interval_end_s[-1])
    )
    features = local_time_features(interval_end_s - interval_s // 2, offsets)
    first_day = int(features.local_day[0]) - 1
    local_days = np.arange(first_day, int(features.local_day[-1]) + 1, dtype=np.int64)
    day_index = (features.local_day - first_day).astype(np.intp)
    dates = local_days.astype("datetime64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1

    rng = _streams.stream(seed, _streams.WEATHER)
    weather = _weather.daily_weather(rng, day_of_year, latitude_deg)

    local_noon_s = local_days * 86400 + 43200
    noon_s = local_noon_s - offsets.offset_at(local_noon_s)
    declination = _solar.declination_spencer(_solar.fractional_year(noon_s))
    lighting = _demand.lighting_gain(_solar.day_length_h(declination, latitude_deg))
    clock = _demand.ShapeClock(
        hour=features.hour,
        weekday=features.weekday,
        evening_gain=lighting[day_index].astype(np.float32),
    )

    longitude_deg = int(offsets.standard_offset_at(interval_end_s[:1])[0]) / 240.0
    ghi_clear = _solar.interval_mean_clear_sky_ghi(
        interval_end_s, interval_s, latitude_deg, longitude_deg
    )
    clear_sky_index = _weather.interval_clear_sky_index(
        rng, weather.clear_sky_index[day_index], interval_s
    )
    ghi = ghi_clear * clear_sky_index

    activity = _demand.ResidentialParams.typical().shape(clock)[0].astype(np.float64)
    fleet_pu = _voltage.fleet_voltage_pu(
        rng, activity, ghi, pv_penetration=pv_penetration, interval_s=interval_s
    )
    degree_days = (
        _weather.heating_degree_days(weather.temperature_c)[day_index],
        _weather.cooling_degree_days(weather.temperature_c)[day_index],
    )
    return Timeline(
        first_end_s=int(interval_end_s[0]),
        interval_s=interval_s,
        clock=clock,
        day_index=day_index,
        local_days=local_days,
        heating_dd=degree_days[0].astype(np.float32),
        cooling_dd=degree_days[1].astype(np.float32),
        pv_kw_per_kwp=(ghi / 1000.0).astype(np.float32),
        fleet_voltage_pu=fleet_pu,
        offsets=offsets,
    )
