"""Event logs: one ring buffer per DLMS log kind, one entry per transition.

Event codes 1-91 are those of the IDIS companion specification (the standard event log,
fraud detection log, disconnector control log and power quality log); codes from 200 up are
meterstack's own, for what IDIS does not name (prepayment, overload, the end of a condition
IDIS records only at its start).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import NamedTuple

from meterstack.core.obis import ObisCode
from meterstack.meter import obis
from meterstack.meter.ring import NumberedRing


class LogKind(StrEnum):
    """The meter's event logs."""

    STANDARD = "standard"
    FRAUD = "fraud"
    POWER_QUALITY = "power_quality"
    POWER_FAILURE = "power_failure"
    DISCONNECTOR = "disconnector"
    FIRMWARE = "firmware"
    TOKEN = "token"
    EXPORT_CONTROL = "export_control"

    @property
    def obis(self) -> ObisCode:
        return _LOG_OBIS[self]


_LOG_OBIS = {
    LogKind.STANDARD: obis.STANDARD_EVENT_LOG,
    LogKind.FRAUD: obis.FRAUD_DETECTION_LOG,
    LogKind.POWER_QUALITY: obis.POWER_QUALITY_LOG,
    LogKind.POWER_FAILURE: obis.POWER_FAILURE_LOG,
    LogKind.DISCONNECTOR: obis.DISCONNECTOR_CONTROL_LOG,
    LogKind.FIRMWARE: obis.FIRMWARE_EVENT_LOG,
    LogKind.TOKEN: obis.TOKEN_EVENT_LOG,
    LogKind.EXPORT_CONTROL: obis.EXPORT_CONTROL_LOG,
}


class EventCode(IntEnum):
    """Event codes. 1-91: IDIS; 200 and up: meterstack."""

    POWER_DOWN = 1
    POWER_UP = 2
    CLOCK_ADJUSTED_OLD_TIME = 4
    CLOCK_ADJUSTED_NEW_TIME = 5
    FIRMWARE_READY_FOR_ACTIVATION = 17
    FIRMWARE_ACTIVATED = 18
    TERMINAL_COVER_REMOVED = 40
    TERMINAL_COVER_CLOSED = 41
    STRONG_DC_FIELD_DETECTED = 42
    NO_STRONG_DC_FIELD = 43
    METER_COVER_REMOVED = 44
    METER_COVER_CLOSED = 45
    MANUAL_DISCONNECTION = 60
    MANUAL_CONNECTION = 61
    REMOTE_DISCONNECTION = 62
    REMOTE_CONNECTION = 63
    LOCAL_DISCONNECTION = 64
    LIMITER_THRESHOLD_EXCEEDED = 65
    LIMITER_THRESHOLD_OK = 66
    LIMITER_THRESHOLD_CHANGED = 67
    UNDER_VOLTAGE_L1 = 76
    UNDER_VOLTAGE_L2 = 77
    UNDER_VOLTAGE_L3 = 78
    OVER_VOLTAGE_L1 = 79
    OVER_VOLTAGE_L2 = 80
    OVER_VOLTAGE_L3 = 81
    MISSING_VOLTAGE_L1 = 82
    MISSING_VOLTAGE_L2 = 83
    MISSING_VOLTAGE_L3 = 84
    VOLTAGE_NORMAL_L1 = 85
    VOLTAGE_NORMAL_L2 = 86
    VOLTAGE_NORMAL_L3 = 87
    MISSING_NEUTRAL = 89
    CURRENT_REVERSAL = 91
    # meterstack
    LOCAL_CONNECTION = 200
    NEUTRAL_RESTORED = 201
    CURRENT_REVERSAL_ENDED = 202
    OVERLOAD = 203
    OVERLOAD_ENDED = 204
    CURRENT_WITH_RELAY_OPEN = 205
    CREDIT_LOW = 210
    CREDIT_EXHAUSTED = 211
    EMERGENCY_CREDIT_ACTIVATED = 212
    LOW_CREDIT_ACKNOWLEDGED = 213
    CREDIT_RESTORED = 214
    BILLING_RESET = 220
    TAMPER_CLEARED = 221
    CREDIT_TOKEN_ACCEPTED = 230
    TOKEN_REJECTED = 231
    MANAGEMENT_TOKEN_ACCEPTED = 232
    KEY_CHANGE_TOKEN_ACCEPTED = 233
    DECODER_KEY_CHANGED = 234
    TEST_TOKEN_ACCEPTED = 235
    KEYPAD_LOCKED = 236
    CREDIT_CLEARED = 237
    HARMONIC_VOLTAGE_LIMIT_EXCEEDED = 240
    HARMONIC_VOLTAGE_LIMIT_OK = 241
    HARMONIC_CURRENT_LIMIT_EXCEEDED = 242
    HARMONIC_CURRENT_LIMIT_OK = 243
    VOLTAGE_UNBALANCE_EXCEEDED = 244
    VOLTAGE_UNBALANCE_OK = 245
    # export control (no-export zones), logged by meterstack.meter.export_control
    EXPORT_GENERATION_TRIPPED = 246
    EXPORT_GENERATION_RECONNECTED = 247
    EXPORT_CONTROL_NORMAL = 250
    EXPORT_LIMIT_EXCEEDED = 251
    EXPORT_CURTAILING = 252
    EXPORT_FAIL_SAFE = 253
    EXPORT_READING_RESTORED = 254
    EXPORT_WATCHDOG_ARMED = 255


@dataclass(frozen=True, slots=True)
class EventDefinition:
    """What an event code means: its name, its log and whether it raises an alarm."""

    code: EventCode
    log: LogKind
    alarm: bool


_S, _F, _Q, _P, _D, _T, _W, _X = (
    LogKind.STANDARD,
    LogKind.FRAUD,
    LogKind.POWER_QUALITY,
    LogKind.POWER_FAILURE,
    LogKind.DISCONNECTOR,
    LogKind.TOKEN,
    LogKind.FIRMWARE,
    LogKind.EXPORT_CONTROL,
)

_VOLTAGE_ALARMS = frozenset(range(EventCode.UNDER_VOLTAGE_L1, EventCode.MISSING_VOLTAGE_L3 + 1))

EVENTS: dict[EventCode, EventDefinition] = {
    definition.code: definition
    for definition in (
        EventDefinition(EventCode.POWER_DOWN, _P, alarm=True),  # the last gasp
        EventDefinition(EventCode.POWER_UP, _P, alarm=True),
        EventDefinition(EventCode.CLOCK_ADJUSTED_OLD_TIME, _S, alarm=False),
        EventDefinition(EventCode.CLOCK_ADJUSTED_NEW_TIME, _S, alarm=False),
        EventDefinition(EventCode.TERMINAL_COVER_REMOVED, _F, alarm=True),
        EventDefinition(EventCode.TERMINAL_COVER_CLOSED, _F, alarm=False),
        EventDefinition(EventCode.STRONG_DC_FIELD_DETECTED, _F, alarm=True),
        EventDefinition(EventCode.NO_STRONG_DC_FIELD, _F, alarm=False),
        EventDefinition(EventCode.METER_COVER_REMOVED, _F, alarm=True),
        EventDefinition(EventCode.METER_COVER_CLOSED, _F, alarm=False),
        EventDefinition(EventCode.MISSING_NEUTRAL, _F, alarm=True),
        EventDefinition(EventCode.NEUTRAL_RESTORED, _F, alarm=False),
        EventDefinition(EventCode.CURRENT_REVERSAL, _F, alarm=True),
        EventDefinition(EventCode.CURRENT_REVERSAL_ENDED, _F, alarm=False),
        EventDefinition(EventCode.CURRENT_WITH_RELAY_OPEN, _F, alarm=True),
        EventDefinition(EventCode.MANUAL_DISCONNECTION, _D, alarm=False),
        EventDefinition(EventCode.MANUAL_CONNECTION, _D, alarm=False),
        EventDefinition(EventCode.REMOTE_DISCONNECTION, _D, alarm=False),
        EventDefinition(EventCode.REMOTE_CONNECTION, _D, alarm=False),
        EventDefinition(EventCode.LOCAL_DISCONNECTION, _D, alarm=True),
        EventDefinition(EventCode.LOCAL_CONNECTION, _D, alarm=False),
        EventDefinition(EventCode.LIMITER_THRESHOLD_EXCEEDED, _D, alarm=True),
        EventDefinition(EventCode.LIMITER_THRESHOLD_OK, _D, alarm=False),
        EventDefinition(EventCode.LIMITER_THRESHOLD_CHANGED, _D, alarm=False),
        *(
            EventDefinition(code, _Q, alarm=code in _VOLTAGE_ALARMS)
            for code in EventCode
            if EventCode.UNDER_VOLTAGE_L1 <= code <= EventCode.VOLTAGE_NORMAL_L3
        ),
        EventDefinition(EventCode.OVERLOAD, _Q, alarm=True),
        EventDefinition(EventCode.OVERLOAD_ENDED, _Q, alarm=False),
        EventDefinition(EventCode.CREDIT_LOW, _S, alarm=True),
        EventDefinition(EventCode.CREDIT_EXHAUSTED, _S, alarm=True),
        EventDefinition(EventCode.EMERGENCY_CREDIT_ACTIVATED, _S, alarm=False),
        EventDefinition(EventCode.LOW_CREDIT_ACKNOWLEDGED, _S, alarm=False),
        EventDefinition(EventCode.CREDIT_RESTORED, _S, alarm=False),
        EventDefinition(EventCode.BILLING_RESET, _S, alarm=False),
        EventDefinition(EventCode.TAMPER_CLEARED, _F, alarm=False),
        EventDefinition(EventCode.CREDIT_TOKEN_ACCEPTED, _T, alarm=False),
        EventDefinition(EventCode.TOKEN_REJECTED, _T, alarm=False),
        EventDefinition(EventCode.MANAGEMENT_TOKEN_ACCEPTED, _T, alarm=False),
        EventDefinition(EventCode.KEY_CHANGE_TOKEN_ACCEPTED, _T, alarm=False),
        EventDefinition(EventCode.DECODER_KEY_CHANGED, _T, alarm=True),
        EventDefinition(EventCode.TEST_TOKEN_ACCEPTED, _T, alarm=False),
        EventDefinition(EventCode.KEYPAD_LOCKED, _T, alarm=True),
        EventDefinition(EventCode.CREDIT_CLEARED, _T, alarm=False),
        EventDefinition(EventCode.HARMONIC_VOLTAGE_LIMIT_EXCEEDED, _Q, alarm=True),
        EventDefinition(EventCode.HARMONIC_VOLTAGE_LIMIT_OK, _Q, alarm=False),
        EventDefinition(EventCode.HARMONIC_CURRENT_LIMIT_EXCEEDED, _Q, alarm=True),
        EventDefinition(EventCode.HARMONIC_CURRENT_LIMIT_OK, _Q, alarm=False),
        EventDefinition(EventCode.VOLTAGE_UNBALANCE_EXCEEDED, _Q, alarm=True),
        EventDefinition(EventCode.VOLTAGE_UNBALANCE_OK, _Q, alarm=False),
        EventDefinition(EventCode.FIRMWARE_READY_FOR_ACTIVATION, _W, alarm=False),
        EventDefinition(EventCode.FIRMWARE_ACTIVATED, _W, alarm=True),
        EventDefinition(EventCode.EXPORT_GENERATION_TRIPPED, _X, alarm=True),
        EventDefinition(EventCode.EXPORT_GENERATION_RECONNECTED, _X, alarm=False),
        EventDefinition(EventCode.EXPORT_CONTROL_NORMAL, _X, alarm=False),
        EventDefinition(EventCode.EXPORT_LIMIT_EXCEEDED, _X, alarm=True),
        EventDefinition(EventCode.EXPORT_CURTAILING, _X, alarm=False),
        EventDefinition(EventCode.EXPORT_FAIL_SAFE, _X, alarm=True),
        EventDefinition(EventCode.EXPORT_READING_RESTORED, _X, alarm=False),
        EventDefinition(EventCode.EXPORT_WATCHDOG_ARMED, _X, alarm=False),
    )
}

#: Events that components beside the meter's own logic (firmware update, export
#: control) may record through :meth:`meterstack.meter.Meter.record_event`.
EXTERNAL_EVENTS: frozenset[EventCode] = frozenset(
    {
        EventCode.FIRMWARE_READY_FOR_ACTIVATION,
        EventCode.FIRMWARE_ACTIVATED,
        EventCode.EXPORT_GENERATION_TRIPPED,
        EventCode.EXPORT_GENERATION_RECONNECTED,
        EventCode.EXPORT_CONTROL_NORMAL,
        EventCode.EXPORT_LIMIT_EXCEEDED,
        EventCode.EXPORT_CURTAILING,
        EventCode.EXPORT_FAIL_SAFE,
        EventCode.EXPORT_READING_RESTORED,
        EventCode.EXPORT_WATCHDOG_ARMED,
    }
)

UNDER_VOLTAGE = (EventCode.UNDER_VOLTAGE_L1, EventCode.UNDER_VOLTAGE_L2, EventCode.UNDER_VOLTAGE_L3)
OVER_VOLTAGE = (EventCode.OVER_VOLTAGE_L1, EventCode.OVER_VOLTAGE_L2, EventCode.OVER_VOLTAGE_L3)
MISSING_VOLTAGE = (
    EventCode.MISSING_VOLTAGE_L1,
    EventCode.MISSING_VOLTAGE_L2,
    EventCode.MISSING_VOLTAGE_L3,
)
VOLTAGE_NORMAL = (
    EventCode.VOLTAGE_NORMAL_L1,
    EventCode.VOLTAGE_NORMAL_L2,
    EventCode.VOLTAGE_NORMAL_L3,
)


class Event(NamedTuple):
    """One entry of an event log.

    ``seq`` numbers the entries of one log from 1 without gaps, so a reader that has seen
    entry ``n`` knows exactly what it missed; ``at`` is POSIX seconds (UTC).
    """

    seq: int
    at: float
    code: int
    detail: str

    @property
    def name(self) -> str:
        return EventCode(self.code).name.lower()


class EventLog(NumberedRing[Event]):
    """A ring buffer of events: when full, the oldest entry is overwritten."""

    def __init__(self, kind: LogKind, capacity: int) -> None:
        super().__init__(capacity)
        self.kind = kind

    def append(self, at: float, code: EventCode, detail: str = "") -> Event:
        self.last_seq += 1
        return self._push(Event(self.last_seq, at, int(code), detail))


#: Start and end event codes of the load warnings the meter accepts from its measuring
#: element (harmonic limits of IEEE 519-2022, voltage unbalance); see
#: :meth:`meterstack.meter.Meter.load_warning`.
LOAD_WARNINGS: dict[str, tuple[EventCode, EventCode]] = {
    "voltage_harmonics": (
        EventCode.HARMONIC_VOLTAGE_LIMIT_EXCEEDED,
        EventCode.HARMONIC_VOLTAGE_LIMIT_OK,
    ),
    "current_harmonics": (
        EventCode.HARMONIC_CURRENT_LIMIT_EXCEEDED,
        EventCode.HARMONIC_CURRENT_LIMIT_OK,
    ),
    "unbalance": (EventCode.VOLTAGE_UNBALANCE_EXCEEDED, EventCode.VOLTAGE_UNBALANCE_OK),
}
