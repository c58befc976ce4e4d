"""The MQTT transport on gmqtt: the head-end's connections.

:class:`GmqttTransport` behaves as :class:`~meterstack.link.transports.mqtt.MqttTransport`
(same parameters, health, diagnostics, handler order, QoS 1 publishes that return on the
broker's PUBACK), with gmqtt underneath instead of aiomqtt/paho. The head-end takes in the
whole fleet's stream on a few connections: there the client's cost per message decides the
ingest rate. On the development machine a bare consumer drained a queued backlog of
profile-sized messages from Mosquitto at about 8,400 messages/s through aiomqtt (paho
reads and parses each packet in Python calls of its own) and at about 96,000/s through
gmqtt (an asyncio protocol parsing whole reads); docs/link.md gives the figures. The meters
keep aiomqtt: one meter sends a few messages a minute.

The transport owns reconnection, as the aiomqtt one does: every connection is a fresh
client, and gmqtt's own reconnect is switched off (:class:`_Client`). Joining writes
(:class:`_JoinedWrites`) reaches two of gmqtt's private names (``Client._create_connection``
and the connection's ``_transport``): gmqtt is pinned to 0.8.x, and the transport's tests
go through both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.storage import PersistentStorage

from meterstack.link import topics
from meterstack.link.errors import LinkDownError
from meterstack.link.transports.mqtt import MqttTransport, _discard

#: How long a connection attempt (TCP, CONNACK, SUBACKs) may take. [s]
CONNECT_TIMEOUT_S = 10.0

# gmqtt logs every connection loss as a warning with a traceback; the transport records
# the loss in its health and diagnostics instead.
logging.getLogger("gmqtt").setLevel(logging.ERROR)

#: Polite disconnects of connections whose transport was cancelled, kept referenced.
_closing: set[asyncio.Future[None]] = set()


class _Client(gmqtt.Client):  # type: ignore[misc]
    """A gmqtt client that leaves reconnection to the transport and joins its writes."""

    async def reconnect(self, delay: bool = False) -> None:
        return None

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = await super()._create_connection(*args, **kwargs)
        _JoinedWrites(connection._transport).install()
        return connection


class _JoinedWrites:
    """Joins the writes of one event-loop turn on a connection into one ``send``.

    gmqtt writes each PUBACK as it parses the PUBLISH it answers: a read that brings a
    hundred messages made a hundred ``send`` calls, about 12 µs each on the development
    machine (a quarter of the head-end's CPU per message). The writes of one turn now go
    out together at the start of the next; their order is kept, and a close sends what is
    pending first (the DISCONNECT).
    """

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._write = transport.write
        self._close = transport.close
        self._parts: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def install(self) -> None:
        # The transport is asyncio's own object: its instance attributes shadow the methods.
        self._transport.write = self.write  # type: ignore[method-assign]
        self._transport.close = self.close  # type: ignore[method-assign]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(bytes(data))

    def flush(self) -> None:
        parts, self._parts = self._parts, []
        if parts and not self._transport.is_closing():
            self._write(b"".join(parts))

    def close(self) -> None:
        self.flush()
        self._close()


class _Acks(PersistentStorage):  # type: ignore[misc]
    """gmqtt's store of QoS 1 publishes in flight, resolving a future per PUBACK.

    gmqtt puts each QoS 1 publish here as it sends it and removes it when the broker's
    PUBACK comes: :attr:`last_mid` is the packet id of the publish just made, and
    :meth:`expect` a future that the PUBACK resolves.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_mid = 0
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        waiter = self._waiting.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expect(self, mid: int) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[mid] = waiter
        return waiter

    def fail_all(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(error)


class GmqttTransport(MqttTransport):
    """One broker connection through gmqtt (see the module's text)."""

    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._gclient: _Client | None = None
        self._acks: _Acks | None = None
        self._window = asyncio.Semaphore(self.max_inflight)
        self._handlers: asyncio.Queue[Awaitable[None] | None] = asyncio.Queue()

    # ------------------------------------------------------------------ connection
    async def _run(self) -> None:
        delay = self.reconnect_min_s
        while not self._stop_requested():
            lost = asyncio.Event()
            acks = _Acks()
            client = self._new_client(acks, lost, why := ["connection lost"])
            runner = asyncio.create_task(self._run_handlers(), name=f"handlers-{self.client_id}")
            try:
                try:
                    await self._connect(client, lost)
                    self._gclient, self._acks = client, acks
                    self.connections += 1
                    self.health.connected = True
                    self._connected.set()
                    delay = self.reconnect_min_s
                    await lost.wait()
                    self._mark_down(why[0])
                except (OSError, TimeoutError, MQTTConnectError) as exc:
                    self._mark_down(f"{type(exc).__name__}: {exc}")
                finally:
                    self._gclient = self._acks = None
                    acks.fail_all(LinkDownError(f"path {self.name}: connection lost"))
                await self._close(client)
                # Messages the broker delivered before the link dropped: an asynchronous
                # handler still gets them, in order (unless the transport is stopping).
                if self._stop_requested():
                    for pending in self._drain_handlers():
                        _discard(pending)
                self._handlers.put_nowait(None)
                await runner
            finally:
                if not runner.done():  # cancelled: the handlers' work is dropped
                    runner.cancel()
                    for pending in self._drain_handlers():
                        _discard(pending)
                    _closing.add(task := asyncio.ensure_future(self._close(client)))
                    task.add_done_callback(_closing.discard)
            if self._stop_requested():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    def _new_client(self, acks: _Acks, lost: asyncio.Event, why: list[str]) -> _Client:
        """A client for one connection; ``lost`` is set, and ``why[0]`` says why, when it ends."""
        properties: dict[str, Any] = {}
        if self.protocol == 5 and self.session_expiry_s:
            properties["session_expiry_interval"] = self.session_expiry_s
        client = _Client(
            self.client_id,
            clean_session=self.clean_start,
            optimistic_acknowledgement=True,
            persistent_storage=acks,
            **properties,
        )

        def on_message(_client: Any, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
            pending = self._deliver(topic, payload)
            if pending is not None:
                self._handlers.put_nowait(pending)
            return 0

        def on_connect(_client: Any, _flags: Any, _rc: Any, props: dict[str, Any]) -> None:
            # The broker's Receive Maximum bounds our publishes in flight.
            granted = props.get("receive_maximum") or 65535
            if isinstance(granted, list):
                granted = granted[0]
            self._window = asyncio.Semaphore(max(1, min(self.max_inflight, int(granted) - 1)))

        def on_disconnect(_client: Any, packet: Any = None, _exc: Any = None) -> None:
            # A DISCONNECT from the broker carries its reason code; a dropped socket
            # arrives as an empty one.
            if isinstance(packet, bytes | bytearray) and packet:
                why[0] = f"the broker disconnected (reason 0x{packet[0]:02x})"
            lost.set()

        client.on_message = on_message
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        return client

    async def _connect(self, client: _Client, lost: asyncio.Event) -> None:
        """Connect and subscribe; raise OSError or TimeoutError when that fails."""
        granted: dict[int, asyncio.Future[tuple[int, ...]]] = {}

        def on_subscribe(_client: Any, mid: int, qos: tuple[int, ...], _props: Any) -> None:
            waiter = granted.get(mid)
            if waiter is not None and not waiter.done():
                waiter.set_result(tuple(qos))

        client.on_subscribe = on_subscribe
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await client.connect(
                self.host,
                self.port,
                keepalive=self.keepalive_s,
                version=MQTTv50 if self.protocol == 5 else MQTTv311,
            )
            for pattern in self.subscriptions:
                mid = client.subscribe(pattern, qos=1)
                waiter = granted[mid] = asyncio.get_running_loop().create_future()
                codes = await waiter
                if lost.is_set():
                    raise ConnectionError("the broker closed the connection while subscribing")
                if any(code >= 0x80 for code in codes):
                    raise ConnectionError(f"subscription {pattern!r} refused: {codes}")

    async def _close(self, client: _Client) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await client.disconnect()

    async def _run_handlers(self) -> None:
        """Await the asynchronous handlers' work in arrival order; stop at ``None``."""
        while (pending := await self._handlers.get()) is not None:
            await pending

    def _drain_handlers(self) -> list[Awaitable[None]]:
        items = []
        while not self._handlers.empty():
            item = self._handlers.get_nowait()
            if item is not None:
                items.append(item)
        return items

    # ------------------------------------------------------------------ sending
    async def publish(self, topic: str, payload: bytes) -> str:
        """QoS 1 publish; returns this path's name once the broker has acknowledged."""
        await self._publish(topic, payload, self.publish_timeout_s, "publish")
        return self.name

    async def probe(self, timeout: float) -> float:
        """Round trip of one QoS 1 publish to this path's health topic. [s]"""
        start = time.perf_counter()
        await self._publish(topics.health(self.client_id, self.name), b"", timeout, "probe")
        return time.perf_counter() - start

    async def _publish(self, topic: str, payload: bytes, timeout: float, what: str) -> None:
        async with self._window:
            client, acks = self._gclient, self._acks
            if client is None or acks is None or not self._connected.is_set():
                raise LinkDownError(f"path {self.name} is not connected")
            try:
                client.publish(topic, payload, qos=1)
            except (OSError, OverflowError, AttributeError) as exc:
                raise LinkDownError(f"path {self.name}: {what} failed: {exc}") from exc
            waiter = acks.expect(acks.last_mid)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError as exc:
                raise LinkDownError(f"path {self.name}: {what} not acknowledged") from exc
