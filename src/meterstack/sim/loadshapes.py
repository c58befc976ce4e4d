"""Interval load shapes of a whole fleet, vectorised over meters and intervals.

:func:`generate_load_shapes` returns, for every meter and every interval, the energy imported
and exported, the reactive energy and the mean supply voltage, as float32 (meters x
intervals) arrays ready to feed meters or a head-end. The model, component by component
(each private module documents its equations and references; ``docs/simulator.md`` has the
overview):

Local time (``_localtime``)
    Hour of day, weekday and day of year of each interval's midpoint in the fleet's time
    zone, DST included (``zoneinfo``): people keep wall-clock time.
Weather (``_weather``)
    One daily series for the fleet: mean temperature = seasonal sinusoid (hemisphere-aware,
    coarse zonal climatology) + AR(1) anomaly; clear-sky index with a seasonal mean and an
    anomaly tied to the temperature anomaly. Heating and cooling degree days (15.5 degC,
    18.3 degC bases) drive each meter's weather-sensitive demand.
Demand (``_demand``)
    Residential: base + morning, midday and evening von Mises bumps with per-meter weights
    and peak shifts, later and flatter at weekends, evening lighting gain from the day
    length; lognormal scale around 10 kWh/day. Commercial: business-hours plateau
    (about 08-19), partial Saturdays, mostly closed Sundays; 50-800 kWh/day typical.
    Industrial: 1-3 shifts, high base load, reduced weekends; 1-20 MWh/day typical.
    Per-meter heating and cooling sensitivities; lognormal day and interval noise.
Appliances (``_appliances``)
    Homes: short 1.5-3 kW uses (kettle, oven, washer) as Poisson sessions, and EV charging
    (6 % of homes, 3.7 or 7.4 kW, on arrival or on a night timer), split exactly over the
    intervals they overlap.
Rooftop PV (``_solar``)
    Spencer/NOAA solar geometry, Haurwitz clear-sky GHI averaged over 5-min sub-steps, times
    the daily clear-sky index and smoothed intra-day cloud noise (largest on broken-cloud
    days), times kWp x performance ratio, with a little per-meter noise. The fleet is
    placed on its zone's standard meridian (longitude = 15 deg x standard UTC offset), which
    puts solar noon near 12:00 local standard time.
Net metering
    net = load - PV in every interval; import = max(net, 0), export = max(-net, 0).
Reactive energy
    load x tan(acos(PF)) with the meter's lagging load PF: the PV inverter runs at unity
    PF, so the reactive energy follows the load, also in intervals that export.
Voltage (``_voltage``)
    Nominal x (1 + feeder-position offset + fleet drift + per-meter daily drift - drop with
    net import (rise with export) + noise), clipped to +-15 %.

Randomness comes from ``numpy.random.Generator`` streams keyed by ``(seed, stream, chunk)``,
so the arrays depend only on the arguments; meters are processed in chunks of about a
million cells to bound the temporaries.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from meterstack.core.errors import ClockError, InvalidInputError
from meterstack.core.time import ensure_utc, zone
from meterstack.sim import _demand, _fleet, _streams
from meterstack.sim._synthesis import FleetArrays, FleetModel, fill_rows
from meterstack.sim._timeline import build_timeline

__all__ = [
    "ALLOWED_INTERVALS_S",
    "CustomerClass",
    "FleetMix",
    "LoadShapes",
    "generate_load_shapes",
]

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

ALLOWED_INTERVALS_S = (300, 900, 1800, 3600)
#: Cells (meters x intervals) per chunk; fixed, so that results never depend on the machine.
_CHUNK_CELLS = 1 << 20
_SHARE_TOLERANCE = 1e-6


class CustomerClass(IntEnum):
    """Customer class of a meter (the value stored in ``LoadShapes.customer_class``)."""

    RESIDENTIAL = 0
    COMMERCIAL = 1
    INDUSTRIAL = 2


def _check_fraction(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(field, value, "expected a number between 0 and 1")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInputError(field, value, "must be between 0 and 1")
    return number


@dataclass(frozen=True)
class FleetMix:
    """Composition of a fleet.

    ``residential``, ``commercial`` and ``industrial`` are shares of the meters and must sum
    to 1; ``solar_*`` is the share of each class's meters with rooftop PV. Counts are the
    shares times the fleet size, rounded.
    """

    residential: float = 0.80
    commercial: float = 0.15
    industrial: float = 0.05
    solar_residential: float = 0.25
    solar_commercial: float = 0.30
    solar_industrial: float = 0.10

    def __post_init__(self) -> None:
        shares = [
            _check_fraction(f"mix.{name}", getattr(self, name))
            for name in ("residential", "commercial", "industrial")
        ]
        for name in ("solar_residential", "solar_commercial", "solar_industrial"):
            _check_fraction(f"mix.{name}", getattr(self, name))
        total = math.fsum(shares)
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise InvalidInputError(
                "mix", self, f"residential + commercial + industrial = {total:g}, must be 1"
            )

    @property
    def shares(self) -> tuple[float, float, float]:
        """(residential, commercial, industrial)."""
        return (float(self.residential), float(self.commercial), float(self.industrial))

    @property
    def solar_probability(self) -> tuple[float, float, float]:
        """(solar_residential, solar_commercial, solar_industrial)."""
        return (
            float(self.solar_residential),
            float(self.solar_commercial),
            float(self.solar_industrial),
        )


@dataclass(frozen=True, eq=False)
class LoadShapes:
    """Interval data of a simulated fleet: N meters x T intervals.

    Attributes
    ----------
    interval_end : datetime64[s] array (T,)
        UTC end of each interval; interval t covers (interval_end[t] - interval_s,
        interval_end[t]].
    interval_s : int
        Interval length. [s]
    customer_class : int8 array (N,)
        :class:`CustomerClass` values.
    phases : int8 array (N,)
        1 for homes, 3 for commercial and industrial meters.
    has_solar : bool array (N,)
        Whether the meter has rooftop PV behind it.
    solar_kwp : float32 array (N,)
        PV peak power, 0 without PV. [kWp]
    power_factor : float32 array (N,)
        Lagging power factor of the load, 0.75 .. 0.99. [-]
    import_wh : float32 array (N, T)
        Active energy imported in each interval, >= 0. [Wh]
    export_wh : float32 array (N, T)
        Active energy exported (PV surplus), >= 0; 0 without PV. [Wh]
    reactive_varh : float32 array (N, T)
        Reactive energy, positive inductive. [varh]
    voltage_v : float32 array (N, T)
        Mean RMS phase voltage over the interval. [V]
    """

    interval_end: npt.NDArray[np.datetime64]
    interval_s: int
    customer_class: npt.NDArray[np.int8]
    phases: npt.NDArray[np.int8]
    has_solar: npt.NDArray[np.bool_]
    solar_kwp: Float32Array
    power_factor: Float32Array
    import_wh: Float32Array
    export_wh: Float32Array
    reactive_varh: Float32Array
    voltage_v: Float32Array

    @property
    def n_meters(self) -> int:
        return int(self.customer_class.shape[0])

    @property
    def n_intervals(self) -> int:
        return int(self.interval_end.shape[0])


def _check_count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(field, value, "expected a whole number >= 1")
    if int(value) < 1:
        raise InvalidInputError(field, value, "must be >= 1")
    return int(value)


@dataclass(frozen=True)
class _Request:
    """The arguments of :func:`generate_load_shapes`, checked and normalised."""

    n_meters: int
    start: datetime  # UTC
    days: int
    interval_s: int
    seed: int
    mix: FleetMix
    timezone: str
    latitude_deg: float
    nominal_voltage_v: float


def _check_number(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(field, value, "expected a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise InvalidInputError(field, value, f"must be between {low:g} and {high:g}")
    return number


def _validate(
    *,
    n_meters: object,
    start: object,
    days: object,
    interval_s: object,
    seed: object,
    mix: object,
    timezone: object,
    latitude_deg: object,
    nominal_voltage_v: object,
) -> _Request:
    n = _check_count("n_meters", n_meters)
    n_days = _check_count("days", days)
    if (
        isinstance(interval_s, bool)
        or not isinstance(interval_s, numbers.Integral)
        or int(interval_s) not in ALLOWED_INTERVALS_S
    ):
        raise InvalidInputError(
            "interval_s", interval_s, f"must be one of {', '.join(map(str, ALLOWED_INTERVALS_S))}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InvalidInputError("seed", seed, "expected a whole number >= 0")
    if not isinstance(mix, FleetMix):
        raise InvalidInputError("mix", mix, "expected a FleetMix")
    if not isinstance(timezone, str):
        raise InvalidInputError("timezone", timezone, "expected an IANA zone name")
    zone(timezone)  # raises ConfigError for an unknown zone
    latitude = _check_number("latitude_deg", latitude_deg, -90.0, 90.0)
    nominal = _check_number("nominal_voltage_v", nominal_voltage_v, 1.0, 1000.0)
    if not isinstance(start, datetime):
        raise ClockError("start", start, "expected a timezone-aware datetime")
    utc_start = ensure_utc(start, "start")
    if utc_start.microsecond:
        raise ClockError("start", start, "must be a whole second")
    return _Request(
        n_meters=n,
        start=utc_start,
        days=n_days,
        interval_s=int(interval_s),
        seed=int(seed),
        mix=mix,
        timezone=timezone,
        latitude_deg=latitude,
        nominal_voltage_v=nominal,
    )


def generate_load_shapes(
    n_meters: int,
    start: datetime,
    days: int,
    *,
    interval_s: int = 1800,
    seed: int = 0,
    mix: FleetMix = FleetMix(),
    timezone: str = "UTC",
    latitude_deg: float = 45.0,
    nominal_voltage_v: float = 230.0,
) -> LoadShapes:
    """Simulate ``days`` days of interval data for a fleet of ``n_meters`` meters.

    Parameters
    ----------
    n_meters : int
        Fleet size, >= 1.
    start : datetime
        Timezone-aware start; the first interval ends at ``start + interval_s``.
    days : int
        Length of the simulation, >= 1. [d]
    interval_s : int
        Interval length: 300, 900, 1800 or 3600. [s]
    seed : int
        Seed of every random stream, >= 0. Same arguments, same arrays.
    mix : FleetMix
        Class shares and PV shares.
    timezone : str
        IANA zone whose local time drives daily and weekly patterns.
    latitude_deg : float
        Latitude of the fleet, north positive (-90 .. 90); sets the sun and the seasons. [deg]
    nominal_voltage_v : float
        Nominal phase voltage. [V]

    Returns
    -------
    LoadShapes

    Raises
    ------
    InvalidInputError
        A bad count, interval, seed, mix, latitude or voltage (``field`` names it).
    ClockError
        ``start`` is naive or not a whole second.
    ConfigError
        ``timezone`` is not a known IANA zone.
    """
    request = _validate(
        n_meters=n_meters,
        start=start,
        days=days,
        interval_s=interval_s,
        seed=seed,
        mix=mix,
        timezone=timezone,
        latitude_deg=latitude_deg,
        nominal_voltage_v=nominal_voltage_v,
    )
    return _generate(request)


def _generate(request: _Request) -> LoadShapes:
    seed, n_meters, interval_s, mix = (
        request.seed,
        request.n_meters,
        request.interval_s,
        request.mix,
    )
    n_intervals = request.days * 86400 // interval_s
    first_end_s = int(request.start.timestamp()) + interval_s
    interval_end_s = first_end_s + interval_s * np.arange(n_intervals, dtype=np.int64)
    timeline = build_timeline(
        interval_end_s,
        interval_s,
        seed=seed,
        timezone=request.timezone,
        latitude_deg=request.latitude_deg,
        pv_penetration=float(np.dot(mix.shares, mix.solar_probability)),
    )
    model = FleetModel(
        seed=seed,
        timeline=timeline,
        fleet=_fleet.compose_fleet(
            n_meters,
            mix.shares,
            mix.solar_probability,
            fleet_rng=_streams.stream(seed, _streams.FLEET),
            pv_rng=_streams.stream(seed, _streams.PV),
            grid_rng=_streams.stream(seed, _streams.GRID),
        ),
        residential=_demand.ResidentialParams.draw(
            _streams.stream(seed, _streams.DEMAND[0]), n_meters
        ),
        commercial=_demand.CommercialParams.draw(
            _streams.stream(seed, _streams.DEMAND[1]), n_meters
        ),
        industrial=_demand.IndustrialParams.draw(
            _streams.stream(seed, _streams.DEMAND[2]), n_meters
        ),
        nominal_voltage_v=request.nominal_voltage_v,
    )
    out = FleetArrays.empty(n_meters, n_intervals)
    rows_per_chunk = max(1, _CHUNK_CELLS // n_intervals)
    for chunk, lo in enumerate(range(0, n_meters, rows_per_chunk)):
        fill_rows(model, chunk, lo, min(lo + rows_per_chunk, n_meters), out)

    classes = model.fleet.customer_class
    return LoadShapes(
        interval_end=interval_end_s.astype("datetime64[s]"),
        interval_s=interval_s,
        customer_class=classes,
        phases=np.where(classes == CustomerClass.RESIDENTIAL, 1, 3).astype(np.int8),
        has_solar=model.fleet.has_solar,
        solar_kwp=model.fleet.solar_kwp,
        power_factor=model.fleet.power_factor,
        import_wh=out.import_wh,
        export_wh=out.export_wh,
        reactive_varh=out.reactive_varh,
        voltage_v=out.voltage_v,
    )
