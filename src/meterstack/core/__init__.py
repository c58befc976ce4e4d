"""The base layer: units, time, identifiers, the error hierarchy and configuration."""

from meterstack.core.errors import (
    ClockError,
    CommandRefusedError,
    ConfigError,
    CorruptStateError,
    InvalidInputError,
    MeasurementError,
    MeterstackError,
    StoreError,
)
from meterstack.core.obis import ObisCode
from meterstack.core.time import Clock, SimulatedClock, SystemClock

__all__ = [
    "Clock",
    "ClockError",
    "CommandRefusedError",
    "ConfigError",
    "CorruptStateError",
    "InvalidInputError",
    "MeasurementError",
    "MeterstackError",
    "ObisCode",
    "SimulatedClock",
    "StoreError",
    "SystemClock",
]
