"""MQTT through aiomqtt: one connection to one broker, kept up by a reconnect loop.

MQTT 5 by default (Mosquitto); 3.1.1 for brokers that speak only that (amqtt, the embedded
demo broker). Every publish is QoS 1 and returns when the broker's PUBACK arrives (or
raises :class:`~meterstack.link.errors.LinkDownError`); the broker's acceptance is not the
head-end's, which is why the outbox waits for the head-end's own acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import socket
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from meterstack.core.aio import wait_event
from meterstack.core.errors import InvalidInputError
from meterstack.link import topics
from meterstack.link.errors import LinkDownError
from meterstack.link.shutdown import cancel_and_wait
from meterstack.link.transports.base import MessageHandler, PathHealth


class MqttTransport:
    """One broker connection.

    Parameters
    ----------
    host, port : str, int
        The broker.
    name : str
        The path's name in diagnostics and failover (``"cellular"``, ``"lora"``...).
    client_id : str
        MQTT client identifier; also names the health-probe topic.
    subscriptions : sequence of str
        Topic filters subscribed (QoS 1) after every (re)connection.
    on_message : MessageHandler, optional
        Called with ``(topic, payload, name)`` for each message received.
    protocol : int
        5 (MQTT 5) or 4 (MQTT 3.1.1).
    session_expiry_s : int
        MQTT 5 session expiry: with ``clean_start=False`` the broker keeps the session and
        queues QoS 1 messages while the client is away. [s]
    publish_timeout_s : float
        How long a publish waits for its PUBACK. [s]
    reconnect_min_s, reconnect_max_s : float
        Backoff between connection attempts. [s]
    low_bandwidth : bool
        The path is a narrow one (LoRa, NB-IoT): a module on it runs in degraded mode.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str = "primary",
        client_id: str,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        protocol: int = 5,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        keepalive_s: int = 10,
        publish_timeout_s: float = 5.0,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 2.0,
        low_bandwidth: bool = False,
        max_inflight: int = 256,
    ) -> None:
        if protocol not in (4, 5):
            raise InvalidInputError("protocol", protocol, "4 (MQTT 3.1.1) or 5 (MQTT 5)")
        if not 0 < port < 65536:
            raise InvalidInputError("port", port, "a TCP port 1-65535")
        self.host = host
        self.port = port
        self.name = name
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.protocol = protocol
        self.clean_start = clean_start
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.publish_timeout_s = publish_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.max_inflight = max_inflight
        self.health = PathHealth(name, low_bandwidth=low_bandwidth)
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._incoming: _DirectQueue | None = None
        self._stopping = False
        self.connections = 0
        self.handler_errors = 0
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        """Run the connection loop in the background."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.client_id}")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await cancel_and_wait(task)
        self._mark_down("stopped")

    async def __aenter__(self) -> MqttTransport:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        return await wait_event(self._connected, timeout)

    def _make_client(self) -> aiomqtt.Client:
        properties = None
        clean_start: bool = self.clean_start
        if self.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self.session_expiry_s:
                properties.SessionExpiryInterval = self.session_expiry_s
        # Messages are handed to ``on_message`` as paho decodes them (see _DirectQueue):
        # aiomqtt's message iterator costs a task and an asyncio.wait per message.
        self._incoming = None
        queue_type = functools.partial(_DirectQueue, deliver=self._deliver_now, owner=self)
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5
            if self.protocol == 5
            else aiomqtt.ProtocolVersion.V311,
            clean_session=None if self.protocol == 5 else clean_start,
            clean_start=clean_start if self.protocol == 5 else 3,
            keepalive=self.keepalive_s,
            timeout=self.publish_timeout_s,
            properties=properties,
            max_inflight_messages=self.max_inflight,
            queue_type=cast("type[asyncio.Queue[aiomqtt.Message]]", queue_type),
        )
        # Publishes waiting for their PUBACK are normal up to the in-flight window (an
        # ingest worker acknowledges many meters at once): aiomqtt warns beyond 10.
        client.pending_calls_threshold = self.max_inflight
        _set_nodelay_on_open(client)
        return client

    async def _run(self) -> None:
        delay = self.reconnect_min_s
        while not self._stop_requested():
            client = self._make_client()
            try:
                async with client:
                    for pattern in self.subscriptions:
                        await client.subscribe(pattern, qos=1)
                    self._client = client
                    self.connections += 1
                    self.health.connected = True
                    self._connected.set()
                    delay = self.reconnect_min_s
                    # Synchronous handlers ran as the messages arrived; what comes out of
                    # the queue are the awaitables of asynchronous ones, in arrival order.
                    async for pending in client.messages:
                        if self._stop_requested():
                            _discard(cast("Awaitable[None]", pending))
                            return
                        await cast("Awaitable[None]", pending)
            except aiomqtt.MqttError as exc:
                self._mark_down(str(exc))
            except (OSError, TimeoutError) as exc:
                self._mark_down(f"{type(exc).__name__}: {exc}")
            finally:
                self._client = None
                leftovers = self._incoming.drain() if self._incoming is not None else []
                if self._stop_requested():  # stopping: dropped, as before
                    for leftover in leftovers:
                        _discard(leftover)
                    leftovers = []
            # Messages the broker delivered before the link dropped: an asynchronous
            # handler still gets them.
            for leftover in leftovers:
                await leftover
            if self._stop_requested():
                return
            self._mark_down(self.health.last_error or "disconnected")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    def _stop_requested(self) -> bool:
        return self._stopping

    def _deliver_now(self, message: aiomqtt.Message) -> Awaitable[None] | None:
        """Hand one message to the handler; return what is left to await, if anything."""
        if self.on_message is None or self._stopping:
            return None
        payload = cast("object", message.payload)
        if not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        return self._deliver(message.topic.value, bytes(payload))

    def _deliver(self, topic: str, payload: bytes) -> Awaitable[None] | None:
        """Call the handler; return its awaitable (guarded) if it is asynchronous."""
        if self.on_message is None or self._stopping:
            return None
        try:
            result = self.on_message(topic, payload, self.name)
        except Exception as exc:  # a handler's bug must not take the connection down
            self._handler_failed(topic, exc)
            return None
        if inspect.isawaitable(result):
            return _Guarded(self, topic, result)
        return None

    def _handler_failed(self, topic: str, exc: Exception) -> None:
        self.handler_errors += 1
        self.errors = [*self.errors, f"handler failed on {topic}: {exc!r}"][-10:]

    def _mark_down(self, error: str) -> None:
        if self._connected.is_set() or error != self.health.last_error:
            self.errors = ([*self.errors, error])[-10:]
        self._connected.clear()
        self.health.connected = False
        self.health.last_error = error

    # ------------------------------------------------------------------ sending
    async def publish(self, topic: str, payload: bytes) -> str:
        """QoS 1 publish; returns this path's name once the broker has acknowledged."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise LinkDownError(f"path {self.name} is not connected")
        try:
            await client.publish(topic, payload, qos=1, timeout=self.publish_timeout_s)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            raise LinkDownError(f"path {self.name}: publish failed: {exc}") from exc
        return self.name

    async def probe(self, timeout: float) -> float:
        """Round trip of one QoS 1 publish to this path's health topic. [s]"""
        start = time.perf_counter()
        client = self._client
        if client is None or not self._connected.is_set():
            raise LinkDownError(f"path {self.name} is not connected")
        try:
            await client.publish(
                topics.health(self.client_id, self.name), b"", qos=1, timeout=timeout
            )
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            raise LinkDownError(f"path {self.name}: probe failed: {exc}") from exc
        return time.perf_counter() - start

    @property
    def degraded(self) -> bool:
        return self.health.low_bandwidth

    def diagnostics(self) -> dict[str, object]:
        return {
            "active": self.name,
            "paths": {self.name: _health_dict(self.health)},
            "degraded": self.degraded,
            "last_errors": list(self.errors),
        }


class _Guarded:
    """An asynchronous handler's awaitable, its failure counted instead of raised.

    Nothing runs until it is awaited; :meth:`close` drops the handler's own coroutine
    unrun (a transport that stops with messages still queued), so none is left never
    awaited.
    """

    def __init__(self, transport: MqttTransport, topic: str, result: Awaitable[None]) -> None:
        self._transport = transport
        self._topic = topic
        self._result = result

    def __await__(self) -> Generator[Any, None, None]:
        return self._run().__await__()

    async def _run(self) -> None:
        try:
            await self._result
        except Exception as exc:
            self._transport._handler_failed(self._topic, exc)

    def close(self) -> None:
        _discard(self._result)


class _DirectQueue(asyncio.Queue[Any]):
    """aiomqtt's incoming queue, delivering each message to the handler at once.

    paho decodes a PUBLISH inside the event loop's reader callback and aiomqtt puts it
    here: ``deliver`` runs the transport's handler there and then, in arrival order; only
    the awaitable of an asynchronous handler is queued, for the connection loop to await
    in order. The broker's PUBACK still follows the handler's return, as before.
    """

    def __init__(
        self,
        maxsize: int = 0,
        *,
        deliver: Callable[[aiomqtt.Message], Awaitable[None] | None],
        owner: MqttTransport,
    ) -> None:
        super().__init__(maxsize)
        self._deliver = deliver
        owner._incoming = self  # drained by the transport after a disconnect

    def put_nowait(self, item: Any) -> None:
        pending = self._deliver(item)
        if pending is not None:
            super().put_nowait(pending)

    def drain(self) -> list[Awaitable[None]]:
        """Take what is still queued (the awaitables not yet awaited)."""
        items = []
        while not self.empty():
            items.append(self.get_nowait())
        return items


def _set_nodelay_on_open(client: aiomqtt.Client) -> None:
    """Turn Nagle's algorithm off on the client's socket as soon as it is opened.

    paho leaves it on: a small frame (an alarm, a PUBACK) written while an earlier segment
    is still unacknowledged then waits for the peer's delayed ACK (up to 40 ms on Linux)
    instead of leaving at once.
    """
    paho = client._client  # aiomqtt installs its own socket callbacks: wrap them
    opened = paho.on_socket_open

    def on_socket_open(mqttc: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if opened is not None:
            opened(mqttc, userdata, sock)

    paho.on_socket_open = on_socket_open


def _discard(pending: Awaitable[None]) -> None:
    """Drop an awaitable never to be awaited (a coroutine is closed, so no warning)."""
    close = getattr(pending, "close", None)
    if close is not None:
        close()


def _health_dict(health: PathHealth) -> dict[str, object]:
    return {
        "connected": health.connected,
        "healthy": health.healthy,
        "rtt_ewma_ms": None if health.rtt_ewma_s is None else round(health.rtt_ewma_s * 1000, 3),
        "probes": health.probes,
        "probe_failures": health.probe_failures,
        "last_error": health.last_error,
        "low_bandwidth": health.low_bandwidth,
    }
