"""The head-end DLMS client against the virtual meter's server, and bad input on the wire."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.meter import ControlState, Meter, MeterConfig, PrepaidConfig
from meterstack.meter.config import StsConfig
from meterstack.meter.events import EventCode, LogKind
from meterstack.protocols.dlms import DlmsServer, LogicalDevice, SecurityKeys, default_clients
from meterstack.protocols.dlms.acse import Aarq, ApplicationContext, InitiateRequest, Mechanism
from meterstack.protocols.dlms.apdu import EXCEPTION_RESPONSE
from meterstack.protocols.dlms.client import LOAD_PROFILE, ClientSettings, DlmsClient
from meterstack.protocols.dlms.wrapper import encode_frame
from meterstack.protocols.errors import AssociationError, DlmsServiceError
from meterstack.sts import (
    KeyParameters,
    MeterPan,
    MeterRecord,
    TokenIssuer,
    VendingKey,
    seal_decoder_key,
)

from .support import (
    AUTHENTICATION_KEY,
    BLOCK_CIPHER_KEY,
    CLIENT_TITLE,
    PASSWORD,
    START,
    load,
    meter_with_history,
    security,
)

KEYS = SecurityKeys(BLOCK_CIPHER_KEY, AUTHENTICATION_KEY)


def serve(meter: Meter, body: Callable[[int, LogicalDevice], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        device = LogicalDevice.for_meter(
            meter, SimulatedClock(meter.now + timedelta(seconds=1)), security(), default_clients()
        )
        server = DlmsServer({1: device})
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port, device)
        finally:
            await server.close()

    return asyncio.run(main())


def test_read_registers_profile_and_events() -> None:
    meter = meter_with_history(2)

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, ClientSettings.public()) as client:
            reading = await client.read_register(ObisCode.parse("1.0.1.8.0.255"))
            assert reading.raw == meter.registers.a_plus
            assert (reading.scaler, reading.unit) == (0, 30)
            voltage = await client.read_register(ObisCode.parse("1.0.12.27.0.255"))
            assert voltage.value == pytest.approx(230.0)
            start, end = START + timedelta(hours=6), START + timedelta(days=1, hours=6)
            rows = await client.read_profile(LOAD_PROFILE, start, end)
            held = meter.load_profile.between(start.timestamp() - 1, end.timestamp())
            assert [r.at.timestamp() for r in rows] == [e.interval_end for e in held]
            assert sum(r.values[0] for r in rows) == sum(e.a_plus_wh for e in held)  # type: ignore[misc]
            events = await client.read_event_log(
                LogKind.POWER_FAILURE.obis, START, START + timedelta(days=9)
            )
            assert events == []

    serve(meter, body)


def test_disconnect_reconnect_and_clock_under_hls() -> None:
    meter = meter_with_history(1)
    settings = dataclasses.replace(
        ClientSettings.high_gmac(CLIENT_TITLE, KEYS, invocation_counter=500), max_pdu_size=300
    )

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, settings) as client:
            rows = await client.read_profile(LOAD_PROFILE, START, START + timedelta(days=1))
            assert len(rows) == 48  # read in blocks of < 300 octets
            await client.disconnect()
            assert await client.relay_state() == ControlState.DISCONNECTED
            await client.reconnect()
            assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
            target = device.binding.now() + timedelta(minutes=7)
            await client.set_clock(target)
            assert (await client.read_clock()) == target.replace(microsecond=0)
            log = [e.code for e in meter.event_logs[LogKind.STANDARD]]
            assert log[-2:] == [
                EventCode.CLOCK_ADJUSTED_OLD_TIME,
                EventCode.CLOCK_ADJUSTED_NEW_TIME,
            ]

    serve(meter, body)


def test_lls_limiter_threshold_range_checked() -> None:
    from meterstack.meter import LimiterConfig

    config = MeterConfig(serial="MS000002", limiter=LimiterConfig(threshold_w=5000))
    meter = Meter(config, commissioned_at=START)
    meter.step(load(START + timedelta(minutes=1), 500))

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect(
            "127.0.0.1", port, ClientSettings.low(PASSWORD)
        ) as client:
            from meterstack.protocols.dlms.axdr import Data

            limiter = ObisCode.parse("0.0.17.0.0.255")
            await client.set(71, limiter, 4, Data.double_long_unsigned(3000))
            assert meter.limiter is not None
            assert meter.limiter.threshold_w == 3000
            with pytest.raises(DlmsServiceError):
                await client.set(71, limiter, 4, Data.double_long_unsigned(2_000_000))
            with pytest.raises(DlmsServiceError):
                await client.set(71, limiter, 4, Data.visible_string("3000"))
            assert meter.limiter.threshold_w == 3000

    serve(meter, body)


def test_enter_token_through_the_gateway() -> None:
    kek = bytes(range(32))
    vending = VendingKey.from_hex("abababababababab")
    keys = KeyParameters("123456", "01", 1, 2)
    record = MeterRecord(MeterPan("600727", "00000000000"), keys)
    issuer = TokenIssuer(vending, timezone="UTC")
    decoder_key = issuer.decoder_key(record)
    config = MeterConfig(
        serial="TEST0001",
        prepaid=PrepaidConfig(mode="energy", initial_credit=Decimal(10)),
        sts=StsConfig(
            decoder_key=seal_decoder_key(decoder_key, keys, kek, "TEST0001"),
            supply_group_code="123456",
        ),
    )
    meter = Meter(config, commissioned_at=START, key_encryption_key=kek)
    token = issuer.credit(record, Decimal("25.6"), START.replace(tzinfo=None), rnd=5)

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect(
            "127.0.0.1", port, ClientSettings.low(PASSWORD)
        ) as client:
            status, description = await client.enter_token(token.digits)
            assert status == 3, description
            assert meter.credit is not None
            assert meter.credit.credit == Decimal("35.6")
            status, _ = await client.enter_token(token.digits)  # the same TID again
            assert status == 6
            assert meter.credit.credit == Decimal("35.6")

    serve(meter, body)


def test_association_refusals() -> None:
    meter = meter_with_history(1)

    async def body(port: int, device: LogicalDevice) -> None:
        with pytest.raises(AssociationError):
            await DlmsClient.connect("127.0.0.1", port, ClientSettings.low(b"nope"))
        with pytest.raises(AssociationError):  # unknown client SAP
            await DlmsClient.connect("127.0.0.1", port, ClientSettings(client_sap=99))
        wrong = ClientSettings.high_gmac(CLIENT_TITLE, SecurityKeys(bytes(16), bytes(16)), 10**6)
        with pytest.raises(AssociationError):
            await DlmsClient.connect("127.0.0.1", port, wrong)
        async with await DlmsClient.connect("127.0.0.1", port, ClientSettings.public()) as client:
            assert (await client.read_register(ObisCode.parse("1.0.2.8.0.255"))).unit == 30

    serve(meter, body)


async def _raw(port: int, frames: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    from meterstack.protocols.dlms.wrapper import WrapperFramer

    framer = WrapperFramer()
    answers = []
    for frame in frames:
        writer.write(frame)
        await writer.drain()
        got: list[Any] = []
        while not got:
            async with asyncio.timeout(5):
                chunk = await reader.read(65536)
            assert chunk, "the server closed the connection"
            got = framer.feed(chunk)
        answers.append(got[0].apdu)
    writer.close()
    return answers


def _aarq() -> bytes:
    initiate = InitiateRequest(0x00101D, 0xFFFF).encode()
    return encode_frame(
        16, 1, Aarq(ApplicationContext.LOGICAL_NAME, initiate, None, Mechanism.LOWEST).encode()
    )


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc0",  # truncated GET
        b"\xc0\x01\xc1\x00\x03\x01\x00\x01",  # GET cut inside the instance id
        b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x01\x07",  # access-selection cut
        b"\xc1\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00\x09\x10ab",  # SET value cut
        b"\xc3\x01\xc1\x00\x46\x00\x00\x60\x03\x0a\xff\x01\x01\x02\x05",  # ACTION param cut
        b"\xc0\x07\xc1",  # unknown GET type
        b"\x55\x00",  # unknown APDU
        b"\xcc\x10\x30\x00\x00\x00\x01" + b"\x00" * 9,  # a ciphered APDU on a plain link
    ],
)
def test_malformed_apdus_get_exception_responses(bad: bytes) -> None:
    meter = meter_with_history(1)

    async def body(port: int, device: LogicalDevice) -> None:
        get_energy = bytes.fromhex("c001c1000301000108 00ff 0200".replace(" ", ""))
        answers = await _raw(
            port, [_aarq(), encode_frame(16, 1, bad), encode_frame(16, 1, get_energy)]
        )
        assert answers[0][0] == 0x61
        assert answers[1][0] == EXCEPTION_RESPONSE
        # and the association keeps serving
        assert answers[2][:4] == b"\xc4\x01\xc1\x00"

    serve(meter, body)


def test_garbage_aarq_is_rejected_and_service_goes_on() -> None:
    meter = meter_with_history(1)

    async def body(port: int, device: LogicalDevice) -> None:
        answers = await _raw(port, [encode_frame(16, 1, b"\x60\x03\xa1\x01\x06"), _aarq()])
        assert answers[0][0] == 0x61
        assert b"\xa2\x03\x02\x01\x01" in answers[0]
        assert b"\xa2\x03\x02\x01\x00" in answers[1]  # accepted

    serve(meter, body)


def test_replayed_ciphered_frame_is_refused() -> None:
    meter = meter_with_history(1)

    async def body(port: int, device: LogicalDevice) -> None:
        settings = ClientSettings.high_gmac(CLIENT_TITLE, KEYS, invocation_counter=7000)
        client = await DlmsClient.connect("127.0.0.1", port, settings)
        sent: list[bytes] = []
        original = client._writer.write

        def spy(octets: bytes) -> None:
            sent.append(octets)
            original(octets)

        client._writer.write = spy  # type: ignore[method-assign]
        await client.read_register(ObisCode.parse("1.0.1.8.0.255"))
        replay = sent[0]
        answer = await client._exchange(replay[8:])
        assert answer[0] == EXCEPTION_RESPONSE
        assert answer[2] == 6
        # the association still answers fresh requests
        assert (await client.read_register(ObisCode.parse("1.0.1.8.0.255"))).unit == 30
        await client.release()
        await client.close()

    serve(meter, body)


def test_broken_wrapper_frames_close_only_their_connection() -> None:
    """A wrapper frame cut short and a wrong wrapper version (IEC 62056-47: version 0x0001)
    end that connection alone; the meter goes on serving new ones."""
    meter = meter_with_history(1)

    async def body(port: int, device: LogicalDevice) -> None:
        # the header promises 100 octets, 10 come, then the peer goes away
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x01\x00\x10\x00\x01\x00\x64" + bytes(10))
        await writer.drain()
        writer.close()
        # version 2: the stream cannot be resynchronised, the server closes it
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x02" + _aarq()[2:])
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read(65536) == b""
        writer.close()
        async with await DlmsClient.connect("127.0.0.1", port, ClientSettings.public()) as client:
            reading = await client.read_register(ObisCode.parse("1.0.1.8.0.255"))
            assert reading.raw == meter.registers.a_plus

    serve(meter, body)
