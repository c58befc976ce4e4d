"""Who is in the fleet: class, PV, EV, power factor and feeder position of every meter.

Counts are the requested shares times the fleet size, rounded (largest remainder for the
classes, nearest for PV and EV within a class), so a small fleet has the mix asked for; which
meters get which is random. Attributes are drawn from separate random streams, so changing
the PV shares of a mix changes only who has PV, never the loads.

Rooftop PV size is log-uniform within the class's range: homes 2-8 kWp, commercial roofs
20-200 kWp, industrial roofs 100-1000 kWp. The performance ratio (inverter, wiring,
temperature, soiling, and here also orientation and shading relative to a horizontal
plane) is uniform 0.72-0.88 [1].

Power factor of the load, uniform within: homes 0.90-0.99 (electronics with PFC, some motor
load), commercial 0.82-0.96 (HVAC, lighting ballasts), industrial 0.75-0.93 (induction
motors, partly compensated) [2].

References
----------
.. [1] IEC 61724-1:2021, Photovoltaic system performance - Part 1: Monitoring
   (performance ratio).
.. [2] IEEE Std 1459-2010, Definitions for the measurement of electric power quantities
   under sinusoidal, nonsinusoidal, balanced, or unbalanced conditions (power factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.sim._appliances import EV_CHARGER_KW, EV_SHARE

__all__ = ["FleetAttributes", "class_counts", "compose_fleet"]

FloatArray = npt.NDArray[np.float64]

#: Per class (residential, commercial, industrial).
_KWP_RANGE = ((2.0, 8.0), (20.0, 200.0), (100.0, 1000.0))
_PF_RANGE = ((0.90, 0.99), (0.82, 0.96), (0.75, 0.93))
_FEEDER_POSITION_MAX = (1.0, 0.6, 0.4)
_EV_SHARE = (EV_SHARE, 0.0, 0.0)
_PERFORMANCE_RATIO = (0.72, 0.88)
_EV_TIMER_SHARE = 0.3
_EV_FAST_SHARE = 0.7


@dataclass(frozen=True)
class FleetAttributes:
    """Per-meter attributes; every array has one entry per meter."""

    customer_class: npt.NDArray[np.int8]
    has_solar: npt.NDArray[np.bool_]
    solar_kwp: npt.NDArray[np.float32]  # 0 where no PV [kWp]
    performance_ratio: FloatArray  # [-]
    has_ev: npt.NDArray[np.bool_]
    ev_charger_kw: FloatArray  # [kW]
    ev_on_timer: npt.NDArray[np.bool_]
    power_factor: npt.NDArray[np.float32]  # [-]
    feeder_position: FloatArray  # 0 at the transformer, 1 at the far end [-]


def class_counts(n: int, shares: tuple[float, ...]) -> list[int]:
    """Split ``n`` meters by ``shares`` (summing to 1) with the largest-remainder method."""
    exact = [n * share for share in shares]
    counts = [int(np.floor(x)) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: n - sum(counts)]:
        counts[k] += 1
    return counts


def _pick(
    rng: np.random.Generator,
    classes: npt.NDArray[np.int8],
    probability: tuple[float, ...],
) -> npt.NDArray[np.bool_]:
    """Flag round(p_c n_c) meters of each class c, chosen at random."""
    flags = np.zeros(classes.shape[0], dtype=bool)
    for klass, p in enumerate(probability):
        members = np.flatnonzero(classes == klass)
        count = int(np.floor(p * members.shape[0] + 0.5))
        flags[rng.choice(members, size=count, replace=False)] = True
    return flags


def _per_class(
    classes: npt.NDArray[np.int8], ranges: tuple[tuple[float, float], ...], u: FloatArray
) -> FloatArray:
    low = np.array([r[0] for r in ranges])[classes]
    high = np.array([r[1] for r in ranges])[classes]
    result: FloatArray = low + (high - low) * u
    return result


def compose_fleet(
    n: int,
    shares: tuple[float, float, float],
    solar_probability: tuple[float, float, float],
    *,
    fleet_rng: np.random.Generator,
    pv_rng: np.random.Generator,
    grid_rng: np.random.Generator,
) -> FleetAttributes:
    """Draw the fleet, see the module docstring.

    Parameters
    ----------
    n : int
        Number of meters.
    shares : (float, float, float)
        Residential, commercial and industrial shares of the meters, summing to 1.
    solar_probability : (float, float, float)
        Share of each class's meters with rooftop PV.
    fleet_rng, pv_rng, grid_rng : numpy.random.Generator
        Streams for the composition, the PV systems and the network attributes.
    """
    counts = class_counts(n, shares)
    classes = fleet_rng.permutation(np.repeat(np.arange(3, dtype=np.int8), counts))
    has_ev = _pick(fleet_rng, classes, _EV_SHARE)
    ev_charger_kw = np.where(
        fleet_rng.random(n) < _EV_FAST_SHARE, EV_CHARGER_KW[1], EV_CHARGER_KW[0]
    )
    ev_on_timer = fleet_rng.random(n) < _EV_TIMER_SHARE
    has_solar = _pick(fleet_rng, classes, solar_probability)

    log_kwp = _per_class(
        classes, tuple((np.log(a), np.log(b)) for a, b in _KWP_RANGE), pv_rng.random(n)
    )
    solar_kwp = np.where(has_solar, np.exp(log_kwp), 0.0).astype(np.float32)
    performance_ratio = pv_rng.uniform(*_PERFORMANCE_RATIO, n)

    power_factor = _per_class(classes, _PF_RANGE, grid_rng.random(n)).astype(np.float32)
    feeder_position = grid_rng.random(n) * np.array(_FEEDER_POSITION_MAX)[classes]
    return FleetAttributes(
        customer_class=classes,
        has_solar=has_solar,
        solar_kwp=solar_kwp,
        performance_ratio=performance_ratio,
        has_ev=has_ev,
        ev_charger_kw=np.where(has_ev, ev_charger_kw, 0.0),
        ev_on_timer=ev_on_timer & has_ev,
        power_factor=power_factor,
        feeder_position=feeder_position,
    )
