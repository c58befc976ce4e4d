"""Association control (ACSE): AARQ/AARE, RLRQ/RLRE and the xDLMS initiate PDUs.

An application association opens with an AARQ from the client and an AARE from the server
(BER-encoded, ISO/IEC 8650 as profiled by the Green Book), each carrying an xDLMS
InitiateRequest/InitiateResponse (A-XDR) in its user-information field, ciphered when the
application context says so.

Authentication (Green Book 9.2.7.4):

* lowest level (mechanism 0): none;
* low level (LLS, mechanism 1): the password in ``calling-authentication-value``;
* high level (HLS, mechanisms 2-7): four passes. (1) AARQ with the client's challenge
  CtoS; (2) AARE with the server's challenge StoC and diagnostic *authentication
  required*; (3) the client invokes method 1 ``reply_to_HLS_authentication`` of the
  current association object with ``f(StoC)``; (4) the server checks it and returns
  ``f(CtoS)``. Mechanism 5 (GMAC) uses ``f(x) = SC || IC || GMAC(SC || AK || x)``.

References
----------
.. [1] IEC 62056-5-3:2017 (DLMS UA Green Book ed. 8), 9.3.2 "The ACSE services and APDUs",
   9.4.2 "Application context and authentication mechanism names", 9.5 the xDLMS ASN.1
   module (InitiateRequest, InitiateResponse, Conformance).
.. [2] ISO/IEC 8650-1 ACSE; ITU-T X.690 BER.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from meterstack.protocols.errors import ProtocolError

# {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8)}
_DLMS_UA_OID = bytes.fromhex("6085740508")
_CONTEXT_PREFIX = _DLMS_UA_OID + b"\x01"
_MECHANISM_PREFIX = _DLMS_UA_OID + b"\x02"

AARQ_TAG = 0x60
AARE_TAG = 0x61
RLRQ_TAG = 0x62
RLRE_TAG = 0x63
INITIATE_REQUEST_TAG = 0x01
INITIATE_RESPONSE_TAG = 0x08
CONFIRMED_SERVICE_ERROR_TAG = 0x0E
DLMS_VERSION = 6
#: vaa-name of logical-name referencing [1]_ 9.5.
VAA_NAME_LN = 0x0007


class ApplicationContext(IntEnum):
    """Application context names [1]_ 9.4.2.2.2 (the last arc of the OID)."""

    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_WITH_CIPHERING = 3
    SHORT_NAME_WITH_CIPHERING = 4


class Mechanism(IntEnum):
    """Authentication mechanism names [1]_ 9.4.2.2.3."""

    LOWEST = 0
    LOW = 1
    HIGH = 2
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7


class AssociationResult(IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseDiagnostic(IntEnum):
    """acse-service-user diagnostics [1]_ 9.3.2 (Table 72)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


class Conformance(IntFlag):
    """The xDLMS conformance block (BIT STRING SIZE(24); bit 0 is the most significant)."""

    GENERAL_PROTECTION = 1 << (23 - 1)
    GENERAL_BLOCK_TRANSFER = 1 << (23 - 2)
    DELTA_VALUE_ENCODING = 1 << (23 - 6)
    ATTRIBUTE0_SUPPORTED_WITH_SET = 1 << (23 - 8)
    PRIORITY_MGMT_SUPPORTED = 1 << (23 - 9)
    ATTRIBUTE0_SUPPORTED_WITH_GET = 1 << (23 - 10)
    BLOCK_TRANSFER_WITH_GET_OR_READ = 1 << (23 - 11)
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 1 << (23 - 12)
    BLOCK_TRANSFER_WITH_ACTION = 1 << (23 - 13)
    MULTIPLE_REFERENCES = 1 << (23 - 14)
    INFORMATION_REPORT = 1 << (23 - 15)
    DATA_NOTIFICATION = 1 << (23 - 16)
    ACCESS = 1 << (23 - 17)
    PARAMETERIZED_ACCESS = 1 << (23 - 18)
    GET = 1 << (23 - 19)
    SET = 1 << (23 - 20)
    SELECTIVE_ACCESS = 1 << (23 - 21)
    EVENT_NOTIFICATION = 1 << (23 - 22)
    ACTION = 1 << (23 - 23)


# ---------------------------------------------------------------------- BER


def _ber_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _ber_length(len(content)) + content


def _read_tlv(buffer: bytes, offset: int, field: str) -> tuple[int, bytes, int]:
    if offset + 2 > len(buffer):
        raise ProtocolError(field, offset, "truncated BER element")
    tag = buffer[offset]
    first = buffer[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or offset + count > len(buffer):
            raise ProtocolError(field, first, "a BER definite length of 1 to 3 octets")
        length = int.from_bytes(buffer[offset : offset + count], "big")
        offset += count
    if offset + length > len(buffer):
        raise ProtocolError(field, length, f"truncated: {len(buffer) - offset} octets left")
    return tag, buffer[offset : offset + length], offset + length


def _elements(content: bytes, field: str) -> dict[int, bytes]:
    elements: dict[int, bytes] = {}
    offset = 0
    while offset < len(content):
        tag, value, offset = _read_tlv(content, offset, field)
        elements[tag] = value
    return elements


def _inner(value: bytes, tag: int, field: str) -> bytes:
    inner_tag, inner, end = _read_tlv(value, 0, field)
    if inner_tag != tag or end != len(value):
        raise ProtocolError(field, value.hex(), f"expected one element with tag 0x{tag:02X}")
    return inner


def _oid_arc(value: bytes, prefix: bytes, field: str) -> int:
    oid = _inner(value, 0x06, field)
    if len(oid) != len(prefix) + 1 or not oid.startswith(prefix):
        raise ProtocolError(field, oid.hex(), "not a DLMS UA name")
    return oid[-1]


def _int_element(value: bytes, field: str) -> int:
    number = _inner(value, 0x02, field)
    if not 1 <= len(number) <= 2:
        raise ProtocolError(field, number.hex(), "a small INTEGER")
    return int.from_bytes(number, "big")


# ---------------------------------------------------------------------- xDLMS initiate


@dataclass(frozen=True, slots=True)
class InitiateRequest:
    """xDLMS InitiateRequest [1]_ 9.5."""

    proposed_conformance: int
    client_max_receive_pdu_size: int
    dlms_version: int = DLMS_VERSION
    dedicated_key: bytes | None = None
    response_allowed: bool = True

    def encode(self) -> bytes:
        out = bytearray((INITIATE_REQUEST_TAG,))
        if self.dedicated_key is None:
            out.append(0x00)
        else:
            out += bytes((0x01, len(self.dedicated_key))) + self.dedicated_key
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        out.append(0x00)  # proposed-quality-of-service absent
        out.append(self.dlms_version)
        out += b"\x5f\x1f\x04\x00" + self.proposed_conformance.to_bytes(3, "big")
        out += self.client_max_receive_pdu_size.to_bytes(2, "big")
        return bytes(out)

    @classmethod
    def decode(cls, octets: bytes) -> InitiateRequest:
        field = "initiate_request"
        try:
            if octets[0] != INITIATE_REQUEST_TAG:
                raise ProtocolError(field, octets[0], "an InitiateRequest starts with 0x01")
            offset = 1
            dedicated_key = None
            if octets[offset]:
                size = octets[offset + 1]
                dedicated_key = bytes(octets[offset + 2 : offset + 2 + size])
                if len(dedicated_key) != size:
                    raise ProtocolError(f"{field}.dedicated_key", size, "truncated key")
                offset += 2 + size
            else:
                offset += 1
            response_allowed = True
            if octets[offset]:
                response_allowed = octets[offset + 1] != 0
                offset += 2
            else:
                offset += 1
            offset += 2 if octets[offset] else 1  # proposed-quality-of-service
            version = octets[offset]
            offset += 1
            if octets[offset : offset + 4] != b"\x5f\x1f\x04\x00":
                raise ProtocolError(
                    f"{field}.proposed_conformance",
                    octets[offset : offset + 4].hex(),
                    "the conformance block is tagged 5F 1F 04 00",
                )
            conformance = int.from_bytes(octets[offset + 4 : offset + 7], "big")
            pdu = int.from_bytes(octets[offset + 7 : offset + 9], "big")
            if offset + 9 != len(octets):
                raise ProtocolError(field, len(octets), "wrong length for an InitiateRequest")
        except IndexError:
            raise ProtocolError(field, octets.hex(), "truncated InitiateRequest") from None
        return cls(conformance, pdu, version, dedicated_key, response_allowed)


@dataclass(frozen=True, slots=True)
class InitiateResponse:
    """xDLMS InitiateResponse [1]_ 9.5."""

    negotiated_conformance: int
    server_max_receive_pdu_size: int
    dlms_version: int = DLMS_VERSION
    vaa_name: int = VAA_NAME_LN

    def encode(self) -> bytes:
        return (
            bytes((INITIATE_RESPONSE_TAG, 0x00, self.dlms_version))
            + b"\x5f\x1f\x04\x00"
            + self.negotiated_conformance.to_bytes(3, "big")
            + self.server_max_receive_pdu_size.to_bytes(2, "big")
            + self.vaa_name.to_bytes(2, "big")
        )

    @classmethod
    def decode(cls, octets: bytes) -> InitiateResponse:
        field = "initiate_response"
        if not octets or octets[0] != INITIATE_RESPONSE_TAG:
            raise ProtocolError(field, octets.hex(), "an InitiateResponse starts with 0x08")
        offset = 2 if len(octets) > 1 and octets[1] == 0 else 3
        if len(octets) != offset + 12 or octets[offset + 1 : offset + 5] != b"\x5f\x1f\x04\x00":
            raise ProtocolError(field, octets.hex(), "malformed InitiateResponse")
        return cls(
            int.from_bytes(octets[offset + 5 : offset + 8], "big"),
            int.from_bytes(octets[offset + 8 : offset + 10], "big"),
            octets[offset],
            int.from_bytes(octets[offset + 10 : offset + 12], "big"),
        )


def initiate_error(diagnostic: int = 1) -> bytes:
    """ConfirmedServiceError ``initiateError`` with service-error *initiate* [1]_ 9.5.

    ``diagnostic``: 0 other, 1 dlms-version-too-low, 2 incompatible-conformance,
    3 pdu-size-too-short, 4 refused-by-the-VDE-handler.
    """
    return bytes((CONFIRMED_SERVICE_ERROR_TAG, 0x01, 0x06, diagnostic))


# ---------------------------------------------------------------------- AARQ / AARE


@dataclass(frozen=True, slots=True)
class Aarq:
    """The A-ASSOCIATE request [1]_ 9.3.2."""

    application_context: ApplicationContext
    user_information: bytes
    calling_ap_title: bytes | None = None
    mechanism: Mechanism | None = None
    calling_authentication_value: bytes | None = None

    def encode(self) -> bytes:
        content = _tlv(0xA1, _tlv(0x06, _CONTEXT_PREFIX + bytes((self.application_context,))))
        if self.calling_ap_title is not None:
            content += _tlv(0xA6, _tlv(0x04, self.calling_ap_title))
        if self.mechanism is not None and self.mechanism != Mechanism.LOWEST:
            content += _tlv(0x8A, b"\x07\x80")
            content += _tlv(0x8B, _MECHANISM_PREFIX + bytes((self.mechanism,)))
            if self.calling_authentication_value is not None:
                content += _tlv(0xAC, _tlv(0x80, self.calling_authentication_value))
        content += _tlv(0xBE, _tlv(0x04, self.user_information))
        return _tlv(AARQ_TAG, content)

    @classmethod
    def decode(cls, octets: bytes) -> Aarq:
        tag, content, end = _read_tlv(octets, 0, "aarq")
        if tag != AARQ_TAG or end != len(octets):
            raise ProtocolError("aarq", octets[:1].hex(), "an AARQ is one element tagged 0x60")
        elements = _elements(content, "aarq")
        if 0xA1 not in elements:
            raise ProtocolError("aarq.application_context_name", None, "missing")
        arc = _oid_arc(elements[0xA1], _CONTEXT_PREFIX, "aarq.application_context_name")
        try:
            context = ApplicationContext(arc)
        except ValueError:
            raise ProtocolError("aarq.application_context_name", arc, "unknown context") from None
        title = _inner(elements[0xA6], 0x04, "aarq.calling_ap_title") if 0xA6 in elements else None
        mechanism = None
        if 0x8B in elements:
            value = elements[0x8B]
            if len(value) != len(_MECHANISM_PREFIX) + 1 or not value.startswith(_MECHANISM_PREFIX):
                raise ProtocolError("aarq.mechanism_name", value.hex(), "not a DLMS UA mechanism")
            try:
                mechanism = Mechanism(value[-1])
            except ValueError:
                raise ProtocolError("aarq.mechanism_name", value[-1], "unknown mechanism") from None
        authentication = (
            _inner(elements[0xAC], 0x80, "aarq.calling_authentication_value")
            if 0xAC in elements
            else None
        )
        if 0xBE not in elements:
            raise ProtocolError("aarq.user_information", None, "missing xDLMS InitiateRequest")
        user = _inner(elements[0xBE], 0x04, "aarq.user_information")
        return cls(context, user, title, mechanism, authentication)


@dataclass(frozen=True, slots=True)
class Aare:
    """The A-ASSOCIATE response [1]_ 9.3.2."""

    application_context: ApplicationContext
    result: AssociationResult
    diagnostic: int
    user_information: bytes | None
    responding_ap_title: bytes | None = None
    mechanism: Mechanism | None = None
    responding_authentication_value: bytes | None = None
    diagnostic_source: int = 1  # 1 acse-service-user, 2 acse-service-provider

    def encode(self) -> bytes:
        content = _tlv(0xA1, _tlv(0x06, _CONTEXT_PREFIX + bytes((self.application_context,))))
        content += _tlv(0xA2, _tlv(0x02, bytes((self.result,))))
        source_tag = 0xA1 if self.diagnostic_source == 1 else 0xA2
        content += _tlv(0xA3, _tlv(source_tag, _tlv(0x02, bytes((self.diagnostic,)))))
        if self.responding_ap_title is not None:
            content += _tlv(0xA4, _tlv(0x04, self.responding_ap_title))
        if self.mechanism is not None and self.mechanism != Mechanism.LOWEST:
            content += _tlv(0x88, b"\x07\x80")
            content += _tlv(0x89, _MECHANISM_PREFIX + bytes((self.mechanism,)))
            if self.responding_authentication_value is not None:
                content += _tlv(0xAA, _tlv(0x80, self.responding_authentication_value))
        if self.user_information is not None:
            content += _tlv(0xBE, _tlv(0x04, self.user_information))
        return _tlv(AARE_TAG, content)

    @classmethod
    def decode(cls, octets: bytes) -> Aare:
        tag, content, end = _read_tlv(octets, 0, "aare")
        if tag != AARE_TAG or end != len(octets):
            raise ProtocolError("aare", octets[:1].hex(), "an AARE is one element tagged 0x61")
        elements = _elements(content, "aare")
        for needed in (0xA1, 0xA2, 0xA3):
            if needed not in elements:
                raise ProtocolError("aare", f"0x{needed:02X}", "a mandatory element is missing")
        context = ApplicationContext(
            _oid_arc(elements[0xA1], _CONTEXT_PREFIX, "aare.application_context_name")
        )
        result = AssociationResult(_int_element(elements[0xA2], "aare.result"))
        source_tag, source, _ = _read_tlv(elements[0xA3], 0, "aare.result_source_diagnostic")
        diagnostic = _int_element(source, "aare.result_source_diagnostic")
        title = (
            _inner(elements[0xA4], 0x04, "aare.responding_ap_title") if 0xA4 in elements else None
        )
        mechanism = Mechanism(elements[0x89][-1]) if 0x89 in elements else None
        authentication = (
            _inner(elements[0xAA], 0x80, "aare.responding_authentication_value")
            if 0xAA in elements
            else None
        )
        user = _inner(elements[0xBE], 0x04, "aare.user_information") if 0xBE in elements else None
        return cls(
            context,
            result,
            diagnostic,
            user,
            title,
            mechanism,
            authentication,
            1 if source_tag == 0xA1 else 2,
        )


def release_request() -> bytes:
    """RLRQ with reason *normal* [1]_ 9.3.3."""
    return _tlv(RLRQ_TAG, _tlv(0x80, b"\x00"))


def release_response() -> bytes:
    """RLRE with reason *normal*."""
    return _tlv(RLRE_TAG, _tlv(0x80, b"\x00"))
