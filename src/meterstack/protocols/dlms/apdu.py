"""xDLMS services with logical-name referencing: GET, SET, ACTION and their errors.

Each APDU starts with its tag and a request/response type, then the invoke-id-and-priority
octet (bits 0-3 the invoke id, bit 6 service class confirmed, bit 7 high priority), which
the server echoes. A-XDR throughout (Green Book 9.5):

* GET-Request-Normal ``C0 01 iip class(2) instance(6) attribute(1) [access-selection]``;
  GET-Request-Next ``C0 02 iip block-number(4)``.
* GET-Response-Normal ``C4 01 iip 00 Data`` or ``C4 01 iip 01 data-access-result``;
  GET-Response-With-Datablock ``C4 02 iip last(1) block(4) 00 raw-data`` for values larger
  than the client's PDU (block transfer, Green Book 9.4.6.9).
* SET-Request-Normal ``C1 01 iip descriptor [access-selection] Data``; SET-Response-Normal
  ``C5 01 iip result``.
* ACTION-Request-Normal ``C3 01 iip class instance method [parameters]``;
  ACTION-Response-Normal ``C7 01 iip result [00|01 Get-Data-Result]``.
* Exception-Response ``D8 state-error service-error`` for what cannot be parsed or served.

References
----------
.. [1] IEC 62056-5-3:2017 (DLMS UA Green Book ed. 8), 9.3.6 "The GET service", 9.3.7
   "SET", 9.3.8 "ACTION", 9.3.10 "EXCEPTION-Response", 9.5 the xDLMS ASN.1 module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms.axdr import (
    Data,
    decode_data,
    decode_length,
    encode_data,
    encode_length,
)
from meterstack.protocols.errors import ProtocolError

GET_REQUEST = 0xC0
SET_REQUEST = 0xC1
EVENT_NOTIFICATION = 0xC2
ACTION_REQUEST = 0xC3
GET_RESPONSE = 0xC4
SET_RESPONSE = 0xC5
ACTION_RESPONSE = 0xC7
EXCEPTION_RESPONSE = 0xD8

NORMAL = 1
NEXT = 2
WITH_DATABLOCK = 2


class DataAccessResult(IntEnum):
    """[1]_ 9.5 Data-Access-Result."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(IntEnum):
    """[1]_ 9.5 Action-Result."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


class StateError(IntEnum):
    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2


class ServiceError(IntEnum):
    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    INVOCATION_COUNTER_ERROR = 6


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    """Cosem-Attribute-Descriptor (also the method descriptor: ``index`` is the method)."""

    class_id: int
    instance: ObisCode
    index: int

    def encode(self) -> bytes:
        return (
            self.class_id.to_bytes(2, "big")
            + self.instance.to_bytes()
            + (self.index & 0xFF).to_bytes(1, "big")
        )


@dataclass(frozen=True, slots=True)
class AccessSelection:
    """Selective access: a selector (1 by range, 2 by entry for profiles) and parameters."""

    selector: int
    parameters: Data


@dataclass(frozen=True, slots=True)
class GetRequest:
    invoke_id: int
    descriptor: AttributeDescriptor
    access: AccessSelection | None = None


@dataclass(frozen=True, slots=True)
class GetNextRequest:
    invoke_id: int
    block_number: int


@dataclass(frozen=True, slots=True)
class SetRequest:
    invoke_id: int
    descriptor: AttributeDescriptor
    value: Data
    access: AccessSelection | None = None


@dataclass(frozen=True, slots=True)
class ActionRequest:
    invoke_id: int
    descriptor: AttributeDescriptor
    parameters: Data | None = None


Request = GetRequest | GetNextRequest | SetRequest | ActionRequest


class _Reader:
    """A cursor over an APDU that names what is missing when it runs out."""

    def __init__(self, octets: bytes, field: str) -> None:
        self.octets = octets
        self.offset = 0
        self.field = field

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.octets):
            raise ProtocolError(f"{self.field}.{what}", self.offset, "truncated APDU")
        chunk = self.octets[self.offset : end]
        self.offset = end
        return chunk

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def data(self, what: str) -> Data:
        value, self.offset = decode_data(self.octets, self.offset, f"{self.field}.{what}")
        return value

    def descriptor(self) -> AttributeDescriptor:
        class_id = self.uint(2, "class_id")
        instance = self.take(6, "instance_id")
        index = self.octet("attribute_id")
        if index > 127:
            index -= 256  # Integer8
        return AttributeDescriptor(class_id, ObisCode(*instance), index)

    def access(self) -> AccessSelection | None:
        if not self.octet("access_selection"):
            return None
        selector = self.octet("access_selector")
        return AccessSelection(selector, self.data("access_parameters"))

    def end(self) -> None:
        if self.offset != len(self.octets):
            raise ProtocolError(self.field, len(self.octets) - self.offset, "trailing octets")


def decode_request(apdu: bytes) -> Request:
    """Decode a GET, SET or ACTION request (normal, or get-next).

    Raises
    ------
    ProtocolError
        Unknown tag or type, truncation, trailing octets or malformed data; the server
        answers it with an exception response.
    """
    if len(apdu) < 3:
        raise ProtocolError("apdu", apdu.hex(), "truncated request")
    tag, kind = apdu[0], apdu[1]
    names = {GET_REQUEST: "get_request", SET_REQUEST: "set_request", ACTION_REQUEST: "action"}
    if tag not in names:
        raise ProtocolError("apdu.tag", tag, "a GET, SET or ACTION request")
    reader = _Reader(apdu, names[tag])
    reader.offset = 2
    invoke_id = reader.octet("invoke_id_and_priority")
    request: Request
    if tag == GET_REQUEST and kind == NORMAL:
        request = GetRequest(invoke_id, reader.descriptor(), reader.access())
    elif tag == GET_REQUEST and kind == NEXT:
        request = GetNextRequest(invoke_id, reader.uint(4, "block_number"))
    elif tag == SET_REQUEST and kind == NORMAL:
        descriptor = reader.descriptor()
        access = reader.access()
        request = SetRequest(invoke_id, descriptor, reader.data("value"), access)
    elif tag == ACTION_REQUEST and kind == NORMAL:
        descriptor = reader.descriptor()
        parameters = reader.data("parameters") if reader.octet("parameters_present") else None
        request = ActionRequest(invoke_id, descriptor, parameters)
    else:
        raise ProtocolError(f"{names[tag]}.type", kind, "this request type is not supported")
    reader.end()
    return request


# ---------------------------------------------------------------------- encoding requests


def encode_get_request(request: GetRequest) -> bytes:
    out = bytes((GET_REQUEST, NORMAL, request.invoke_id)) + request.descriptor.encode()
    return out + _encode_access(request.access)


def encode_get_next(invoke_id: int, block_number: int) -> bytes:
    return bytes((GET_REQUEST, NEXT, invoke_id)) + block_number.to_bytes(4, "big")


def encode_set_request(request: SetRequest) -> bytes:
    out = bytes((SET_REQUEST, NORMAL, request.invoke_id)) + request.descriptor.encode()
    return out + _encode_access(request.access) + encode_data(request.value)


def encode_action_request(request: ActionRequest) -> bytes:
    out = bytes((ACTION_REQUEST, NORMAL, request.invoke_id)) + request.descriptor.encode()
    if request.parameters is None:
        return out + b"\x00"
    return out + b"\x01" + encode_data(request.parameters)


def _encode_access(access: AccessSelection | None) -> bytes:
    if access is None:
        return b"\x00"
    return bytes((0x01, access.selector)) + encode_data(access.parameters)


# ---------------------------------------------------------------------- responses


def get_response_data(invoke_id: int, encoded_value: bytes) -> bytes:
    """GET-Response-Normal with a value (already A-XDR encoded)."""
    return bytes((GET_RESPONSE, NORMAL, invoke_id, 0x00)) + encoded_value


def get_response_error(invoke_id: int, result: DataAccessResult) -> bytes:
    return bytes((GET_RESPONSE, NORMAL, invoke_id, 0x01, result))


def get_response_block(invoke_id: int, last: bool, block_number: int, raw: bytes) -> bytes:
    """GET-Response-With-Datablock carrying ``raw`` (a slice of the encoded value)."""
    return (
        bytes((GET_RESPONSE, WITH_DATABLOCK, invoke_id, 0xFF if last else 0x00))
        + block_number.to_bytes(4, "big")
        + b"\x00"
        + encode_length(len(raw))
        + raw
    )


def get_response_block_error(invoke_id: int, block_number: int, result: DataAccessResult) -> bytes:
    return (
        bytes((GET_RESPONSE, WITH_DATABLOCK, invoke_id, 0xFF))
        + block_number.to_bytes(4, "big")
        + bytes((0x01, result))
    )


def set_response(invoke_id: int, result: DataAccessResult) -> bytes:
    return bytes((SET_RESPONSE, NORMAL, invoke_id, result))


def action_response(
    invoke_id: int, result: ActionResult, return_value: bytes | None = None
) -> bytes:
    """ACTION-Response-Normal; ``return_value`` is an encoded ``Data`` (optional)."""
    out = bytes((ACTION_RESPONSE, NORMAL, invoke_id, result))
    if return_value is None:
        return out + b"\x00"
    return out + b"\x01\x00" + return_value


def exception_response(state_error: StateError, service_error: ServiceError) -> bytes:
    """EXCEPTION-Response [1]_ 9.3.10."""
    return bytes((EXCEPTION_RESPONSE, state_error, service_error))


# ---------------------------------------------------------------------- decoding responses


@dataclass(frozen=True, slots=True)
class GetResult:
    """A decoded GET response: a value, an error, or one block of a long value."""

    invoke_id: int
    value: Data | None = None
    error: DataAccessResult | None = None
    block_number: int | None = None
    last_block: bool = True
    raw: bytes = b""


def decode_get_response(apdu: bytes) -> GetResult:
    reader = _Reader(apdu, "get_response")
    if reader.octet("tag") != GET_RESPONSE:
        raise ProtocolError("get_response.tag", apdu[:1].hex(), "a GET-Response (0xC4)")
    kind = reader.octet("type")
    invoke_id = reader.octet("invoke_id_and_priority")
    if kind == NORMAL:
        if reader.octet("result"):
            return GetResult(invoke_id, error=DataAccessResult(reader.octet("data_access_result")))
        value = reader.data("data")
        reader.end()
        return GetResult(invoke_id, value=value)
    if kind == WITH_DATABLOCK:
        last = reader.octet("last_block") != 0
        block = reader.uint(4, "block_number")
        if reader.octet("result"):
            error = DataAccessResult(reader.octet("data_access_result"))
            return GetResult(invoke_id, error=error, block_number=block)
        size, reader.offset = decode_length(apdu, reader.offset, "get_response.raw_data")
        raw = reader.take(size, "raw_data")
        reader.end()
        return GetResult(invoke_id, block_number=block, last_block=last, raw=raw)
    raise ProtocolError("get_response.type", kind, "normal or with-datablock")


def decode_set_response(apdu: bytes) -> DataAccessResult:
    if len(apdu) != 4 or apdu[0] != SET_RESPONSE or apdu[1] != NORMAL:
        raise ProtocolError("set_response", apdu.hex(), "a SET-Response-Normal")
    return DataAccessResult(apdu[3])


def decode_action_response(apdu: bytes) -> tuple[ActionResult, Data | None, int]:
    """Return (result, returned value, invoke id)."""
    reader = _Reader(apdu, "action_response")
    if reader.octet("tag") != ACTION_RESPONSE or reader.octet("type") != NORMAL:
        raise ProtocolError("action_response", apdu[:2].hex(), "an ACTION-Response-Normal")
    invoke_id = reader.octet("invoke_id_and_priority")
    result = ActionResult(reader.octet("result"))
    value = None
    if reader.offset < len(apdu) and reader.octet("return_parameters"):
        if reader.octet("get_data_result") == 0:
            value = reader.data("data")
        else:
            reader.octet("data_access_result")
    reader.end()
    return result, value, invoke_id
