"""Accuracy-class test points of IEC 62053-21 and IEC 62053-22, and their test signals.

Percentage error limits for single-phase meters and polyphase meters with balanced load
(IEC 62053-21:2003 Table 5, IEC 62053-22:2003 Table 4), I_b the basic current of a
direct-connected meter, I_n the rated current of a transformer-operated one:

    class 1, 2 (62053-21), direct connected
        PF 1:          0.05 I_b <= I < 0.1 I_b:  1.5 / 2.5     0.1 I_b <= I <= I_max:  1.0 / 2.0
        PF 0.5L, 0.8C: 0.1 I_b <= I < 0.2 I_b:   1.5 / 2.5     0.2 I_b <= I <= I_max:  1.0 / 2.0
    class 1, 2 (62053-21), transformer operated
        PF 1:          0.02 I_n <= I < 0.05 I_n: 1.5 / 2.5     0.05 I_n <= I <= I_max: 1.0 / 2.0
        PF 0.5L, 0.8C: 0.05 I_n <= I < 0.1 I_n:  1.5 / 2.5     0.1 I_n <= I <= I_max:  1.0 / 2.0
    class 0.2S, 0.5S (62053-22), transformer operated
        PF 1:          0.01 I_n <= I < 0.05 I_n: 0.4 / 1.0     0.05 I_n <= I <= I_max: 0.2 / 0.5
        PF 0.5L, 0.8C: 0.02 I_n <= I < 0.1 I_n:  0.5 / 1.0     0.1 I_n <= I <= I_max:  0.3 / 0.6

Starting current, at which the meter shall start and continue to register (PF 1):
0.004 I_b (class 1) and 0.005 I_b (class 2) direct connected; 0.002 I_n (class 1) and
0.003 I_n (class 2) transformer operated; 0.001 I_n (classes 0.2S and 0.5S).

No-load condition: with 115 % of the reference voltage and no current, the test output
shall not produce more than one pulse during

    Delta_t >= C * 10^6 / (k m U_n I_max)   [min]

with k the meter constant [imp/kWh], m the number of measuring elements, U_n [V] and
I_max [A]; C = 480 (class 2), 600 (classes 1 and 0.5S), 900 (class 0.2S).

The error at a test point is (E_meter - E_true) / E_true * 100 (IEC 62052-11).

References
----------
.. [1] IEC 62053-21:2003, Static meters for active energy (classes 1 and 2), 8.1, 8.3.2,
       8.3.3, Tables 5 and 9.
.. [2] IEC 62053-22:2003, Static meters for active energy (classes 0,2 S and 0,5 S), 8.1,
       8.3.2, 8.3.3, Tables 4 and 7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.record import WaveformRecord, make_record

__all__ = [
    "CLASS_LIMITS_PCT",
    "AccuracyClass",
    "Connection",
    "TypeTestPoint",
    "error_limit_pct",
    "no_load_duration_s",
    "point_record",
    "starting_current_a",
    "type_test_points",
]

AccuracyClass = Literal["0.2S", "0.5S", "1", "2"]
Connection = Literal["direct", "transformer"]
PowerFactor = Literal["1", "0.5L", "0.8C"]

#: Error limit at unity power factor over the upper current range, per class. [%]
CLASS_LIMITS_PCT: dict[str, float] = {"0.2S": 0.2, "0.5S": 0.5, "1": 1.0, "2": 2.0}

# (class, connection, power factor): (lower range start, upper range start, lower-range
# limit, upper-range limit), currents in multiples of I_b or I_n. [1, 1, %, %]
_LIMITS: dict[tuple[str, str, str], tuple[float, float, float, float]] = {}
for _klass, _low, _high in (("1", 1.5, 1.0), ("2", 2.5, 2.0)):
    _LIMITS[(_klass, "direct", "1")] = (0.05, 0.1, _low, _high)
    _LIMITS[(_klass, "transformer", "1")] = (0.02, 0.05, _low, _high)
    for _pf in ("0.5L", "0.8C"):
        _LIMITS[(_klass, "direct", _pf)] = (0.1, 0.2, _low, _high)
        _LIMITS[(_klass, "transformer", _pf)] = (0.05, 0.1, _low, _high)
for _klass, _unity_low, _unity_high, _pf_low, _pf_high in (
    ("0.2S", 0.4, 0.2, 0.5, 0.3),
    ("0.5S", 1.0, 0.5, 1.0, 0.6),
):
    _LIMITS[(_klass, "transformer", "1")] = (0.01, 0.05, _unity_low, _unity_high)
    for _pf in ("0.5L", "0.8C"):
        _LIMITS[(_klass, "transformer", _pf)] = (0.02, 0.1, _pf_low, _pf_high)

_STARTING = {
    ("1", "direct"): 0.004,
    ("2", "direct"): 0.005,
    ("1", "transformer"): 0.002,
    ("2", "transformer"): 0.003,
    ("0.2S", "transformer"): 0.001,
    ("0.5S", "transformer"): 0.001,
}
_NO_LOAD_CONSTANT = {"2": 480.0, "1": 600.0, "0.5S": 600.0, "0.2S": 900.0}

#: cos(phi) and the sign of phi (current lagging the voltage is positive) per PF label.
_POWER_FACTOR = {"1": (1.0, 0.0), "0.5L": (0.5, 1.0), "0.8C": (0.8, -1.0)}


def _check(accuracy_class: str, connection: str) -> None:
    if accuracy_class not in CLASS_LIMITS_PCT:
        raise InvalidInputError(
            "accuracy_class", accuracy_class, f"one of {', '.join(CLASS_LIMITS_PCT)}"
        )
    if connection not in ("direct", "transformer"):
        raise InvalidInputError("connection", connection, "direct or transformer")
    if (accuracy_class, connection) not in _STARTING:
        raise InvalidInputError(
            "connection", connection, f"class {accuracy_class} meters are transformer operated"
        )


def error_limit_pct(
    accuracy_class: str, connection: str, power_factor: str, current_ratio: float
) -> float:
    """Percentage error limit at a current of ``current_ratio`` times I_b (or I_n).

    Raises
    ------
    InvalidInputError
        Unknown class, connection or power factor, or a current below the lowest test
        current of that power factor.
    """
    _check(accuracy_class, connection)
    key = (accuracy_class, connection, power_factor)
    if key not in _LIMITS:
        raise InvalidInputError("power_factor", power_factor, "one of 1, 0.5L, 0.8C")
    lowest, upper_start, low_limit, high_limit = _LIMITS[key]
    if current_ratio < lowest - 1e-12:
        raise InvalidInputError(
            "current_ratio", current_ratio, f"below the lowest test current {lowest}"
        )
    return low_limit if current_ratio < upper_start - 1e-12 else high_limit


def starting_current_a(accuracy_class: str, connection: str, basic_current_a: float) -> float:
    """The starting current of the class (module docstring). [A]"""
    _check(accuracy_class, connection)
    return _STARTING[(accuracy_class, connection)] * basic_current_a


def no_load_duration_s(
    accuracy_class: str,
    meter_constant_imp_per_kwh: float,
    elements: int,
    reference_voltage_v: float,
    max_current_a: float,
) -> float:
    """Minimum duration of the no-load test, C 10^6 / (k m U_n I_max) minutes. [s]"""
    if accuracy_class not in _NO_LOAD_CONSTANT:
        raise InvalidInputError("accuracy_class", accuracy_class, "one of 0.2S, 0.5S, 1, 2")
    product = meter_constant_imp_per_kwh * elements * reference_voltage_v * max_current_a
    if not product > 0:
        raise InvalidInputError("meter_constant_imp_per_kwh", product, "all factors > 0")
    return _NO_LOAD_CONSTANT[accuracy_class] * 1e6 / product * 60.0


@dataclass(frozen=True, slots=True)
class TypeTestPoint:
    """One test of an accuracy-class type test.

    Attributes
    ----------
    name : str
        E.g. ``"0.1Ib PF 0.5L"``, ``"starting"``, ``"no-load"``.
    kind : str
        ``"error"``, ``"starting"`` or ``"no_load"``.
    current_a : float
        Test current per phase (0 for no-load). [A]
    power_factor : str
        ``"1"``, ``"0.5L"`` (inductive) or ``"0.8C"`` (capacitive).
    voltage_factor : float
        Test voltage / reference voltage (1.15 for no-load).
    limit_pct : float or None
        Percentage error limit (error points only). [%]
    """

    name: str
    kind: Literal["error", "starting", "no_load"]
    current_a: float
    power_factor: PowerFactor
    voltage_factor: float
    limit_pct: float | None

    @property
    def phase_angle_rad(self) -> float:
        """phi, current lagging voltage positive. [rad]"""
        cosine, sign = _POWER_FACTOR[self.power_factor]
        return sign * math.acos(cosine)


def type_test_points(
    accuracy_class: str,
    connection: str,
    basic_current_a: float,
    max_current_a: float,
) -> list[TypeTestPoint]:
    """The test points of a type test: error points at each power factor, starting, no-load.

    Error points: at PF 1 the lowest test current, the start of the upper range, I_b
    (I_n) and I_max; at PF 0.5L and 0.8C the same four for their ranges.
    """
    _check(accuracy_class, connection)
    if not 0 < basic_current_a < max_current_a:
        raise InvalidInputError(
            "basic_current_a", basic_current_a, "need 0 < basic current < max current"
        )
    base = "Ib" if connection == "direct" else "In"
    points: list[TypeTestPoint] = []
    for power_factor in ("1", "0.5L", "0.8C"):
        lowest, upper_start, low_limit, high_limit = _LIMITS[
            (accuracy_class, connection, power_factor)
        ]
        for ratio, limit in (
            (lowest, low_limit),
            (upper_start, high_limit),
            (1.0, high_limit),
            (max_current_a / basic_current_a, high_limit),
        ):
            label = "Imax" if ratio * basic_current_a == max_current_a else f"{ratio:g}{base}"
            points.append(
                TypeTestPoint(
                    f"{label} PF {power_factor}",
                    "error",
                    ratio * basic_current_a,
                    power_factor,
                    1.0,
                    limit,
                )
            )
    points.append(
        TypeTestPoint(
            "starting",
            "starting",
            starting_current_a(accuracy_class, connection, basic_current_a),
            "1",
            1.0,
            None,
        )
    )
    points.append(TypeTestPoint("no-load", "no_load", 0.0, "1", 1.15, None))
    return points


def point_record(
    point: TypeTestPoint,
    reference_voltage_v: float,
    duration_s: float,
    *,
    phases: int = 1,
    fs_hz: float = 4000.0,
    f0_hz: int = 50,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    current_noise_a: float = 0.0,
    seed: int = 0,
) -> WaveformRecord:
    """The sampled test signal of ``point``: sinusoidal voltage and current, balanced.

    v = sqrt(2) U sin(w t + a), i = sqrt(2) I sin(w t + a - phi) on each phase
    (a = 0, -120, +120 degrees), plus white noise of RMS ``current_noise_a`` on the
    currents (to exercise the no-load threshold). The true active energy is
    ``phases * U * I * cos(phi) * duration``.
    """
    if not duration_s > 0:
        raise InvalidInputError("duration_s", duration_s, "must be positive")
    samples = round(duration_s * fs_hz)
    t = np.arange(samples) / fs_hz
    shifts = np.deg2rad([0.0, -120.0, 120.0][:phases])[:, np.newaxis]
    omega_t = 2 * np.pi * f0_hz * t
    voltage = np.sqrt(2) * reference_voltage_v * point.voltage_factor * np.sin(omega_t + shifts)
    current = np.sqrt(2) * point.current_a * np.sin(omega_t + shifts - point.phase_angle_rad)
    if current_noise_a > 0:
        current = current + np.random.default_rng(seed).normal(0.0, current_noise_a, current.shape)
    return make_record(voltage, current, fs_hz, f0_hz, start)
