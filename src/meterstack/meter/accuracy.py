"""The accuracy check: a meter's registered energy against a reference meter's.

The seeds' quarterly field test runs a known resistive load (a 2 kW heater for one hour) and
compares the meter's reading with a reference standard meter's. The percentage error is

    error = (E_meter - E_reference) / E_reference * 100

(IEC 62052-11, definition of the percentage error)

and the meter passes if ``|error|`` is within its class index at unity power factor:
class 2 and class 1 per IEC 62053-21 (+/-2 %, +/-1 %), class 0.5S and 0.2S per IEC 62053-22
(+/-0.5 %, +/-0.2 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from meterstack.core.errors import InvalidInputError
from meterstack.meter.measurement import Measurement
from meterstack.metrology.accuracy import (
    CLASS_LIMITS_PCT,
    TypeTestPoint,
    no_load_duration_s,
    point_record,
    type_test_points,
)
from meterstack.metrology.energy import RangeSwitchingCt

__all__ = [
    "CLASS_LIMITS_PCT",
    "AccuracyResult",
    "TypeTestResult",
    "check_accuracy",
    "percentage_error",
    "run_resistive_load_test",
    "run_test_points",
]

if TYPE_CHECKING:
    from meterstack.meter.config import MeterConfig
    from meterstack.meter.device import Meter


@dataclass(frozen=True, slots=True)
class AccuracyResult:
    """Outcome of one accuracy check."""

    accuracy_class: str
    meter_wh: float
    reference_wh: float
    error_pct: float
    limit_pct: float

    @property
    def passed(self) -> bool:
        return abs(self.error_pct) <= self.limit_pct


def percentage_error(meter_wh: float, reference_wh: float) -> float:
    """(E_meter - E_reference) / E_reference * 100. [%]"""
    if not math.isfinite(reference_wh) or reference_wh <= 0:
        raise InvalidInputError(
            "reference_wh", reference_wh, "the reference energy must be positive"
        )
    if not math.isfinite(meter_wh) or meter_wh < 0:
        raise InvalidInputError("meter_wh", meter_wh, "the meter's energy must be a number >= 0")
    return (meter_wh - reference_wh) / reference_wh * 100.0


def check_accuracy(meter_wh: float, reference_wh: float, accuracy_class: str) -> AccuracyResult:
    """Compare a meter reading with a reference reading for the meter's accuracy class."""
    if accuracy_class not in CLASS_LIMITS_PCT:
        raise InvalidInputError(
            "accuracy_class", accuracy_class, f"one of {', '.join(CLASS_LIMITS_PCT)}"
        )
    error = percentage_error(meter_wh, reference_wh)
    return AccuracyResult(
        accuracy_class, meter_wh, reference_wh, error, CLASS_LIMITS_PCT[accuracy_class]
    )


def run_resistive_load_test(
    meter: Meter,
    start: datetime,
    *,
    load_w: float = 2000.0,
    duration: timedelta = timedelta(hours=1),
    step: timedelta = timedelta(seconds=10),
    reference_wh: float | None = None,
) -> AccuracyResult:
    """Run a resistive load through ``meter`` and check its test-output pulses.

    The meter is stepped from ``start`` with a unity-power-factor load of ``load_w`` on
    phase 1 at nominal voltage. Its energy is read the way a field technician does, from
    the test output's pulses (the meter constant, imp/kWh). ``reference_wh`` is the
    reference meter's reading; by default the true energy ``load_w * duration``.
    """
    if load_w <= 0 or not math.isfinite(load_w):
        raise InvalidInputError("load_w", load_w, "the test load must be a positive power")
    config = meter.config
    voltage = config.nominal_voltage_v
    phases = config.phases
    current = load_w / voltage
    zeros = (0.0,) * (phases - 1)
    constant = config.meter_constant_imp_per_kwh
    pulses_before = math.floor(meter.registers.a_plus_precise_wh * constant / 1000.0)
    steps = round(duration / step)
    for index in range(1, steps + 1):
        meter.step(
            Measurement(
                timestamp=start + index * step,
                voltage_v=(voltage,) * phases,
                current_a=(current, *zeros),
                active_power_w=(load_w, *zeros),
                reactive_power_var=(0.0,) * phases,
                frequency_hz=float(config.nominal_frequency_hz),
            )
        )
    pulses = math.floor(meter.registers.a_plus_precise_wh * constant / 1000.0) - pulses_before
    true_wh = load_w * (steps * step).total_seconds() / 3600.0
    return check_accuracy(
        pulses * 1000.0 / constant,
        true_wh if reference_wh is None else reference_wh,
        config.accuracy_class,
    )


@dataclass(frozen=True, slots=True)
class TypeTestResult:
    """Outcome of one IEC 62053-21/22 test point.

    ``error_pct`` for error points; ``pulses`` counted on the test output; ``passed``
    by the point's criterion (error within the limit; at least one pulse when starting;
    at most one pulse with no load).
    """

    point: TypeTestPoint
    duration_s: float
    meter_wh: float
    true_wh: float
    pulses: int
    error_pct: float | None
    passed: bool


def _pulses(meter: Meter) -> int:
    constant = meter.config.meter_constant_imp_per_kwh
    return math.floor(meter.registers.a_plus_precise_wh * constant / 1000.0 + 1e-9)


def run_test_points(
    config: MeterConfig,
    start: datetime,
    *,
    basic_current_a: float,
    max_current_a: float,
    connection: str = "direct",
    error_duration_s: float = 2.0,
    fs_hz: float = 4000.0,
    current_noise_a: float = 0.0,
    ct: RangeSwitchingCt | None = None,
    points: list[TypeTestPoint] | None = None,
) -> list[TypeTestResult]:
    """Run the IEC 62053-21/22 test points of ``config``'s class against fresh meters.

    Each point gets a new :class:`Meter` commissioned at ``start`` and fed, through
    :func:`meterstack.meter.waveform.run_waveform`, the sampled test signal of the point
    (reference voltage, test current, power factor). The meter's energy is read from its
    test output (A+ including the fraction not yet shown on the register).

    * error points run ``error_duration_s`` and pass if the percentage error is within
      the class limit of that current and power factor;
    * the starting point runs for 1.5 times the time one test-output pulse takes at the
      starting load, and passes if the meter gave at least one pulse;
    * the no-load point runs for the IEC no-load duration at 115 % voltage and passes if
      the meter gave at most one pulse (``current_noise_a`` adds noise to the idle
      current input, which the meter's no-load threshold must hold back).
    """
    from meterstack.meter.device import Meter  # noqa: PLC0415 (device imports us)
    from meterstack.meter.waveform import run_waveform  # noqa: PLC0415

    chosen = points or type_test_points(
        config.accuracy_class, connection, basic_current_a, max_current_a
    )
    voltage = config.nominal_voltage_v
    phases = config.phases
    constant = config.meter_constant_imp_per_kwh
    results: list[TypeTestResult] = []
    for point in chosen:
        power_w = phases * voltage * point.current_a * math.cos(point.phase_angle_rad)
        if point.kind == "error":
            duration = error_duration_s
        elif point.kind == "starting":
            duration = 1.5 * 3600.0 * 1000.0 / constant / power_w
        else:
            duration = no_load_duration_s(
                config.accuracy_class, constant, phases, voltage, max_current_a
            )
        record = point_record(
            point,
            voltage,
            duration,
            phases=phases,
            fs_hz=fs_hz,
            f0_hz=config.nominal_frequency_hz,
            start=start,
            current_noise_a=current_noise_a if point.kind == "no_load" else 0.0,
        )
        meter = Meter(config, commissioned_at=start)
        run = run_waveform(meter, record, ct=ct, declared_voltage_v=voltage)
        metered_s = run.analysis.window_end[-1] - start.timestamp()
        true_wh = power_w * metered_s / 3600.0
        meter_wh = meter.registers.a_plus_precise_wh
        pulses = _pulses(meter)
        error = None
        if point.kind == "error":
            error = (meter_wh - true_wh) / true_wh * 100.0
            passed = point.limit_pct is not None and abs(error) <= point.limit_pct
        elif point.kind == "starting":
            passed = pulses >= 1
        else:
            passed = pulses <= 1
        results.append(TypeTestResult(point, metered_s, meter_wh, true_wh, pulses, error, passed))
    return results
