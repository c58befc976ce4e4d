"""Measurements in: what the measuring element hands the meter's logic.

A :class:`Measurement` holds, per phase, the RMS voltage and current and the mean active and
reactive power over the time since the previous measurement, plus the frequency and the
states of the meter's sensor inputs (cover micro-switches, magnetic-field sensor). It may
come at any rate: every 200 ms from waveform metrology, or every 30 minutes from a load
shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from meterstack.core.errors import ClockError, MeasurementError

_PHASE_FIELDS = ("voltage_v", "current_a", "active_power_w", "reactive_power_var")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement, ending at ``timestamp``.

    Attributes
    ----------
    timestamp : datetime
        End of the span the values describe; timezone-aware UTC.
    voltage_v : tuple of float
        RMS phase-to-neutral voltage per phase. [V]
    current_a : tuple of float
        RMS current per phase. [A]
    active_power_w : tuple of float
        Mean active power per phase; positive is import. [W]
    reactive_power_var : tuple of float
        Mean reactive power per phase; positive is inductive (lagging). [var]
    frequency_hz : float
        Supply frequency; 0 when there is no voltage. [Hz]
    neutral_current_a : float or None
        RMS neutral current, where the meter measures it. [A]
    terminal_cover_open, main_cover_open : bool
        Micro-switch inputs of the covers.
    magnetic_field : bool
        The strong-magnetic-field sensor.
    """

    timestamp: datetime
    voltage_v: tuple[float, ...]
    current_a: tuple[float, ...]
    active_power_w: tuple[float, ...]
    reactive_power_var: tuple[float, ...]
    frequency_hz: float = 50.0
    neutral_current_a: float | None = None
    terminal_cover_open: bool = False
    main_cover_open: bool = False
    magnetic_field: bool = False


def validate_measurement(measurement: Measurement, phases: int) -> float:
    """Check ``measurement`` for a meter of ``phases`` phases; return its POSIX time.

    Raises
    ------
    MeasurementError
        A value is missing, not finite, or outside what is physically possible; the error
        names the field (``voltage_v[1]``) and the value.
    ClockError
        The timestamp is naive.
    """
    stamp = measurement.timestamp
    if not isinstance(stamp, datetime):
        raise ClockError("timestamp", stamp, "expected a timezone-aware datetime")
    if stamp.tzinfo is None:
        raise ClockError("timestamp", stamp, "timestamps must be timezone-aware (use UTC)")
    for name in _PHASE_FIELDS:
        values = getattr(measurement, name)
        if not isinstance(values, tuple) or len(values) != phases:
            raise MeasurementError(
                name, values, f"expected a tuple of {phases} value(s), one per phase"
            )
        for index, value in enumerate(values):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MeasurementError(f"{name}[{index}]", value, "must be a finite number")
    for index, value in enumerate(measurement.voltage_v):
        if value < 0:
            raise MeasurementError(
                f"voltage_v[{index}]", value, "an RMS voltage cannot be negative"
            )
    for index, value in enumerate(measurement.current_a):
        if value < 0:
            raise MeasurementError(
                f"current_a[{index}]", value, "an RMS current cannot be negative"
            )
    frequency = measurement.frequency_hz
    if not isinstance(frequency, (int, float)) or not math.isfinite(frequency) or frequency < 0:
        raise MeasurementError("frequency_hz", frequency, "must be a finite number >= 0")
    neutral = measurement.neutral_current_a
    if neutral is not None and (
        not isinstance(neutral, (int, float)) or not math.isfinite(neutral) or neutral < 0
    ):
        raise MeasurementError("neutral_current_a", neutral, "must be a finite number >= 0")
    return stamp.timestamp()
