"""Envelope, counters and schema: bytes in, bytes out."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from meterstack.core.obis import ObisCode
from meterstack.link import (
    AlarmBody,
    CommandBody,
    EnvelopeError,
    EventBlock,
    EventRow,
    InvocationCounter,
    MemoryCounterStore,
    Message,
    MessageKind,
    ProfileBlock,
    ProfileRow,
    RegisterRead,
    RejectReason,
    ReplayWindow,
    SchemaError,
    SecuritySuite,
    SessionKeys,
    decode,
    encode,
    open_frame,
    read_header,
    seal,
)
from meterstack.link.errors import CounterExhaustedError
from meterstack.link.keys import KeyRing, generate_session_keys
from meterstack.link.topics import parse

TITLE = b"MSM\x01\x02\x03\x04\x05"


@pytest.mark.parametrize("suite", list(SecuritySuite))
def test_every_altered_byte_is_refused(suite: SecuritySuite) -> None:
    keys = generate_session_keys(suite, 1)
    signer = ec.generate_private_key(ec.SECP384R1())
    frame = seal(b"reading", keys, system_title=TITLE, invocation_counter=7, signing_key=signer)
    assert open_frame(frame, keys, verify_key=signer.public_key())[1] == b"reading"
    for index in range(len(frame)):
        altered = bytearray(frame)
        altered[index] ^= 0x80
        with pytest.raises(EnvelopeError):
            open_frame(bytes(altered), keys, verify_key=signer.public_key())


def test_reasons_name_what_was_wrong() -> None:
    keys = generate_session_keys(SecuritySuite.AES_128_GCM, 1)
    frame = seal(b"x", keys, system_title=TITLE, invocation_counter=1)
    other = generate_session_keys(SecuritySuite.AES_128_GCM, 1)
    with pytest.raises(EnvelopeError) as wrong:
        open_frame(frame, other)
    assert wrong.value.reason is RejectReason.AUTHENTICATION_FAILED
    with pytest.raises(EnvelopeError) as generation:
        open_frame(frame, generate_session_keys(SecuritySuite.AES_128_GCM, 2))
    assert generation.value.reason is RejectReason.UNKNOWN_KEY
    with pytest.raises(EnvelopeError) as suite:
        open_frame(frame, generate_session_keys(SecuritySuite.SM4_GCM, 1))
    assert suite.value.reason is RejectReason.SUITE_MISMATCH
    for short in (b"", frame[:20], b"\x02" + frame[1:]):
        with pytest.raises(EnvelopeError) as malformed:
            read_header(short)
        assert malformed.value.reason is RejectReason.MALFORMED
    signed = generate_session_keys(SecuritySuite.AES_256_GCM_ECDSA_P384, 1)
    signer = ec.generate_private_key(ec.SECP384R1())
    frame = seal(b"x", signed, system_title=TITLE, invocation_counter=1, signing_key=signer)
    impostor = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(EnvelopeError) as signature:
        open_frame(frame, signed, verify_key=impostor.public_key())
    assert signature.value.reason is RejectReason.BAD_SIGNATURE


def test_nonce_is_system_title_and_counter() -> None:
    keys = generate_session_keys(SecuritySuite.AES_128_GCM, 5)
    header = read_header(seal(b"x", keys, system_title=TITLE, invocation_counter=0x01020304))
    assert header.nonce == TITLE + b"\x01\x02\x03\x04"
    assert header.key_id == 5
    assert header.suite is SecuritySuite.AES_128_GCM


def test_bad_keys_and_counters_raise_typed_errors() -> None:
    with pytest.raises(ValueError, match="encryption_key"):
        SessionKeys(SecuritySuite.AES_256_GCM_ECDSA_P384, 1, b"k" * 16, b"a" * 32)
    keys = generate_session_keys(SecuritySuite.AES_128_GCM, 1)
    with pytest.raises(ValueError, match="invocation_counter"):
        seal(b"x", keys, system_title=TITLE, invocation_counter=2**32)
    with pytest.raises(ValueError, match="system_title"):
        seal(b"x", keys, system_title=b"short", invocation_counter=1)
    with pytest.raises(ValueError, match="signing_key"):
        seal(
            b"x",
            generate_session_keys(SecuritySuite.AES_256_GCM_ECDSA_P384, 1),
            system_title=TITLE,
            invocation_counter=1,
        )


def test_counter_resumes_above_every_value_handed_out() -> None:
    store = MemoryCounterStore()
    counter = InvocationCounter(store, "ic", reserve=10)
    used = [counter.take() for _ in range(25)]
    restarted = InvocationCounter(store, "ic", reserve=10)  # a crash after 25 values
    assert restarted.take() > max(used)
    store.counters["ic"] = 2**32 - 1
    last = InvocationCounter(store, "ic")
    assert last.take() == 2**32 - 1
    with pytest.raises(CounterExhaustedError):
        last.take()


@given(st.lists(st.integers(1, 3000), max_size=200))
def test_replay_window_accepts_each_counter_at_most_once(counters: list[int]) -> None:
    window = ReplayWindow(size=64)
    accepted: list[int] = []
    for counter in counters:
        if not window.seen(counter):
            window.accept(counter)
            accepted.append(counter)
    assert len(accepted) == len(set(accepted))
    for counter in set(counters):
        if counter <= window.top and window.top - counter < 64:
            assert window.seen(counter) == (counter in accepted)
        elif counter <= window.top - 64:
            assert window.seen(counter)


def test_key_ring_rotation_states() -> None:
    old = generate_session_keys(SecuritySuite.AES_128_GCM, 1)
    new = generate_session_keys(SecuritySuite.AES_128_GCM, 2)
    headend = KeyRing(old)
    headend.offer(new)
    assert headend.current is old
    assert headend.for_key_id(2) is new
    assert headend.confirm(2)
    assert headend.current is new
    assert headend.for_key_id(1) is old
    headend.retire()
    assert headend.for_key_id(1) is None
    meter = KeyRing(old)
    meter.install(new)
    assert meter.current is new
    assert meter.previous is old
    assert KeyRing.from_state(meter.to_state()).to_state() == meter.to_state()
    with pytest.raises(ValueError, match="suite"):
        meter.install(generate_session_keys(SecuritySuite.SM4_GCM, 3))


obis = st.builds(ObisCode, *(st.integers(0, 255) for _ in range(6)))
uint = st.integers(0, 2**40)
text = st.text(max_size=20)
bodies = st.one_of(
    st.builds(
        RegisterRead,
        at_ms=uint,
        values=st.lists(st.tuples(obis, st.integers(0, 10**9)), max_size=5).map(tuple),
        daily=st.booleans(),
    ),
    st.builds(
        ProfileBlock,
        capture_period_s=st.sampled_from([900, 1800, 3600]),
        rows=st.lists(
            st.builds(
                ProfileRow,
                *(uint for _ in range(2)),
                *(st.integers(-(10**6), 10**6) for _ in range(6)),
                st.integers(0, 2**16),
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(
        EventBlock,
        log=text,
        rows=st.lists(st.builds(EventRow, uint, uint, st.integers(0, 65535), text), max_size=4).map(
            tuple
        ),
    ),
    st.builds(AlarmBody, uint, st.integers(0, 65535), text),
)


@given(body=bodies, origin=st.integers(0, 2**32 - 1), seq=uint, created=uint)
def test_schema_round_trips(body: object, origin: int, seq: int, created: int) -> None:
    kind = {
        RegisterRead: MessageKind.REGISTERS,
        ProfileBlock: MessageKind.PROFILE,
        EventBlock: MessageKind.EVENTS,
        AlarmBody: MessageKind.ALARM,
    }[type(body)]
    message = Message(kind, "MS-1", origin, seq, created, body)  # type: ignore[arg-type]
    assert decode(encode(message)) == message


def test_profile_message_is_compact() -> None:
    row = ProfileRow(1234, 1_704_069_000, 512, 0, 40, 0, 23012, 10240, 0)
    blob = encode(
        Message(
            MessageKind.PROFILE,
            "MS000042",
            2**31,
            99,
            1_704_069_000_123,
            ProfileBlock(1800, (row,)),
        )
    )
    assert len(blob) < 60


@pytest.mark.parametrize(
    ("blob", "field"),
    [
        (b"\xff\x00", "message"),
        (bytes.fromhex("83010203"), "message"),
        (
            encode(Message(MessageKind.ALARM, "M1", 1, 1, 1, AlarmBody(1, 40, ""))).replace(
                b"\x01", b"\x02", 1
            ),
            "version",
        ),
    ],
)
def test_decode_names_the_bad_field(blob: bytes, field: str) -> None:
    with pytest.raises(SchemaError) as error:
        decode(blob)
    assert error.value.field == field


def test_decode_rejects_bodies_field_by_field() -> None:
    import cbor2

    good = [1, 4, "M1", 1, 2, 3, [1, 40, "x"]]
    assert decode(cbor2.dumps(good)).body == AlarmBody(1, 40, "x")
    for index, bad, field in [
        (1, 99, "kind"),
        (2, "bad serial!", "meter"),
        (3, -1, "origin"),
        (6, [1, "40", "x"], "body.code"),
        (6, [1, 40], "body"),
    ]:
        wire = list(good)
        wire[index] = bad
        with pytest.raises(SchemaError) as error:
            decode(cbor2.dumps(wire))
        assert error.value.field == field
    profile = [1, 2, "M1", 1, 2, 3, [1800, [[1, 2, 3, 4, 5, 6, 7, 8.5, 0]]]]
    with pytest.raises(SchemaError) as error:
        decode(cbor2.dumps(profile))
    assert error.value.field == "body.rows[0][7]"
    command = [1, 16, "M1", 1, 2, 3, [5, "top_up", {1: 2}, 9]]
    with pytest.raises(SchemaError) as error:
        decode(cbor2.dumps(command))
    assert error.value.field == "body.args"


def test_encode_refuses_a_body_of_another_kind() -> None:
    with pytest.raises(SchemaError):
        encode(Message(MessageKind.PROFILE, "M1", 1, 1, 1, AlarmBody(1, 40, "")))
    with pytest.raises(SchemaError):
        encode(Message(MessageKind.COMMAND, "M1", 2**32, 1, 1, CommandBody(1, "x", {}, 1)))


def test_topics_parse_and_refuse() -> None:
    assert parse("meterstack/v1/MS1/up/profile") == ("MS1", "up", MessageKind.PROFILE)
    for bad in (
        "meterstack/v1/MS1/up/command",
        "meterstack/v2/MS1/up/alarm",
        "a/b",
        "meterstack/v1/+/up/alarm",
    ):
        with pytest.raises(SchemaError):
            parse(bad)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ([2**63, 2, 3, 4, 5, 6, 7, 8, 0], "body.rows[1][0]"),  # seq beyond uint63
        ([1, -1, 3, 4, 5, 6, 7, 8, 0], "body.rows[1][1]"),  # interval end before 1970
        ([1, 2, True, 4, 5, 6, 7, 8, 0], "body.rows[1][2]"),  # CBOR true is no integer
        ([1, 2, 3, 4, 5, 6, 7, 8, 2**32], "body.rows[1][8]"),  # status beyond uint32
        ([1, 2, 3, 4, 5, 6, 7, 8], "body.rows[1]"),  # a channel missing
        ({"seq": 1}, "body.rows[1]"),
    ],
)
def test_profile_rows_are_checked_on_the_fast_path_too(row: object, field: str) -> None:
    """Well-formed rows take a fast path; every bad one still names its field."""
    import cbor2

    good = [7, 1_704_069_000, 3, 4, 5, 6, 23000, 15000, 0]
    wire = [1, 2, "M1", 1, 2, 3, [1800, [good, row]]]
    with pytest.raises(SchemaError) as error:
        decode(cbor2.dumps(wire))
    assert error.value.field == field
    (decoded,) = decode(cbor2.dumps([1, 2, "M1", 1, 2, 3, [1800, [good]]])).body.rows  # type: ignore[union-attr]
    assert decoded == ProfileRow(7, 1_704_069_000, 3, 4, 5, 6, 23000, 15000, 0)
