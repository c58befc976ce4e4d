"""The head-end's MQTT transport on gmqtt, against Mosquitto and an aiomqtt peer.

The other side of every exchange here is an independent client (the meters' aiomqtt
transport) through a real Mosquitto, or, for what Mosquitto never does (withhold a PUBACK,
grant a small Receive Maximum), a broker stand-in that speaks the MQTT 5 wire format as
the standard writes it (OASIS MQTT 5.0, 2.1.1 fixed header, 3.2 CONNACK, 3.4 PUBACK).
"""

from __future__ import annotations

import asyncio
import gc
import random
import warnings
from typing import Any

import pytest

from meterstack.link.errors import LinkDownError
from meterstack.link.transports import GmqttTransport, MqttTransport

from .support import Mosquitto, free_port

TOPIC = "meterstack/v1/MS0001/up/profile"


def _headend(port: int, **kwargs: Any) -> GmqttTransport:
    return GmqttTransport(
        "127.0.0.1",
        port,
        client_id=kwargs.pop("client_id", "he-test"),
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        **kwargs,
    )


def _meter(port: int, **kwargs: Any) -> MqttTransport:
    return MqttTransport("127.0.0.1", port, client_id="meter-test", reconnect_min_s=0.05, **kwargs)


async def _connected(*transports: MqttTransport) -> None:
    for transport in transports:
        assert await transport.wait_connected(10), transport.client_id


async def _until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_messages_cross_both_ways_between_gmqtt_and_aiomqtt(mosquitto: Mosquitto) -> None:
    to_headend: list[tuple[str, bytes, str]] = []
    to_meter: list[tuple[str, bytes, str]] = []
    headend = _headend(mosquitto.port, subscriptions=["$share/g/meterstack/v1/+/up/+"])
    headend.on_message = lambda *m: to_headend.append(m)
    meter = _meter(mosquitto.port, subscriptions=["meterstack/v1/MS0001/down/#"])
    meter.on_message = lambda *m: to_meter.append(m)
    async with headend, meter:
        await _connected(headend, meter)
        payloads = [bytes([i]) * (1 + i * 37) for i in range(40)]  # up to 1.4 kB, binary
        for payload in payloads:
            assert await meter.publish(TOPIC, payload) == "primary"
        assert await headend.publish("meterstack/v1/MS0001/down/ack", b"\x00ack\xff") == "primary"
        await _until(lambda: len(to_headend) == 40 and len(to_meter) == 1)
    assert [payload for _, payload, _ in to_headend] == payloads  # in order, byte for byte
    assert {topic for topic, _, _ in to_headend} == {TOPIC}
    assert to_meter == [("meterstack/v1/MS0001/down/ack", b"\x00ack\xff", "primary")]
    assert headend.diagnostics()["paths"]["primary"]["connected"] is False  # stopped


async def test_asynchronous_handlers_run_in_arrival_order(mosquitto: Mosquitto) -> None:
    seen: list[bytes] = []
    rng = random.Random(7)

    async def slow_handler(topic: str, payload: bytes, path: str) -> None:
        await asyncio.sleep(rng.random() * 0.003)
        seen.append(payload)

    headend = _headend(mosquitto.port, subscriptions=[TOPIC], on_message=slow_handler)
    meter = _meter(mosquitto.port)
    async with headend, meter:
        await _connected(headend, meter)
        sent = [str(i).encode() for i in range(60)]
        await asyncio.gather(*(meter.publish(TOPIC, p) for p in sent))
        await _until(lambda: len(seen) == 60)
    assert seen == sent


async def test_a_failing_handler_is_counted_and_the_connection_stays(
    mosquitto: Mosquitto,
) -> None:
    seen: list[bytes] = []

    def handler(topic: str, payload: bytes, path: str) -> None:
        if payload == b"bad":
            raise ValueError("handler bug")
        seen.append(payload)

    async def async_handler(topic: str, payload: bytes, path: str) -> None:
        handler(topic, payload, path)

    for on_message in (handler, async_handler):
        seen.clear()
        headend = _headend(mosquitto.port, subscriptions=[TOPIC], on_message=on_message)
        async with headend, _meter(mosquitto.port) as meter:
            await _connected(headend, meter)
            for payload in (b"a", b"bad", b"b"):
                await meter.publish(TOPIC, payload)
            await _until(lambda: seen == [b"a", b"b"])
            assert headend.handler_errors == 1
            assert "handler bug" in headend.errors[-1]
            assert headend.connections == 1


async def test_broker_restart_reconnects_and_subscribes_again(mosquitto: Mosquitto) -> None:
    seen: list[bytes] = []
    headend = _headend(
        mosquitto.port, subscriptions=[TOPIC], on_message=lambda *m: seen.append(m[1])
    )
    async with headend:
        assert await headend.wait_connected(10)
        mosquitto.stop()
        await _until(lambda: not headend.connected)
        with pytest.raises(LinkDownError, match="not connected"):
            await headend.publish(TOPIC, b"while down")
        assert headend.health.last_error
        mosquitto.start()
        assert await headend.wait_connected(15)
        assert headend.connections == 2
        async with _meter(mosquitto.port) as meter:
            assert await meter.wait_connected(10)
            await meter.publish(TOPIC, b"after restart")
            await _until(lambda: seen == [b"after restart"])
        assert await headend.probe(5) < 5


async def test_stop_with_handlers_queued_leaves_nothing_unawaited(mosquitto: Mosquitto) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def blocking(topic: str, payload: bytes, path: str) -> None:
        started.set()
        await release.wait()

    headend = _headend(mosquitto.port, subscriptions=[TOPIC], on_message=blocking)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with _meter(mosquitto.port) as meter:
            headend.start()
            await _connected(headend, meter)
            for i in range(10):
                await meter.publish(TOPIC, bytes([i]))
            async with asyncio.timeout(10):
                await started.wait()
                await headend.stop()  # nine handler coroutines still queued
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert not headend.connected


async def test_transport_stops_promptly_while_the_broker_is_unreachable() -> None:
    headend = _headend(free_port())
    headend.start()
    await asyncio.sleep(0.3)
    assert not headend.connected
    assert headend.errors  # each failed attempt says why
    async with asyncio.timeout(5):
        await headend.stop()
    assert headend.health.last_error == "stopped"


# ---------------------------------------------------------------- a broker stand-in


class _StandIn:
    """Accepts one MQTT 5 client: CONNACK with ``receive_maximum``; PUBACKs each PUBLISH
    after ``ack_delay_s`` (never, if None), recording how many were unacknowledged at most."""

    def __init__(
        self, receive_maximum: int, ack_delay_s: float | None, disconnect_reason: int | None = None
    ) -> None:
        self.receive_maximum = receive_maximum
        self.ack_delay_s = ack_delay_s
        self.disconnect_reason = disconnect_reason
        self.connects = 0
        self.packet_types: list[int] = []  # of every packet after CONNECT
        self.unacked = 0
        self.max_unacked = 0
        self.published = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> _StandIn:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @staticmethod
    async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        first = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:  # the variable byte integer, 1.5.5
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        acks: list[asyncio.Task[None]] = []
        try:
            first, _ = await self._packet(reader)
            assert first >> 4 == 1  # CONNECT
            # CONNACK: no session, success, properties: Receive Maximum (0x21).
            props = b"\x21" + self.receive_maximum.to_bytes(2, "big")
            body = b"\x00\x00" + bytes([len(props)]) + props
            writer.write(b"\x20" + bytes([len(body)]) + body)
            self.connects += 1
            if self.disconnect_reason is not None:  # DISCONNECT with a reason code, 3.14
                writer.write(b"\xe0\x02" + bytes([self.disconnect_reason, 0]))
                await writer.drain()
                return
            while True:
                first, body = await self._packet(reader)
                self.packet_types.append(first >> 4)
                if first >> 4 != 3:  # only PUBLISH is answered
                    continue
                topic_len = int.from_bytes(body[:2], "big")
                mid = body[2 + topic_len : 4 + topic_len]
                self.published += 1
                self.unacked += 1
                self.max_unacked = max(self.max_unacked, self.unacked)
                if self.ack_delay_s is not None:
                    acks.append(asyncio.create_task(self._ack(writer, mid)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in acks:
                task.cancel()
            writer.close()

    async def _ack(self, writer: asyncio.StreamWriter, mid: bytes) -> None:
        assert self.ack_delay_s is not None
        await asyncio.sleep(self.ack_delay_s)
        self.unacked -= 1
        writer.write(b"\x40\x02" + mid)


async def test_a_publish_without_puback_fails_after_its_timeout() -> None:
    async with (
        _StandIn(receive_maximum=100, ack_delay_s=None) as broker,
        _headend(broker.port, publish_timeout_s=0.3) as headend,
    ):
        await _connected(headend)
        with pytest.raises(LinkDownError, match="not acknowledged"):
            await headend.publish(TOPIC, b"x")
        assert broker.published == 1


async def test_publishes_in_flight_stay_within_the_brokers_receive_maximum() -> None:
    async with (
        _StandIn(receive_maximum=5, ack_delay_s=0.02) as broker,
        _headend(broker.port) as headend,
    ):
        await _connected(headend)
        names = await asyncio.gather(*(headend.publish(TOPIC, bytes([i])) for i in range(40)))
        assert names == ["primary"] * 40
    assert broker.published == 40
    assert 1 < broker.max_unacked <= 4  # Receive Maximum 5, less the one gmqtt keeps


async def test_a_stop_sends_what_is_pending_then_disconnect() -> None:
    # Writes of one event-loop turn go out together (_JoinedWrites); a close must not drop
    # them: the last publishes and the DISCONNECT reach the broker.
    async with _StandIn(receive_maximum=100, ack_delay_s=None) as broker:
        headend = _headend(broker.port, publish_timeout_s=5)
        headend.start()
        await _connected(headend)
        pending = [asyncio.create_task(headend.publish(TOPIC, bytes([i]))) for i in range(5)]
        await asyncio.sleep(0)  # the publishes are written, not yet sent
        await headend.stop()
        await _until(lambda: 14 in broker.packet_types)
        assert broker.packet_types == [3] * 5 + [14]  # five PUBLISH, then DISCONNECT
        for task in pending:
            with pytest.raises(LinkDownError):
                await task


async def test_a_broker_disconnect_is_recorded_with_its_reason() -> None:
    async with (
        _StandIn(receive_maximum=10, ack_delay_s=0.0, disconnect_reason=0x8B) as broker,
        _headend(broker.port) as headend,
    ):
        await _until(lambda: broker.connects >= 2)  # the transport connects again
        await _until(lambda: any("reason 0x8b" in error for error in headend.errors))


def test_bad_settings_name_the_field() -> None:
    from meterstack.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="protocol"):
        GmqttTransport("127.0.0.1", 1883, client_id="x", protocol=3)
    with pytest.raises(InvalidInputError, match="port"):
        GmqttTransport("127.0.0.1", 0, client_id="x")
