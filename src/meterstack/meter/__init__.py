"""The device model: a smart meter's logic, pure and deterministic.

Give it a configuration, a start time and (optionally) a non-volatile store; feed it
measurements and commands, each carrying its time; read its registers, load profile, event
logs, relay and credit. It does no I/O of its own beyond the store it is handed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from meterstack.meter.accuracy import (
    CLASS_LIMITS_PCT,
    AccuracyResult,
    TypeTestResult,
    check_accuracy,
    percentage_error,
    run_resistive_load_test,
    run_test_points,
)
from meterstack.meter.config import (
    DemandConfig,
    FriendlyCalendar,
    FriendlyWindow,
    LimiterConfig,
    MeterConfig,
    PrepaidConfig,
    RateSwitch,
    Season,
    Thresholds,
    TouCalendarConfig,
)
from meterstack.meter.credit import TopUp
from meterstack.meter.device import Alarm, Meter
from meterstack.meter.events import Event, EventCode, LogKind
from meterstack.meter.inquiry import CustomerInquiry
from meterstack.meter.measurement import Measurement
from meterstack.meter.profile import ProfileEntry, ProfileStatus
from meterstack.meter.registers import BillingRecord
from meterstack.meter.relay import ControlState, DisconnectReason
from meterstack.meter.store import (
    FileStore,
    MemoryStore,
    MeterImage,
    NonVolatileDatabase,
    NonVolatileStore,
    SQLiteStore,
)

__all__ = [
    "CLASS_LIMITS_PCT",
    "AccuracyResult",
    "Alarm",
    "BillingRecord",
    "ControlState",
    "CustomerInquiry",
    "DemandConfig",
    "DisconnectReason",
    "Event",
    "EventCode",
    "FileStore",
    "FriendlyCalendar",
    "FriendlyWindow",
    "LimiterConfig",
    "LogKind",
    "Measurement",
    "MemoryStore",
    "Meter",
    "MeterConfig",
    "MeterImage",
    "NonVolatileDatabase",
    "NonVolatileStore",
    "PrepaidConfig",
    "ProfileEntry",
    "ProfileStatus",
    "RateSwitch",
    "SQLiteStore",
    "Season",
    "Thresholds",
    "TopUp",
    "TouCalendarConfig",
    "TypeTestResult",
    "WaveformRun",
    "check_accuracy",
    "percentage_error",
    "run_resistive_load_test",
    "run_test_points",
    "run_waveform",
]

if TYPE_CHECKING:
    from meterstack.meter.waveform import WaveformRun, run_waveform


def __getattr__(name: str) -> Any:
    # Running a meter from waveforms pulls in metrology and SciPy: load it on first use.
    if name in ("WaveformRun", "run_waveform"):
        return getattr(importlib.import_module("meterstack.meter.waveform"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
