"""Turn the models into interval arrays for one block of meters at a time.

For meters ``lo:hi`` (a chunk of about a million cells, so temporaries stay small):
demand of each class, appliance and EV sessions, PV, net metering, reactive energy, voltage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.sim import _appliances, _demand, _fleet, _streams, _voltage
from meterstack.sim._timeline import Timeline

__all__ = ["FleetArrays", "FleetModel", "fill_rows"]

Float32Array = npt.NDArray[np.float32]

_RESIDENTIAL, _COMMERCIAL, _INDUSTRIAL = 0, 1, 2


@dataclass(frozen=True)
class FleetArrays:
    """The (meters x intervals) outputs, filled block by block."""

    import_wh: Float32Array
    export_wh: Float32Array
    reactive_varh: Float32Array
    voltage_v: Float32Array

    @classmethod
    def empty(cls, n_meters: int, n_intervals: int) -> FleetArrays:
        shape = (n_meters, n_intervals)
        return cls(
            import_wh=np.empty(shape, dtype=np.float32),
            export_wh=np.empty(shape, dtype=np.float32),
            reactive_varh=np.empty(shape, dtype=np.float32),
            voltage_v=np.empty(shape, dtype=np.float32),
        )


@dataclass(frozen=True)
class FleetModel:
    """Everything drawn once for the whole fleet."""

    seed: int
    timeline: Timeline
    fleet: _fleet.FleetAttributes
    residential: _demand.ResidentialParams
    commercial: _demand.CommercialParams
    industrial: _demand.IndustrialParams
    nominal_voltage_v: float

    def demand_params(self, klass: int, rows: npt.NDArray[np.intp]) -> _demand.DemandParams:
        """The demand parameters of fleet meters ``rows``, all of class ``klass``."""
        if klass == _RESIDENTIAL:
            return self.residential.take(rows)
        if klass == _COMMERCIAL:
            return self.commercial.take(rows)
        return self.industrial.take(rows)

    def daily_kwh(self, rows: slice) -> npt.NDArray[np.float64]:
        """Weather-neutral mean daily energy of fleet meters ``rows``. [kWh/d]"""
        classes = self.fleet.customer_class[rows]
        return np.choose(
            classes,
            (
                self.residential.daily_kwh[rows],
                self.commercial.daily_kwh[rows],
                self.industrial.daily_kwh[rows],
            ),
        )


def _load_wh(model: FleetModel, chunk: int, lo: int, hi: int) -> Float32Array:
    """Energy consumed by meters ``lo:hi`` in each interval (before PV). [Wh]"""
    line = model.timeline
    wh_per_kw = line.interval_s / 3.6
    classes = model.fleet.customer_class[lo:hi]
    load_wh = np.empty((hi - lo, line.n_intervals), dtype=np.float32)
    rng = _streams.stream(model.seed, _streams.LOAD_NOISE, chunk)
    for klass in (_RESIDENTIAL, _COMMERCIAL, _INDUSTRIAL):
        rows = np.flatnonzero(classes == klass)
        if rows.shape[0] == 0:
            continue
        power = _demand.demand_kw(
            model.demand_params(klass, rows + lo),
            line.clock,
            heating_dd=line.heating_dd,
            cooling_dd=line.cooling_dd,
            day_index=line.day_index,
            n_days=line.n_days,
            interval_s=line.interval_s,
            rng=rng,
        )
        share = 1.0 - _appliances.APPLIANCE_SHARE if klass == _RESIDENTIAL else 1.0
        power *= np.float32(wh_per_kw * share)
        load_wh[rows] = power
        del power

    homes = np.flatnonzero(classes == _RESIDENTIAL)
    if homes.shape[0] == 0:
        return load_wh
    rng = _streams.stream(model.seed, _streams.APPLIANCES, chunk)
    residential = model.residential.take(homes + lo)
    sessions = _appliances.appliance_sessions(
        rng,
        homes,
        daily_kwh=residential.daily_kwh,
        morning_shift_h=residential.morning_shift_h,
        evening_shift_h=residential.evening_shift_h,
        local_days=line.local_days,
        offsets=line.offsets,
    )
    _appliances.add_sessions(load_wh, sessions, line.first_end_s, line.interval_s)
    ev_rows = np.flatnonzero(model.fleet.has_ev[lo:hi])
    if ev_rows.shape[0]:
        sessions = _appliances.ev_sessions(
            rng,
            ev_rows,
            charger_kw=model.fleet.ev_charger_kw[ev_rows + lo],
            on_timer=model.fleet.ev_on_timer[ev_rows + lo],
            local_days=line.local_days,
            offsets=line.offsets,
        )
        _appliances.add_sessions(load_wh, sessions, line.first_end_s, line.interval_s)
    return load_wh


def _subtract_pv(model: FleetModel, chunk: int, lo: int, net_wh: Float32Array) -> None:
    """net -= PV output of the meters with PV, in place. [Wh]

    PV = kWp x PR x GHI / 1000 W/m^2 x max(0, 1 + e), e ~ N(0, 0.06 sqrt(1800 s / interval))
    (local cloud edges and module temperature, at most 0.15).
    """
    line = model.timeline
    fleet = model.fleet
    rows = np.flatnonzero(fleet.has_solar[lo : lo + net_wh.shape[0]])
    if rows.shape[0] == 0:
        return
    rng = _streams.stream(model.seed, _streams.PV_NOISE, chunk)
    rated_wh = (
        fleet.solar_kwp[rows + lo] * fleet.performance_ratio[rows + lo] * (line.interval_s / 3.6)
    )
    noise_sd = min(0.06 * math.sqrt(1800.0 / line.interval_s), 0.15)
    pv_wh = rng.standard_normal((rows.shape[0], line.n_intervals), dtype=np.float32)
    pv_wh *= np.float32(noise_sd)
    pv_wh += np.float32(1.0)
    np.maximum(pv_wh, np.float32(0.0), out=pv_wh)
    pv_wh *= line.pv_kw_per_kwp[None, :]
    pv_wh *= rated_wh.astype(np.float32)[:, None]
    net_wh[rows] -= pv_wh


def fill_rows(model: FleetModel, chunk: int, lo: int, hi: int, out: FleetArrays) -> None:
    """Compute meters ``lo:hi`` and write them into ``out``; ``chunk`` keys the streams."""
    line = model.timeline
    fleet = model.fleet
    load_wh = _load_wh(model, chunk, lo, hi)

    power_factor = fleet.power_factor[lo:hi]
    tan_phi = np.sqrt(1.0 - power_factor * power_factor) / power_factor
    np.multiply(load_wh, tan_phi[:, None], out=out.reactive_varh[lo:hi])

    net_wh = load_wh  # from here on: load - PV
    _subtract_pv(model, chunk, lo, net_wh)
    np.maximum(net_wh, np.float32(0.0), out=out.import_wh[lo:hi])
    np.negative(net_wh, out=out.export_wh[lo:hi])
    np.maximum(out.export_wh[lo:hi], np.float32(0.0), out=out.export_wh[lo:hi])

    net_kw = net_wh
    net_kw *= np.float32(3.6 / line.interval_s)
    position = fleet.feeder_position[lo:hi]
    rng = _streams.stream(model.seed, _streams.VOLTAGE, chunk)
    offset_pu = 0.035 - 0.04 * position + 0.005 * rng.standard_normal(hi - lo)
    sensitivity = _voltage.voltage_sensitivity_pu_per_kw(
        position, model.daily_kwh(slice(lo, hi)), fleet.solar_kwp[lo:hi].astype(np.float64)
    )
    out.voltage_v[lo:hi] = _voltage.supply_voltage_v(
        rng,
        nominal_v=model.nominal_voltage_v,
        offset_pu=offset_pu.astype(np.float32),
        sensitivity_pu_per_kw=sensitivity.astype(np.float32),
        net_kw=net_kw,
        fleet_pu=line.fleet_voltage_pu,
        day_index=line.day_index,
        n_days=line.n_days,
        interval_s=line.interval_s,
    )
