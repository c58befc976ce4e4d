"""A-XDR encoding of DLMS/COSEM ``Data`` (IEC 62056-6-2 and 62056-5-3).

Every COSEM attribute value and method parameter travels as the ASN.1 CHOICE ``Data``
encoded by the A-XDR rules of IEC 61334-6: one tag octet naming the type, then the value.
Fixed-size integers are big-endian two's complement (signed) or unsigned; strings and
arrays carry a length in the A-XDR variable-length form (one octet below 128, otherwise
``0x80 | n`` followed by ``n`` length octets).

==== ======================== ======================== ===================
tag  type                     tag  type
==== ======================== ======================== ===================
0    null-data                15   integer (int8)
1    array                    16   long (int16)
2    structure                17   unsigned (uint8)
3    boolean                  18   long-unsigned (uint16)
4    bit-string               19   compact-array (refused here)
5    double-long (int32)      20   long64 (int64)
6    double-long-unsigned     21   long64-unsigned
9    octet-string             22   enum
10   visible-string           23   float32
12   utf8-string              24   float64
13   bcd                      25   date-time (12 octets)
26   date (5 octets)          27   time (4 octets)
==== ======================== ======================== ===================

References
----------
.. [1] IEC 62056-6-2:2017 (DLMS UA Blue Book ed. 12), 4.1.5 "Common data types" and
   4.1.6 "Date and time formats".
.. [2] IEC 62056-5-3:2017 (DLMS UA Green Book ed. 8), 9.5 "A-XDR encoding" and the
   ``Data`` CHOICE of the xDLMS ASN.1 module.
.. [3] IEC 61334-6:2000, A-XDR encoding rule.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from meterstack.protocols.errors import ProtocolError

MAX_DEPTH = 16


class DataType(IntEnum):
    """Tags of the ``Data`` CHOICE [1]_ (Table 2 of the Blue Book)."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27


# type -> (struct format, minimum, maximum)
_INTEGERS: dict[DataType, tuple[str, int, int]] = {
    DataType.INTEGER: (">b", -(2**7), 2**7 - 1),
    DataType.LONG: (">h", -(2**15), 2**15 - 1),
    DataType.DOUBLE_LONG: (">i", -(2**31), 2**31 - 1),
    DataType.LONG64: (">q", -(2**63), 2**63 - 1),
    DataType.UNSIGNED: (">B", 0, 2**8 - 1),
    DataType.LONG_UNSIGNED: (">H", 0, 2**16 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (">I", 0, 2**32 - 1),
    DataType.LONG64_UNSIGNED: (">Q", 0, 2**64 - 1),
    DataType.ENUM: (">B", 0, 2**8 - 1),
    DataType.BCD: (">B", 0, 2**8 - 1),
}
_INTEGER_STRUCTS = {kind: struct.Struct(fmt) for kind, (fmt, _, _) in _INTEGERS.items()}
_FIXED_OCTETS = {DataType.DATE_TIME: 12, DataType.DATE: 5, DataType.TIME: 4}


@dataclass(frozen=True, slots=True)
class Data:
    """One typed DLMS value.

    ``value`` is ``None`` (null-data), ``bool``, ``int`` (every integer type, enum and
    bcd), ``float``, ``bytes`` (octet-string, date-time, date, time), ``str`` (visible
    and utf8 strings; a bit-string as ``"0101..."``) or a tuple of :class:`Data` (array,
    structure). The constructor checks the value against the type, so an out-of-range
    integer is refused instead of wrapping round.
    """

    type: DataType
    value: object = None

    def __post_init__(self) -> None:
        kind, value = self.type, self.value
        if kind in _INTEGERS:
            _, low, high = _INTEGERS[kind]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ProtocolError(
                    f"data.{kind.name.lower()}", value, f"an integer from {low} to {high}"
                )
        elif kind in (DataType.ARRAY, DataType.STRUCTURE):
            if not isinstance(value, tuple) or not all(isinstance(v, Data) for v in value):
                raise ProtocolError(f"data.{kind.name.lower()}", value, "a tuple of Data")
        elif kind in (DataType.OCTET_STRING, *_FIXED_OCTETS):
            if not isinstance(value, bytes):
                raise ProtocolError(f"data.{kind.name.lower()}", value, "bytes")
            size = _FIXED_OCTETS.get(kind)
            if size is not None and len(value) != size:
                raise ProtocolError(f"data.{kind.name.lower()}", value, f"exactly {size} octets")
        elif kind in (DataType.VISIBLE_STRING, DataType.UTF8_STRING):
            if not isinstance(value, str):
                raise ProtocolError(f"data.{kind.name.lower()}", value, "a str")
        elif kind == DataType.BIT_STRING:
            if not isinstance(value, str) or set(value) - {"0", "1"}:
                raise ProtocolError("data.bit_string", value, "a str of 0 and 1")
        elif kind == DataType.BOOLEAN:
            if not isinstance(value, bool):
                raise ProtocolError("data.boolean", value, "True or False")
        elif kind in (DataType.FLOAT32, DataType.FLOAT64):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProtocolError(f"data.{kind.name.lower()}", value, "a float")
        elif kind == DataType.NULL_DATA:
            if value is not None:
                raise ProtocolError("data.null_data", value, "None")
        else:
            raise ProtocolError("data.type", kind, "this type is not supported")

    # Short constructors, named after the Blue Book's types.
    @classmethod
    def null(cls) -> Data:
        return cls(DataType.NULL_DATA)

    @classmethod
    def boolean(cls, value: bool) -> Data:
        return cls(DataType.BOOLEAN, value)

    @classmethod
    def integer(cls, value: int) -> Data:
        return cls(DataType.INTEGER, value)

    @classmethod
    def long(cls, value: int) -> Data:
        return cls(DataType.LONG, value)

    @classmethod
    def double_long(cls, value: int) -> Data:
        return cls(DataType.DOUBLE_LONG, value)

    @classmethod
    def long64(cls, value: int) -> Data:
        return cls(DataType.LONG64, value)

    @classmethod
    def unsigned(cls, value: int) -> Data:
        return cls(DataType.UNSIGNED, value)

    @classmethod
    def long_unsigned(cls, value: int) -> Data:
        return cls(DataType.LONG_UNSIGNED, value)

    @classmethod
    def double_long_unsigned(cls, value: int) -> Data:
        return cls(DataType.DOUBLE_LONG_UNSIGNED, value)

    @classmethod
    def long64_unsigned(cls, value: int) -> Data:
        return cls(DataType.LONG64_UNSIGNED, value)

    @classmethod
    def enum(cls, value: int) -> Data:
        return cls(DataType.ENUM, value)

    @classmethod
    def float64(cls, value: float) -> Data:
        return cls(DataType.FLOAT64, float(value))

    @classmethod
    def octet_string(cls, value: bytes) -> Data:
        return cls(DataType.OCTET_STRING, bytes(value))

    @classmethod
    def visible_string(cls, value: str) -> Data:
        return cls(DataType.VISIBLE_STRING, value)

    @classmethod
    def array(cls, items: tuple[Data, ...] | list[Data]) -> Data:
        return cls(DataType.ARRAY, tuple(items))

    @classmethod
    def structure(cls, *items: Data) -> Data:
        return cls(DataType.STRUCTURE, tuple(items))

    # Accessors with type checks, for decoders of COSEM parameters.
    def as_int(self, field: str) -> int:
        if self.type not in _INTEGERS:
            raise ProtocolError(field, self, "an integer value")
        assert isinstance(self.value, int)
        return self.value

    def as_bytes(self, field: str) -> bytes:
        if not isinstance(self.value, bytes):
            raise ProtocolError(field, self, "an octet-string")
        return self.value

    def as_items(self, field: str, count: int | None = None) -> tuple[Data, ...]:
        if self.type not in (DataType.ARRAY, DataType.STRUCTURE):
            raise ProtocolError(field, self, "an array or structure")
        assert isinstance(self.value, tuple)
        if count is not None and len(self.value) != count:
            raise ProtocolError(field, self, f"a structure of {count} elements")
        return self.value


# ---------------------------------------------------------------------- lengths


def encode_length(length: int) -> bytes:
    """A-XDR length: one octet below 128, else ``0x80 | n`` and ``n`` big-endian octets."""
    if length < 0:
        raise ProtocolError("length", length, "a length is not negative")
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def decode_length(buffer: bytes, offset: int, field: str = "length") -> tuple[int, int]:
    """Read an A-XDR length at ``offset``; return it and the offset after it."""
    if offset >= len(buffer):
        raise ProtocolError(field, offset, "truncated: the length octet is missing")
    first = buffer[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0 or count > 4:
        raise ProtocolError(field, first, "a long-form length of 1 to 4 octets")
    if offset + count > len(buffer):
        raise ProtocolError(field, offset, "truncated inside a long-form length")
    return int.from_bytes(buffer[offset : offset + count], "big"), offset + count


# ---------------------------------------------------------------------- encoding


def encode_data(value: Data) -> bytes:
    """The A-XDR octets of ``value`` (tag first) [2]_."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


def _encode_into(out: bytearray, data: Data) -> None:
    kind = data.type
    value = data.value
    out.append(kind)
    packer = _INTEGER_STRUCTS.get(kind)
    if packer is not None:
        out += packer.pack(value)
    elif kind in (DataType.ARRAY, DataType.STRUCTURE):
        assert isinstance(value, tuple)
        out += encode_length(len(value))
        for item in value:
            _encode_into(out, item)
    elif kind == DataType.OCTET_STRING:
        assert isinstance(value, bytes)
        out += encode_length(len(value))
        out += value
    elif kind in _FIXED_OCTETS:
        assert isinstance(value, bytes)
        out += value
    elif kind == DataType.VISIBLE_STRING:
        assert isinstance(value, str)
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ProtocolError("data.visible_string", value, "ASCII characters only") from exc
        out += encode_length(len(raw))
        out += raw
    elif kind == DataType.UTF8_STRING:
        assert isinstance(value, str)
        raw = value.encode("utf-8")
        out += encode_length(len(raw))
        out += raw
    elif kind == DataType.BOOLEAN:
        out.append(0xFF if value else 0x00)
    elif kind == DataType.BIT_STRING:
        assert isinstance(value, str)
        out += encode_length(len(value))
        padded = value + "0" * (-len(value) % 8)
        out += int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
    elif kind == DataType.FLOAT32:
        out += struct.pack(">f", value)
    elif kind == DataType.FLOAT64:
        out += struct.pack(">d", value)
    # null-data has no content


# ---------------------------------------------------------------------- decoding


def decode_data(buffer: bytes, offset: int = 0, field: str = "data") -> tuple[Data, int]:
    """Decode one ``Data`` at ``offset``; return it and the offset after it.

    Raises
    ------
    ProtocolError
        Truncated input, an unknown tag, a length beyond the buffer, nesting deeper than
        16 levels, or a compact-array (not supported); ``field`` names the element.
    """
    return _decode(bytes(buffer), offset, field, 0)


def decode_data_exact(buffer: bytes, field: str = "data") -> Data:
    """Decode ``buffer`` as exactly one ``Data`` (trailing octets are an error)."""
    value, end = decode_data(buffer, 0, field)
    if end != len(buffer):
        raise ProtocolError(field, len(buffer) - end, "trailing octets after the value")
    return value


def _need(buffer: bytes, offset: int, count: int, field: str) -> None:
    if offset + count > len(buffer):
        raise ProtocolError(
            field, offset, f"truncated: {count} octets needed, {len(buffer) - offset} left"
        )


def _decode(buffer: bytes, offset: int, field: str, depth: int) -> tuple[Data, int]:
    _need(buffer, offset, 1, field)
    tag = buffer[offset]
    offset += 1
    try:
        kind = DataType(tag)
    except ValueError:
        raise ProtocolError(field, tag, "an unknown Data tag") from None
    unpacker = _INTEGER_STRUCTS.get(kind)
    if unpacker is not None:
        _need(buffer, offset, unpacker.size, field)
        (number,) = unpacker.unpack_from(buffer, offset)
        return Data(kind, number), offset + unpacker.size
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        if depth >= MAX_DEPTH:
            raise ProtocolError(field, depth, f"nesting deeper than {MAX_DEPTH} levels")
        count, offset = decode_length(buffer, offset, field)
        if count > len(buffer) - offset:  # every element takes at least one octet
            raise ProtocolError(field, count, "more elements than octets left")
        items = []
        for index in range(count):
            item, offset = _decode(buffer, offset, f"{field}[{index}]", depth + 1)
            items.append(item)
        return Data(kind, tuple(items)), offset
    if kind in (DataType.OCTET_STRING, DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        size, offset = decode_length(buffer, offset, field)
        _need(buffer, offset, size, field)
        raw = buffer[offset : offset + size]
        offset += size
        if kind == DataType.OCTET_STRING:
            return Data(kind, raw), offset
        try:
            text = raw.decode("ascii" if kind == DataType.VISIBLE_STRING else "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(field, raw, f"not a valid {kind.name.lower()}") from exc
        return Data(kind, text), offset
    if kind in _FIXED_OCTETS:
        size = _FIXED_OCTETS[kind]
        _need(buffer, offset, size, field)
        return Data(kind, buffer[offset : offset + size]), offset + size
    if kind == DataType.BOOLEAN:
        _need(buffer, offset, 1, field)
        return Data(kind, buffer[offset] != 0), offset + 1
    if kind == DataType.BIT_STRING:
        bits, offset = decode_length(buffer, offset, field)
        size = (bits + 7) // 8
        _need(buffer, offset, size, field)
        raw = buffer[offset : offset + size]
        text = "".join(f"{octet:08b}" for octet in raw)[:bits]
        return Data(kind, text), offset + size
    if kind == DataType.FLOAT32:
        _need(buffer, offset, 4, field)
        return Data(kind, struct.unpack_from(">f", buffer, offset)[0]), offset + 4
    if kind == DataType.FLOAT64:
        _need(buffer, offset, 8, field)
        return Data(kind, struct.unpack_from(">d", buffer, offset)[0]), offset + 8
    if kind == DataType.NULL_DATA:
        return Data(kind), offset
    raise ProtocolError(field, tag, f"{kind.name.lower()} is not supported")


# ---------------------------------------------------------------------- date-time

_NOT_SPECIFIED_DEVIATION = 0x8000


def encode_date_time(moment: datetime) -> bytes:
    """The 12-octet COSEM date-time of an aware ``moment``, sent as UTC [1]_ 4.1.6.1.

    year (2), month, day of month, day of week (1 = Monday), hour, minute, second,
    hundredths, deviation (int16, minutes; 0 for UTC), clock status (0 = valid).
    """
    if moment.tzinfo is None:
        raise ProtocolError("date_time", moment, "an aware datetime")
    utc = moment.astimezone(UTC)
    return struct.pack(
        ">HBBBBBBBhB",
        utc.year,
        utc.month,
        utc.day,
        utc.isoweekday(),
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 10_000,
        0,
        0,
    )


def decode_date_time(raw: bytes, field: str = "date_time") -> datetime:
    """An aware UTC datetime from a 12-octet COSEM date-time [1]_ 4.1.6.1.

    The deviation is minutes from local time to UTC (UTC = local + deviation), as the
    Blue Book defines it; ``0x8000`` (not specified) is read as UTC. Wildcards (0xFF,
    0xFFFF) in the date or time are refused: a range bound must be a definite instant.
    """
    if len(raw) != 12:
        raise ProtocolError(field, raw, "a date-time is 12 octets")
    year, month, day, _, hour, minute, second, hundredths, deviation, _ = struct.unpack(
        ">HBBBBBBBhB", raw
    )
    hundredths = 0 if hundredths == 0xFF else hundredths
    try:
        local = datetime(year, month, day, hour, minute, second, hundredths * 10_000, tzinfo=UTC)
    except ValueError as exc:
        raise ProtocolError(field, raw.hex(), f"not a definite date and time: {exc}") from exc
    if deviation in (_NOT_SPECIFIED_DEVIATION - 0x10000, -0x8000):
        return local
    if not -720 <= deviation <= 720:
        raise ProtocolError(field, deviation, "a deviation from -720 to 720 minutes")
    return local + timedelta(minutes=deviation)


def date_time_data(moment: datetime) -> Data:
    """A date-time as the octet-string (12) most COSEM attributes use."""
    return Data(DataType.OCTET_STRING, encode_date_time(moment))
