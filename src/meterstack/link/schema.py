"""The message schema: versioned, compact CBOR (RFC 8949) for everything on the link.

Every message is one CBOR array::

    message = [version, kind, meter, origin, seq, created_ms, body]

``version`` is :data:`SCHEMA_VERSION`; ``kind`` a :class:`MessageKind`; ``meter`` the
serial; ``(meter, origin, seq)`` is the message's idempotency key (``origin`` names the
sender's outbox, ``seq`` numbers its messages); ``created_ms`` is POSIX milliseconds (UTC).
The bodies are arrays too (no key names on the wire), laid out in ``docs/link.md`` in a
CDDL-like notation. Decoding is strict: anything that does not fit raises
:class:`~meterstack.link.errors.SchemaError` naming the place, e.g. ``body.entries[3][2]``.

Energies are integer Wh/varh as the meter counts them; voltages travel in centivolts and
demand in deciwatts as integers, which is exact for the meter's rounding (0.01 V, 0.1 W).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import cbor2

from meterstack.core.ids import validate_serial
from meterstack.core.obis import ObisCode
from meterstack.link.errors import SchemaError

SCHEMA_VERSION = 1

_UINT32 = 2**32
_UINT63 = 2**63


class MessageKind(IntEnum):
    """What a message carries. 1-15 go up (meter to head-end), 16-31 go down."""

    REGISTERS = 1
    PROFILE = 2
    EVENTS = 3
    ALARM = 4
    RESPONSE = 5
    POWER_QUALITY = 6
    COMMAND = 16
    ACK = 17

    @property
    def uplink(self) -> bool:
        return self < 16

    @property
    def topic_name(self) -> str:
        """The last topic level: ``meterstack/v1/<serial>/up/<topic_name>``."""
        return _TOPIC_NAMES[self]


_TOPIC_NAMES = {
    MessageKind.REGISTERS: "registers",
    MessageKind.PROFILE: "profile",
    MessageKind.EVENTS: "events",
    MessageKind.ALARM: "alarm",
    MessageKind.RESPONSE: "response",
    MessageKind.POWER_QUALITY: "pq",
    MessageKind.COMMAND: "command",
    MessageKind.ACK: "ack",
}
KIND_BY_TOPIC_NAME = {name: kind for kind, name in _TOPIC_NAMES.items()}


class ResponseStatus(IntEnum):
    """Outcome of a command at the meter."""

    OK = 0
    REFUSED = 1  # well formed, not allowed now (CommandRefusedError)
    INVALID = 2  # bad arguments
    UNSUPPORTED = 3  # unknown command
    ERROR = 4  # failed while executing


# ---------------------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class RegisterRead:
    """Register values at one instant; ``daily`` marks the midnight snapshot."""

    at_ms: int
    values: tuple[tuple[ObisCode, float], ...]
    daily: bool = False


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One load-profile interval as the meter captured it."""

    seq: int
    interval_end_s: int
    a_plus_wh: int
    a_minus_wh: int
    r_plus_varh: int
    r_minus_varh: int
    average_voltage_cv: int  # centivolts
    demand_dw: int  # deciwatts
    status: int


@dataclass(frozen=True, slots=True)
class ProfileBlock:
    """Consecutive load-profile rows of one capture period."""

    capture_period_s: int
    rows: tuple[ProfileRow, ...]


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    at_ms: int
    code: int
    detail: str


@dataclass(frozen=True, slots=True)
class EventBlock:
    """New entries of one event log (``log`` is a :class:`~meterstack.meter.LogKind` value)."""

    log: str
    rows: tuple[EventRow, ...]


@dataclass(frozen=True, slots=True)
class AlarmBody:
    at_ms: int
    code: int
    detail: str


@dataclass(frozen=True, slots=True)
class PowerQualityBlock:
    """Bulk power-quality records: ``(at_ms, obis, value)``."""

    rows: tuple[tuple[int, ObisCode, float], ...]


@dataclass(frozen=True, slots=True)
class CommandBody:
    """A command to the meter; ``command_id`` makes it idempotent at the meter."""

    command_id: int
    name: str
    args: dict[str, Any]
    expires_ms: int


@dataclass(frozen=True, slots=True)
class ResponseBody:
    command_id: int
    status: ResponseStatus
    detail: str
    result: Any = None


@dataclass(frozen=True, slots=True)
class AckBody:
    """The head-end applied these uplink messages: ``(origin, seq)`` pairs."""

    keys: tuple[tuple[int, int], ...]


Body = (
    RegisterRead
    | ProfileBlock
    | EventBlock
    | AlarmBody
    | PowerQualityBlock
    | CommandBody
    | ResponseBody
    | AckBody
)

_BODY_TYPE: dict[MessageKind, type] = {
    MessageKind.REGISTERS: RegisterRead,
    MessageKind.PROFILE: ProfileBlock,
    MessageKind.EVENTS: EventBlock,
    MessageKind.ALARM: AlarmBody,
    MessageKind.POWER_QUALITY: PowerQualityBlock,
    MessageKind.COMMAND: CommandBody,
    MessageKind.RESPONSE: ResponseBody,
    MessageKind.ACK: AckBody,
}


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the link, before encryption."""

    kind: MessageKind
    meter: str
    origin: int
    seq: int
    created_ms: int
    body: Body = field(compare=True)

    @property
    def key(self) -> tuple[str, int, int]:
        """The idempotency key: the head-end applies each key once."""
        return (self.meter, self.origin, self.seq)


# ---------------------------------------------------------------------------- encoding


def _obis(code: ObisCode) -> bytes:
    return code.to_bytes()


def _body_to_wire(body: Body) -> list[Any]:
    if isinstance(body, RegisterRead):
        return [body.at_ms, body.daily, [[_obis(code), value] for code, value in body.values]]
    if isinstance(body, ProfileBlock):
        return [
            body.capture_period_s,
            [
                [
                    r.seq,
                    r.interval_end_s,
                    r.a_plus_wh,
                    r.a_minus_wh,
                    r.r_plus_varh,
                    r.r_minus_varh,
                    r.average_voltage_cv,
                    r.demand_dw,
                    r.status,
                ]
                for r in body.rows
            ],
        ]
    if isinstance(body, EventBlock):
        return [body.log, [[r.seq, r.at_ms, r.code, r.detail] for r in body.rows]]
    if isinstance(body, AlarmBody):
        return [body.at_ms, body.code, body.detail]
    if isinstance(body, PowerQualityBlock):
        return [[[at, _obis(code), value] for at, code, value in body.rows]]
    if isinstance(body, CommandBody):
        return [body.command_id, body.name, body.args, body.expires_ms]
    if isinstance(body, ResponseBody):
        return [body.command_id, int(body.status), body.detail, body.result]
    return [[list(pair) for pair in body.keys]]


def encode(message: Message) -> bytes:
    """CBOR bytes of ``message``.

    Raises
    ------
    SchemaError
        The body does not match the kind, or a field is out of range.
    """
    expected = _BODY_TYPE.get(message.kind)
    if expected is None or not isinstance(message.body, expected):
        raise SchemaError("body", type(message.body).__name__, f"not a body of {message.kind!r}")
    validate_serial(message.meter, "meter")
    _uint(message.origin, "origin", _UINT32)
    _uint(message.seq, "seq", _UINT63)
    _uint(message.created_ms, "created_ms", _UINT63)
    wire = [
        SCHEMA_VERSION,
        int(message.kind),
        message.meter,
        message.origin,
        message.seq,
        message.created_ms,
        _body_to_wire(message.body),
    ]
    try:
        return cbor2.dumps(wire)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise SchemaError("body", message.body, f"cannot be encoded as CBOR: {exc}") from exc


def decode(blob: bytes) -> Message:
    """Parse and validate CBOR bytes into a :class:`Message`.

    Raises
    ------
    SchemaError
        Not CBOR, a different schema version, or any field of the wrong type or range; the
        error's ``field`` names where.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SchemaError("message", type(blob).__name__, "expected bytes")
    try:
        wire = cbor2.loads(bytes(blob))
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise SchemaError("message", bytes(blob[:16]).hex(), f"not valid CBOR: {exc}") from exc
    if not isinstance(wire, list) or len(wire) != 7:
        raise SchemaError("message", _short(wire), "expected an array of 7 items")
    version, kind_code, meter, origin, seq, created_ms, body = wire
    if version != SCHEMA_VERSION:
        raise SchemaError("version", version, f"this reader speaks schema {SCHEMA_VERSION}")
    kind = _KIND_BY_CODE.get(kind_code) if type(kind_code) is int else None
    if kind is None:
        try:
            kind = MessageKind(_int(kind_code, "kind"))
        except ValueError as exc:
            raise SchemaError("kind", kind_code, "unknown message kind") from exc
    if not isinstance(meter, str):
        raise SchemaError("meter", meter, "expected text")
    if not _valid_serial(meter):
        raise SchemaError("meter", meter, "not a valid serial")
    return Message(
        kind=kind,
        meter=meter,
        origin=_uint(origin, "origin", _UINT32),
        seq=_uint(seq, "seq", _UINT63),
        created_ms=_uint(created_ms, "created_ms", _UINT63),
        body=_body_from_wire(kind, body),
    )


_KIND_BY_CODE = {int(kind): kind for kind in MessageKind}


@functools.lru_cache(maxsize=1 << 17)
def _valid_serial(meter: str) -> bool:
    """Whether ``meter`` is a valid serial (cached: the same fleet's serials recur)."""
    try:
        validate_serial(meter, "meter")
    except ValueError:
        return False
    return True


def _body_from_wire(kind: MessageKind, body: Any) -> Body:
    if kind is MessageKind.REGISTERS:
        at_ms, daily, values = _array(body, "body", 3)
        read = []
        for i, item in enumerate(_list(values, "body.values")):
            code, value = _array(item, f"body.values[{i}]", 2)
            read.append(
                (_obis_from(code, f"body.values[{i}][0]"), _num(value, f"body.values[{i}][1]"))
            )
        return RegisterRead(
            at_ms=_uint(at_ms, "body.at_ms", _UINT63),
            daily=_bool(daily, "body.daily"),
            values=tuple(read),
        )
    if kind is MessageKind.PROFILE:
        period, rows = _array(body, "body", 2)
        return ProfileBlock(
            capture_period_s=_uint(period, "body.capture_period_s", 86401),
            rows=tuple(_profile_row(row, i) for i, row in enumerate(_list(rows, "body.rows"))),
        )
    if kind is MessageKind.EVENTS:
        log, rows = _array(body, "body", 2)
        return EventBlock(
            log=_text(log, "body.log"),
            rows=tuple(_event_row(row, i) for i, row in enumerate(_list(rows, "body.rows"))),
        )
    if kind is MessageKind.ALARM:
        at_ms, code, detail = _array(body, "body", 3)
        return AlarmBody(
            _uint(at_ms, "body.at_ms", _UINT63),
            _uint(code, "body.code", 65536),
            _text(detail, "body.detail"),
        )
    if kind is MessageKind.POWER_QUALITY:
        (rows,) = _array(body, "body", 1)
        parsed = []
        for i, row in enumerate(_list(rows, "body.rows")):
            at, code, value = _array(row, f"body.rows[{i}]", 3)
            parsed.append(
                (
                    _uint(at, f"body.rows[{i}][0]", _UINT63),
                    _obis_from(code, f"body.rows[{i}][1]"),
                    _num(value, f"body.rows[{i}][2]"),
                )
            )
        return PowerQualityBlock(tuple(parsed))
    if kind is MessageKind.COMMAND:
        command_id, name, args, expires_ms = _array(body, "body", 4)
        if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
            raise SchemaError("body.args", _short(args), "expected a map with text keys")
        return CommandBody(
            _uint(command_id, "body.command_id", _UINT63),
            _text(name, "body.name"),
            args,
            _uint(expires_ms, "body.expires_ms", _UINT63),
        )
    if kind is MessageKind.RESPONSE:
        command_id, status, detail, result = _array(body, "body", 4)
        try:
            parsed_status = ResponseStatus(_int(status, "body.status"))
        except ValueError as exc:
            raise SchemaError("body.status", status, "unknown response status") from exc
        return ResponseBody(
            _uint(command_id, "body.command_id", _UINT63),
            parsed_status,
            _text(detail, "body.detail"),
            result,
        )
    (keys,) = _array(body, "body", 1)
    pairs = []
    for i, pair in enumerate(_list(keys, "body.keys")):
        origin, seq = _array(pair, f"body.keys[{i}]", 2)
        pairs.append(
            (
                _uint(origin, f"body.keys[{i}][0]", _UINT32),
                _uint(seq, f"body.keys[{i}][1]", _UINT63),
            )
        )
    return AckBody(tuple(pairs))


_INT_ONLY = {int}


def _profile_row(row: Any, i: int) -> ProfileRow:
    # The common case checked at once (exact ints in range); anything else takes the
    # field-by-field path below, which names the offending field.
    if type(row) is list and len(row) == 9 and set(map(type, row)) == _INT_ONLY:
        seq, end, a_plus, a_minus, r_plus, r_minus, voltage, demand, status = row
        if 0 <= seq < _UINT63 and 0 <= end < _UINT63 and 0 <= status < _UINT32:
            return ProfileRow(seq, end, a_plus, a_minus, r_plus, r_minus, voltage, demand, status)
    items = _array(row, f"body.rows[{i}]", 9)
    where = f"body.rows[{i}]"
    seq = _uint(items[0], f"{where}[0]", _UINT63)
    end = _uint(items[1], f"{where}[1]", _UINT63)
    e = [_int(items[k], f"{where}[{k}]") for k in range(2, 8)]
    status = _uint(items[8], f"{where}[8]", _UINT32)
    return ProfileRow(seq, end, e[0], e[1], e[2], e[3], e[4], e[5], status)


def _event_row(row: Any, i: int) -> EventRow:
    seq, at_ms, code, detail = _array(row, f"body.rows[{i}]", 4)
    return EventRow(
        _uint(seq, f"body.rows[{i}][0]", _UINT63),
        _uint(at_ms, f"body.rows[{i}][1]", _UINT63),
        _uint(code, f"body.rows[{i}][2]", 65536),
        _text(detail, f"body.rows[{i}][3]"),
    )


def _short(value: Any) -> Any:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _array(value: Any, field: str, length: int) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise SchemaError(field, _short(value), f"expected an array of {length} items")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaError(field, _short(value), "expected an array")
    return value


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(field, _short(value), "expected an integer")
    return value


def _uint(value: Any, field: str, limit: int) -> int:
    number = _int(value, field)
    if not 0 <= number < limit:
        raise SchemaError(field, number, f"expected 0 <= n < {limit}")
    return number


def _num(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(field, _short(value), "expected a number")
    if not math.isfinite(value):
        raise SchemaError(field, value, "expected a finite number")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(field, _short(value), "expected true or false")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(field, _short(value), "expected text")
    return value


def _obis_from(value: Any, field: str) -> ObisCode:
    if not isinstance(value, bytes) or len(value) != 6:
        raise SchemaError(field, _short(value), "expected a 6-byte OBIS logical name")
    return ObisCode(*value)
