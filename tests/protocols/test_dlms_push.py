"""Pushes: schedules and alarms trigger DataNotifications sent over TCP to a listener.

Each notification is received on a localhost socket and decoded twice: by our wrapper and
A-XDR decoder, and by gurux-dlms (an independent implementation) as a push client would.
The schedule's wildcard arithmetic is checked against a brute-force scan of every second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import InterfaceType
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.core.aio import wait_event
from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.meter import Measurement
from meterstack.meter.events import EventCode, LogKind
from meterstack.protocols.dlms import DlmsServer, LogicalDevice, default_clients
from meterstack.protocols.dlms.apdu import ActionResult, DataAccessResult
from meterstack.protocols.dlms.axdr import Data, date_time_data, decode_data_exact
from meterstack.protocols.dlms.client import ClientSettings, DlmsClient
from meterstack.protocols.dlms.cosem.schedule import ExecutionTime
from meterstack.protocols.dlms.push import PUSH_CLIENT_SAP, Pusher
from meterstack.protocols.dlms.wrapper import WrapperFramer
from meterstack.protocols.errors import DlmsServiceError

from .support import PASSWORD, meter_with_history, security

PUSH_SETUP = ObisCode(0, 0, 25, 9, 0)
PUSH_ON_ALARM = ObisCode(0, 4, 25, 9, 0)
PUSH_SCHEDULE = ObisCode(0, 0, 15, 0, 4)
READER = ClientSettings.low(PASSWORD)


class Listener:
    """A push client: a TCP server on a free loopback port collecting what arrives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.arrived = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.received.append(await reader.read())  # the meter closes after one frame
        self.arrived.set()
        writer.close()

    @property
    def destination(self) -> Data:
        return Data.structure(
            Data.enum(0), Data.octet_string(f"127.0.0.1:{self.port}".encode()), Data.enum(0)
        )


def gurux_decode(frame: bytes) -> tuple[Any, Any, int]:
    """(values, time, command) as a gurux push client reads the frame."""
    client = GXDLMSClient(True, PUSH_CLIENT_SAP, 1, None, None, InterfaceType.WRAPPER)
    reply, notify = GXReplyData(), GXReplyData()
    client.getData(GXByteBuffer(frame), reply, notify)
    return notify.value, notify.time, notify.command


def our_decode(frame: bytes) -> tuple[int, int, bytes, Data]:
    """(source wPort, destination wPort, date-time octets, body) by our own decoders."""
    frames = WrapperFramer().feed(frame)
    assert len(frames) == 1
    apdu = frames[0].apdu
    assert apdu[0] == 0x0F  # data-notification
    assert apdu[5] == 12  # a 12-octet date-time
    return frames[0].source, frames[0].destination, apdu[6:18], decode_data_exact(apdu[18:])


def run(body: Callable[[int, LogicalDevice, SimulatedClock], Awaitable[Any]]) -> Any:
    meter = meter_with_history(1)
    clock = SimulatedClock(meter.now + timedelta(seconds=1))

    async def main() -> Any:
        device = LogicalDevice.for_meter(meter, clock, security(), default_clients())
        server = DlmsServer({1: device})
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port, device, clock)
        finally:
            await server.close()

    return asyncio.run(main())


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_scheduled_push_reaches_the_destination() -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        meter = device.binding.meter
        pusher = Pusher(device)
        async with Listener() as listener:
            async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
                await client.set(40, PUSH_SETUP, 3, listener.destination)
                every_minute = ExecutionTime(None, None, 0, None, None, None, None).encode()
                await client.set(
                    22,
                    PUSH_SCHEDULE,
                    4,
                    Data.array([Data.structure(*(Data.octet_string(p) for p in every_minute))]),
                )
            start = clock.now()
            assert pusher.poll() == []  # nothing due yet
            clock.advance(timedelta(seconds=61 - start.second))  # past the next :00
            queued = pusher.poll()
            assert len(queued) == 1
            results = await pusher.send()
            assert [r.delivered for r in results] == [True]
            assert await wait_event(listener.arrived, 5)
        (frame,) = listener.received
        source, destination, stamp, body_data = our_decode(frame)
        assert (source, destination) == (1, PUSH_CLIENT_SAP)
        name, at, a_plus, a_minus = (item.value for item in body_data.value)  # type: ignore[union-attr]
        assert name == b"MSTMS000001"
        assert at == date_time_data(queued[0].at).value == stamp
        assert (a_plus, a_minus) == (meter.registers.a_plus, meter.registers.a_minus)
        values, time, command = gurux_decode(frame)
        assert command == 0x0F
        assert values[0] == bytearray(b"MSTMS000001")
        assert values[2:] == [meter.registers.a_plus, meter.registers.a_minus]
        assert time.value.astimezone(UTC) == queued[0].at.replace(microsecond=0)

    run(body)


def test_an_alarm_pushes_the_alarm_setup() -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        meter = device.binding.meter
        pusher = Pusher(device)
        async with Listener() as listener:
            async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
                await client.set(40, PUSH_ON_ALARM, 3, listener.destination)
            meter.remote_disconnect(device.binding.now())  # an event, not an alarm
            assert pusher.poll() == []
            clock.advance(timedelta(minutes=5))
            outage = Measurement(clock.now(), (0.0,), (0.0,), (0.0,), (0.0,), frequency_hz=50.0)
            meter.step(outage)  # power down: the last gasp
            (queued,) = pusher.poll()
            assert (await pusher.send())[0].delivered
            assert await wait_event(listener.arrived, 5)
        values, _, _ = gurux_decode(listener.received[0])
        codes = dict(zip(list(LogKind), values[2:], strict=True))
        assert codes[LogKind.POWER_FAILURE] == EventCode.POWER_DOWN
        assert codes[LogKind.DISCONNECTOR] == EventCode.REMOTE_DISCONNECTION
        assert queued.apdu[0] == 0x0F

    run(body)


def test_retries_then_gives_up_on_a_closed_port() -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        async with Listener() as listener:
            closed = listener.port
        sleeps = Sleeps()
        pusher = Pusher(device, sleep=sleeps)
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            await client.set(
                40,
                PUSH_SETUP,
                3,
                Data.structure(
                    Data.enum(0), Data.octet_string(f"127.0.0.1:{closed}".encode()), Data.enum(0)
                ),
            )
            await client.set(40, PUSH_SETUP, 6, Data.unsigned(2))
            await client.set(40, PUSH_SETUP, 7, Data.long_unsigned(45))
            await client.action(40, PUSH_SETUP, 1, Data.integer(0))  # push now
        (result,) = await pusher.send()
        assert not result.delivered
        assert result.attempts == 3
        assert "Connection" in result.error or "refused" in result.error.lower()
        assert sleeps.delays == [45.0, 45.0]

    run(body)


def test_randomised_start_and_communication_window() -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        sleeps = Sleeps()
        pusher = Pusher(device, sleep=sleeps)
        now = clock.now()
        async with Listener() as listener:
            async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
                await client.set(40, PUSH_SETUP, 3, listener.destination)
                await client.set(40, PUSH_SETUP, 5, Data.long_unsigned(120))
                window = Data.structure(
                    date_time_data(now + timedelta(hours=1)),
                    date_time_data(now + timedelta(hours=2)),
                )
                await client.set(40, PUSH_SETUP, 4, Data.array([window]))
                await client.action(40, PUSH_SETUP, 1, Data.integer(0))
            assert await pusher.send() == []  # outside the window: it waits
            clock.advance(timedelta(hours=1, minutes=1))
            (result,) = await pusher.send()
            assert result.delivered
            assert await wait_event(listener.arrived, 5)
        assert len(sleeps.delays) == 1
        assert 0.0 <= sleeps.delays[0] <= 120.0

    run(body)


@pytest.mark.parametrize(
    ("obis", "class_id", "attribute", "value", "result"),
    [
        (
            PUSH_SETUP,
            40,
            3,
            Data.structure(Data.enum(0), Data.octet_string(b"no-port"), Data.enum(0)),
            DataAccessResult.TYPE_UNMATCHED,
        ),
        (
            PUSH_SETUP,
            40,
            3,
            Data.structure(Data.enum(1), Data.octet_string(b"127.0.0.1:4059"), Data.enum(0)),
            DataAccessResult.TYPE_UNMATCHED,
        ),
        (
            PUSH_SETUP,
            40,
            2,
            Data.array(
                [
                    Data.structure(
                        Data.long_unsigned(3),
                        Data.octet_string(bytes((1, 0, 99, 8, 0, 255))),
                        Data.integer(2),
                        Data.long_unsigned(0),
                    )
                ]
            ),
            DataAccessResult.OBJECT_UNDEFINED,
        ),
        (
            PUSH_SETUP,
            40,
            2,
            Data.array(
                [
                    Data.structure(
                        Data.long_unsigned(3),
                        Data.octet_string(bytes((1, 0, 1, 8, 0, 255))),
                        Data.integer(2),
                        Data.long_unsigned(1),
                    )
                ]
            ),
            DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
        ),
        (
            PUSH_SCHEDULE,
            22,
            4,
            Data.array(
                [
                    Data.structure(
                        Data.octet_string(bytes((25, 0, 0, 0))),
                        Data.octet_string(bytes((0xFF, 0xFF, 0xFF, 0xFF, 0xFF))),
                    )
                ]
            ),
            DataAccessResult.TYPE_UNMATCHED,
        ),
        (
            PUSH_SCHEDULE,
            22,
            3,
            Data.enum(9),
            DataAccessResult.TYPE_UNMATCHED,
        ),
    ],
    ids=["no_port", "udp", "unknown_object", "data_index", "hour_25", "type_9"],
)
def test_bad_settings_are_refused(
    obis: ObisCode, class_id: int, attribute: int, value: Data, result: DataAccessResult
) -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            before = await client.get(class_id, obis, attribute)
            with pytest.raises(DlmsServiceError) as refused:
                await client.set(class_id, obis, attribute, value)
            assert refused.value.result == result
            assert await client.get(class_id, obis, attribute) == before

    run(body)


def test_schedule_type_2_refuses_date_wildcards() -> None:
    async def body(port: int, device: LogicalDevice, clock: SimulatedClock) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            daily = ExecutionTime(0, 0, 0, None, None, None, None).encode()
            await client.set(
                22,
                PUSH_SCHEDULE,
                4,
                Data.array([Data.structure(*(Data.octet_string(p) for p in daily))]),
            )
            with pytest.raises(DlmsServiceError) as refused:
                await client.set(22, PUSH_SCHEDULE, 3, Data.enum(2))
            assert refused.value.result == ActionResult.TYPE_UNMATCHED

    run(body)


# ---------------------------------------------------------------------- schedule arithmetic


def brute_force(entry: ExecutionTime, after: datetime, limit_s: int) -> datetime | None:
    """Scan every second after ``after`` for a match (the definition, slowly)."""
    import calendar

    moment = after.replace(microsecond=0)
    for _ in range(limit_s):
        moment += timedelta(seconds=1)
        last = calendar.monthrange(moment.year, moment.month)[1]
        day_ok = (
            entry.day is None
            or (entry.day == 0xFE and moment.day == last)
            or (entry.day == 0xFD and moment.day == last - 1)
            or moment.day == entry.day
        )
        if (
            (entry.hour is None or moment.hour == entry.hour)
            and (entry.minute is None or moment.minute == entry.minute)
            and (entry.second is None or moment.second == entry.second)
            and (entry.year is None or moment.year == entry.year)
            and (entry.month is None or moment.month == entry.month)
            and (entry.weekday is None or moment.isoweekday() == entry.weekday)
            and day_ok
        ):
            return moment
    return None


@settings(max_examples=25)
@given(
    st.one_of(st.none(), st.integers(0, 23)),
    st.one_of(st.none(), st.integers(0, 59)),
    st.one_of(st.none(), st.integers(0, 59)),
    st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_next_execution_matches_a_scan(
    hour: int | None, minute: int | None, second: int | None, after: datetime
) -> None:
    entry = ExecutionTime(hour, minute, second, None, None, None, None)
    assert entry.next_after(after) == brute_force(entry, after, 86_401)


def test_next_execution_with_date_patterns() -> None:
    after = datetime(2024, 2, 27, 12, 0, tzinfo=UTC)
    last_day = ExecutionTime(0, 0, 0, None, None, 0xFE, None)
    assert last_day.next_after(after) == datetime(2024, 2, 29, tzinfo=UTC)  # a leap year
    sunday_noon = ExecutionTime(12, 0, 0, None, None, None, 7)
    assert sunday_noon.next_after(after) == datetime(2024, 3, 3, 12, tzinfo=UTC)
    assert sunday_noon.next_after(after) == brute_force(sunday_noon, after, 8 * 86400)
    past = ExecutionTime(0, 0, 0, 2020, 1, 1, None)
    assert past.next_after(after) is None
    assert ExecutionTime.decode(*past.encode()) == past
