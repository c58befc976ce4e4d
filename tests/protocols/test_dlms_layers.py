"""The DLMS layers alone, bytes in and bytes out, against gurux-dlms and the standards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gurux_dlms import GXByteBuffer, GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.enums import DataType as GuruxType
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.internal._GXCommon import _GXCommon
from hypothesis import given
from hypothesis import strategies as st

from meterstack.protocols.dlms.acse import Aarq, ApplicationContext, InitiateRequest, Mechanism
from meterstack.protocols.dlms.axdr import (
    Data,
    DataType,
    decode_data,
    decode_data_exact,
    decode_date_time,
    encode_data,
    encode_date_time,
    encode_length,
)
from meterstack.protocols.dlms.security import (
    ReplayGuard,
    SecurityKeys,
    gmac_authentication,
    protect,
    unprotect,
)
from meterstack.protocols.dlms.wrapper import WrapperFramer, decode_frame, encode_frame
from meterstack.protocols.errors import ProtocolError, SecurityError

_GURUX_TYPES = {
    DataType.INTEGER: GuruxType.INT8,
    DataType.LONG: GuruxType.INT16,
    DataType.DOUBLE_LONG: GuruxType.INT32,
    DataType.LONG64: GuruxType.INT64,
    DataType.UNSIGNED: GuruxType.UINT8,
    DataType.LONG_UNSIGNED: GuruxType.UINT16,
    DataType.DOUBLE_LONG_UNSIGNED: GuruxType.UINT32,
    DataType.LONG64_UNSIGNED: GuruxType.UINT64,
    DataType.ENUM: GuruxType.ENUM,
}
_RANGES = {
    DataType.INTEGER: (-128, 127),
    DataType.LONG: (-(2**15), 2**15 - 1),
    DataType.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    DataType.LONG64: (-(2**63), 2**63 - 1),
    DataType.UNSIGNED: (0, 255),
    DataType.LONG_UNSIGNED: (0, 2**16 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    DataType.LONG64_UNSIGNED: (0, 2**64 - 1),
    DataType.ENUM: (0, 255),
}


def gurux_encode(kind: int, value: object) -> bytes:
    buffer = GXByteBuffer()
    _GXCommon.setData(GXDLMSSettings(False, None), buffer, kind, value)
    return bytes(buffer.array())


@st.composite
def typed_integers(draw: st.DrawFn) -> tuple[DataType, int]:
    kind = draw(st.sampled_from(sorted(_RANGES)))
    low, high = _RANGES[kind]
    return kind, draw(st.integers(low, high))


@given(typed_integers())
def test_integers_encode_as_gurux_does(item: tuple[DataType, int]) -> None:
    kind, value = item
    ours = encode_data(Data(kind, value))
    assert ours == gurux_encode(_GURUX_TYPES[kind], value)
    assert decode_data_exact(ours) == Data(kind, value)


@given(st.binary(max_size=400))
def test_octet_strings_encode_as_gurux_does(value: bytes) -> None:
    ours = encode_data(Data.octet_string(value))
    assert ours == gurux_encode(GuruxType.OCTET_STRING, bytearray(value))
    assert decode_data_exact(ours).value == value


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
def test_visible_strings_encode_as_gurux_does(value: str) -> None:
    ours = encode_data(Data.visible_string(value))
    assert ours == gurux_encode(GuruxType.STRING, value)


def test_blue_book_examples() -> None:
    """A-XDR examples: a structure {long-unsigned 3, octet-string(6)} and a long length."""
    structure = Data.structure(
        Data.long_unsigned(3), Data.octet_string(bytes([1, 0, 1, 8, 0, 255]))
    )
    assert encode_data(structure).hex() == "0202120003" + "0906" + "0100010800ff"
    assert encode_length(127) == b"\x7f"
    assert encode_length(128) == b"\x81\x80"
    assert encode_length(300) == b"\x82\x01\x2c"
    assert encode_data(Data.boolean(True)) == b"\x03\xff"


@given(
    st.recursive(
        st.one_of(
            st.integers(0, 2**32 - 1).map(Data.double_long_unsigned),
            st.integers(-128, 127).map(Data.integer),
            st.binary(max_size=20).map(Data.octet_string),
            st.booleans().map(Data.boolean),
            st.just(Data.null()),
            st.text(alphabet="01", max_size=40).map(lambda b: Data(DataType.BIT_STRING, b)),
        ),
        lambda children: st.lists(children, max_size=5).map(
            lambda items: Data(DataType.STRUCTURE, tuple(items))
        ),
        max_leaves=30,
    )
)
def test_round_trip(value: Data) -> None:
    assert decode_data_exact(encode_data(value)) == value


@pytest.mark.parametrize(
    ("octets", "field"),
    [
        (b"", "data"),
        (b"\x06\x00\x00", "data"),  # truncated double-long-unsigned
        (b"\x09\x05abc", "data"),  # octet-string shorter than its length
        (b"\x63", "data"),  # unknown tag
        (b"\x02\x05\x11", "data"),  # structure with more elements than octets
        (b"\x13\x00", "data"),  # compact-array refused
        (b"\x09\x85\x01\x02\x03\x04\x05", "data"),  # 5-octet length
    ],
)
def test_malformed_data_names_the_field(octets: bytes, field: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_data(octets)
    assert raised.value.field.startswith(field)


def test_deep_nesting_refused() -> None:
    octets = b"\x02\x01" * 40 + b"\x00"
    with pytest.raises(ProtocolError, match="nesting"):
        decode_data(octets)


def test_out_of_range_integers_refused_not_wrapped() -> None:
    with pytest.raises(ProtocolError, match="0 to 65535"):
        Data.long_unsigned(70000)
    with pytest.raises(ProtocolError):
        Data.unsigned(-1)


def test_date_time_is_utc_with_zero_deviation() -> None:
    moment = datetime(2024, 3, 5, 13, 45, 30, tzinfo=UTC)
    raw = encode_date_time(moment)
    # year 2024 = 07E8, March 5th, a Tuesday (2), 13:45:30.00, deviation 0, status 0
    assert raw.hex() == "07e8030502" + "0d2d1e00" + "0000" + "00"
    assert decode_date_time(raw) == moment
    # deviation -60: local 14:45 is 13:45 UTC (UTC = local + deviation)
    local = bytes.fromhex("07e80305020e2d1e00ffc400")
    assert decode_date_time(local) == moment
    with pytest.raises(ProtocolError):
        decode_date_time(bytes.fromhex("ffffffffffffffffff800000"))


def test_wrapper_frames_split_anywhere() -> None:
    frames = encode_frame(16, 1, b"\x60\x00") + encode_frame(16, 1, b"\xc0\x01\xc1")
    framer = WrapperFramer()
    got = []
    for octet in frames:
        got += framer.feed(bytes([octet]))
    assert [(f.source, f.destination, f.apdu) for f in got] == [
        (16, 1, b"\x60\x00"),
        (16, 1, b"\xc0\x01\xc1"),
    ]
    assert encode_frame(16, 1, b"\xaa").hex() == "0001" + "0010" + "0001" + "0001" + "aa"


def test_wrapper_refuses_a_wrong_version() -> None:
    with pytest.raises(ProtocolError, match="version"):
        WrapperFramer().feed(bytes.fromhex("0002001000010001aa"))
    with pytest.raises(ProtocolError):
        decode_frame(bytes.fromhex("00010010000100"))


@given(st.binary(min_size=1, max_size=200), st.integers(0, 2**32 - 1))
def test_gcm_is_the_green_book_composition(plain: bytes, ic: int) -> None:
    """SC 0x30: GCM over the APDU with AAD = SC || AK, IV = title || IC, 12-octet tag;
    SC 0x10: GCM over nothing with AAD = SC || AK || APDU (computed with AESGCM)."""
    keys = SecurityKeys(bytes(range(16)), bytes(range(0xD0, 0xE0)))
    title = b"MMM00001"
    iv = title + ic.to_bytes(4, "big")
    sealed = AESGCM(keys.block_cipher_key).encrypt(iv, plain, b"\x30" + keys.authentication_key)
    expected = b"\x30" + ic.to_bytes(4, "big") + sealed[:-4]
    assert protect(0x30, title, ic, keys, plain) == expected
    tag = AESGCM(keys.block_cipher_key).encrypt(iv, b"", b"\x10" + keys.authentication_key + plain)
    assert (
        protect(0x10, title, ic, keys, plain) == b"\x10" + ic.to_bytes(4, "big") + plain + tag[:12]
    )
    assert unprotect(expected, title, keys) == (0x30, ic, plain)


def test_gcm_refuses_a_wrong_key_and_an_altered_octet() -> None:
    keys = SecurityKeys(bytes(range(16)), bytes(range(16, 32)))
    protected = protect(0x30, b"ABCDEFGH", 7, keys, b"\xc0\x01\xc1")
    with pytest.raises(SecurityError):
        unprotect(protected, b"ABCDEFGH", SecurityKeys(bytes(16), bytes(range(16, 32))))
    altered = bytearray(protected)
    altered[6] ^= 1
    with pytest.raises(SecurityError):
        unprotect(bytes(altered), b"ABCDEFGH", keys)
    with pytest.raises(ProtocolError):
        unprotect(protected[:3], b"ABCDEFGH", keys)


def test_hls_gmac_matches_gurux() -> None:
    from gurux_dlms.GXCiphering import GXCiphering

    keys = SecurityKeys(bytes(range(16)), bytes(range(0xD0, 0xE0)))
    cipher = GXCiphering(bytearray(b"HEADEND1"))
    cipher.blockCipherKey = bytearray(keys.block_cipher_key)
    cipher.authenticationKey = bytearray(keys.authentication_key)
    cipher.invocationCounter = 42
    challenge = bytes(range(16))
    assert gmac_authentication(b"HEADEND1", 42, keys, challenge) == bytes(
        cipher.generateGmacPassword(bytearray(challenge))
    )


def test_replay_guard_accepts_only_increasing_counters() -> None:
    guard = ReplayGuard()
    guard.check(b"A" * 8, 5)
    guard.check(b"A" * 8, 6)
    with pytest.raises(SecurityError, match="replay"):
        guard.check(b"A" * 8, 6)
    guard.check(b"B" * 8, 1)


def test_aarq_from_gurux_decodes() -> None:
    client = GXDLMSClient(True, 17, 1, Authentication.LOW, "secret", InterfaceType.WRAPPER)
    frame = bytes(client.aarqRequest()[0])
    aarq = Aarq.decode(decode_frame(frame).apdu)
    assert aarq.application_context == ApplicationContext.LOGICAL_NAME
    assert aarq.mechanism == Mechanism.LOW
    assert aarq.calling_authentication_value == b"secret"
    initiate = InitiateRequest.decode(aarq.user_information)
    assert initiate.dlms_version == 6
    # and ours encodes back to the same octets gurux sent
    assert (
        Aarq(aarq.application_context, initiate.encode(), None, Mechanism.LOW, b"secret").encode()
        == decode_frame(frame).apdu
    )


@pytest.mark.parametrize(
    "octets",
    [b"\x60", b"\x60\x05\xa1\x03\x06\x01\x00", b"\x61\x00", b"\x60\x02\xbe\x00"],
)
def test_malformed_aarq_refused(octets: bytes) -> None:
    with pytest.raises(ProtocolError):
        Aarq.decode(octets)
