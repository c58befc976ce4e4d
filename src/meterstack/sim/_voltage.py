"""Supply voltage at each meter, averaged over the interval.

    V[i, t] = V_n (1 + o[i] + f[t] + u[i, day(t)] - z[i] P_net[i, t] + e[i, t])

* o: feeder position. Distribution transformers are tapped a few per cent high so that the
  far end of a loaded feeder stays in limits; a meter at position p (0 at the transformer,
  1 at the far end) sits at o = +3.5 % - 4 % p (+- 0.5 %) [1].
* f: fleet-wide drift common to every meter: the upstream voltage sags with the town's
  load (-1.2 % per unit of the residential shape above its mean), rises with its PV
  output, and wanders slowly (sd 0.4 %, decorrelating over about 3 h: tap changers, the
  medium-voltage network).
* u: per-meter day-to-day drift, sd 0.3 %.
* z P_net: the drop across the service cable and the meter's share of the feeder: the
  drop at the connection's capacity is 2 % + 5 % p, the capacity max(15 kW, 4 x mean
  demand, PV kWp), so a home at the far end loses about 0.5 % per kW drawn and gains as much per
  kW exported (PV voltage rise).
* e: measurement and flicker noise, sd 0.2 % at 30 min, larger for shorter intervals.

The result is clipped to +-15 % of nominal; EN 50160 [2] asks for +-10 % of the 10-min means
95 % of a week, which this model meets with room to spare except at far-end meters with
large loads.

References
----------
.. [1] W. H. Kersting, "Distribution System Modeling and Analysis", 4th ed., CRC Press
   2017 (approximate voltage drop along radial feeders; regulation by transformer taps).
.. [2] EN 50160:2010, Voltage characteristics of electricity supplied by public
   distribution networks, 4.2.2 (supply voltage variations).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meterstack.sim._noise import smoothed_noise

__all__ = ["fleet_voltage_pu", "supply_voltage_v", "voltage_sensitivity_pu_per_kw"]

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

_CLIP_PU = 0.15


def fleet_voltage_pu(
    rng: np.random.Generator,
    activity: FloatArray,
    ghi_w_m2: FloatArray,
    *,
    pv_penetration: float,
    interval_s: int,
) -> Float32Array:
    """Fleet-wide voltage deviation f[t]. [pu]

    f = -0.012 (a - 1) + 0.02 pi GHI / 1000 + 0.004 n

    Parameters
    ----------
    rng : numpy.random.Generator
    activity : array
        The residential shape of a typical home, mean about 1. [-]
    ghi_w_m2 : array
        Global horizontal irradiance. [W/m^2]
    pv_penetration : float
        Expected share of the fleet's meters with PV. [-]
    interval_s : int
        [s]
    """
    wander = smoothed_noise(rng, activity.shape[0], 3.0 * 3600.0 / interval_s)
    deviation = -0.012 * (activity - 1.0) + 0.02 * pv_penetration * ghi_w_m2 / 1000.0
    return np.asarray(deviation + 0.004 * wander, dtype=np.float32)


def voltage_sensitivity_pu_per_kw(
    position: FloatArray, daily_kwh: FloatArray, solar_kwp: FloatArray
) -> FloatArray:
    """z = (0.02 + 0.05 p) / max(15 kW, 4 daily_kwh / 24 h, kWp). [pu/kW]

    The connection is sized for the larger of the demand and the PV system.
    """
    capacity_kw = np.maximum(np.maximum(15.0, 4.0 * daily_kwh / 24.0), solar_kwp)
    result: FloatArray = (0.02 + 0.05 * position) / capacity_kw
    return result


def supply_voltage_v(
    rng: np.random.Generator,
    *,
    nominal_v: float,
    offset_pu: Float32Array,
    sensitivity_pu_per_kw: Float32Array,
    net_kw: Float32Array,
    fleet_pu: Float32Array,
    day_index: npt.NDArray[np.intp],
    n_days: int,
    interval_s: int,
) -> Float32Array:
    """Interval-mean RMS phase voltage of each meter, see the module docstring.

    Parameters
    ----------
    rng : numpy.random.Generator
    nominal_v : float
        [V]
    offset_pu : float32 array (meters,)
        o, feeder position offset. [pu]
    sensitivity_pu_per_kw : float32 array (meters,)
        z. [pu/kW]
    net_kw : float32 array (meters x intervals)
        Mean net import power, negative when exporting. [kW]
    fleet_pu : float32 array (intervals,)
        f. [pu]
    day_index : int array (intervals,)
        Local day of each interval, 0 .. n_days - 1.
    n_days : int
    interval_s : int
        [s]

    Returns
    -------
    voltage : float32 array (meters x intervals)
        [V]
    """
    n_meters, n_intervals = net_kw.shape
    noise_sd = min(0.002 * float(np.sqrt(1800.0 / interval_s)), 0.004)
    pu = rng.standard_normal((n_meters, n_intervals), dtype=np.float32)
    pu *= np.float32(noise_sd)
    drift = rng.standard_normal((n_meters, n_days), dtype=np.float32)
    drift *= np.float32(0.003)
    pu += drift[:, day_index]
    pu -= net_kw * sensitivity_pu_per_kw[:, None]
    pu += fleet_pu[None, :]
    pu += (offset_pu + np.float32(1.0))[:, None]
    np.clip(pu, np.float32(1.0 - _CLIP_PU), np.float32(1.0 + _CLIP_PU), out=pu)
    pu *= np.float32(nominal_v)
    return pu
