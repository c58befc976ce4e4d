"""The head-end in one process: brokers, ingest workers, command dispatch, key rotation.

:class:`HeadEnd` wires the parts together for one process: per broker path and per worker
an "urgent" connection (alarms, responses) and a "bulk" connection (registers, events,
profile, power quality), each on an MQTT 5 shared subscription so that more workers (here,
or in other processes with another ``instance``) split the stream; the command
dispatcher; the alarm handler. ``protocol=4`` serves an MQTT 3.1.1 broker (the embedded
amqtt one) with a single worker and plain subscriptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.errors import CommandRefusedError, InvalidInputError
from meterstack.core.time import Clock, SystemClock
from meterstack.headend.commands import CommandDispatcher, CommandQueue, CommandRecord
from meterstack.headend.downlink import Downlink
from meterstack.headend.ingest import (
    BULK_KINDS,
    URGENT_KINDS,
    AlarmNotice,
    IngestConfig,
    IngestWorker,
    ResponseNotice,
)
from meterstack.headend.store import HeadEndStore
from meterstack.link import topics
from meterstack.link.keys import generate_session_keys, wrap_key
from meterstack.link.schema import ResponseStatus
from meterstack.link.shutdown import cancel_all
from meterstack.link.transports.gmqtt import GmqttTransport
from meterstack.mdm.ingest import MeterDataSink


@dataclass(frozen=True)
class BrokerPath:
    """One broker the head-end listens on (a meter path: cellular, LoRa gateway...)."""

    name: str
    host: str
    port: int
    protocol: int = 5


class HeadEnd:
    """Ingest, commands and key management of one head-end process.

    Parameters
    ----------
    store : HeadEndStore
        The operational database (shared with other head-end processes).
    sink : MeterDataSink
        Where readings go (an MDM store).
    paths : sequence of BrokerPath
        The brokers to serve.
    instance : int
        This process's number: its system title is ``MSHE`` + instance, its MQTT client ids
        carry it. Give every process its own.
    workers : int
        Ingest workers in this process.
    signing_key : EllipticCurvePrivateKey, optional
        The head-end's P-384 key (signed suite).
    on_alarm : callable, optional
        The alarm handler, called once per alarm.
    """

    def __init__(
        self,
        store: HeadEndStore,
        sink: MeterDataSink,
        paths: Sequence[BrokerPath],
        *,
        instance: int = 1,
        workers: int = 1,
        group: str = "headend",
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        clock: Clock | None = None,
        on_alarm: Callable[[AlarmNotice], None] | None = None,
        ingest_config: IngestConfig | None = None,
        dispatch: bool = True,
    ) -> None:
        if not paths:
            raise InvalidInputError("paths", paths, "at least one broker")
        if workers < 1:
            raise InvalidInputError("workers", workers, "at least one")
        if any(p.protocol == 4 for p in paths) and workers > 1:
            raise InvalidInputError("workers", workers, "MQTT 3.1.1 has no shared subscriptions")
        self.store = store
        self.sink = sink
        self.paths = list(paths)
        self.instance = instance
        self.group = group
        self.clock = clock or SystemClock()
        self.on_alarm = on_alarm
        self.alarms: list[AlarmNotice] = []
        self.responses: list[ResponseNotice] = []
        self._dispatch = dispatch
        self._ingest_config = ingest_config
        self.transports: list[GmqttTransport] = []
        send_paths: dict[str, GmqttTransport] = {}
        self.workers: list[IngestWorker] = []
        for index in range(workers):
            worker_paths: list[tuple[BrokerPath, str, list[str]]] = []
            for path in self.paths:
                shared = path.protocol == 5
                urgent = (
                    topics.shared_uplink_filter(f"{group}-urgent", URGENT_KINDS)
                    if shared
                    else topics.uplink_filter(URGENT_KINDS)
                )
                bulk = (
                    topics.shared_uplink_filter(group, BULK_KINDS)
                    if shared
                    else topics.uplink_filter(BULK_KINDS)
                )
                worker_paths.append((path, "urgent", urgent))
                worker_paths.append((path, "bulk", bulk))
            self.workers.append(self._make_worker(index, worker_paths, send_paths))
        self.downlink = Downlink(
            store, send_paths, instance=instance, clock=self.clock, signing_key=signing_key
        )
        for worker in self.workers:
            worker.downlink = self.downlink
        self.commands = CommandQueue(store, self.clock)
        self.dispatcher = CommandDispatcher(self.commands, self.downlink)
        self._tasks: list[asyncio.Task[None]] = []

    def _make_worker(
        self,
        index: int,
        worker_paths: list[tuple[BrokerPath, str, list[str]]],
        send_paths: dict[str, GmqttTransport],
    ) -> IngestWorker:
        worker = IngestWorker(
            self.store,
            self.sink,
            downlink=None,  # set once every path exists
            clock=self.clock,
            config=self._ingest_config,
            on_alarm=self._alarm,
            on_response=self._response,
        )
        for path, role, subscriptions in worker_paths:
            transport = GmqttTransport(
                path.host,
                path.port,
                name=path.name,
                client_id=f"headend-{self.instance}-{index}-{role}-{path.name}",
                subscriptions=subscriptions,
                on_message=worker.on_message,
                protocol=path.protocol,
                clean_start=path.protocol != 5,
                session_expiry_s=300 if path.protocol == 5 else 0,
            )
            self.transports.append(transport)
            if role == "urgent" and path.name not in send_paths:
                send_paths[path.name] = transport
        return worker

    def _alarm(self, notice: AlarmNotice) -> None:
        self.alarms.append(notice)
        if self.on_alarm is not None:
            self.on_alarm(notice)

    def _response(self, notice: ResponseNotice) -> None:
        self.responses.append(notice)
        if notice.name == "rotate_key" and notice.status is ResponseStatus.OK:
            # The meter acknowledged the new keys: the old generation is no longer accepted.
            record = self.store.meter(notice.meter)
            if record is not None:
                if record.ring.pending is not None:
                    record.ring.confirm(record.ring.pending.key_id)
                record.ring.retire()
                self.store.save_ring(notice.meter, record.ring)
                for worker in self.workers:
                    worker.forget_meter(notice.meter)

    # ---------------------------------------------------------------- lifecycle
    async def start(self, timeout: float = 10.0) -> None:
        for transport in self.transports:
            transport.start()
        for worker in self.workers:
            worker.start()
        if self._dispatch:
            self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        await asyncio.gather(*(t.wait_connected(timeout) for t in self.transports))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)
        for worker in self.workers:
            await worker.stop()
        for transport in self.transports:
            await transport.stop()

    async def __aenter__(self) -> HeadEnd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- operations
    def submit(
        self, meter: str, name: str, args: dict[str, object] | None = None, **kw: float
    ) -> int:
        ident = self.commands.submit(meter, name, args, **kw)  # type: ignore[arg-type]
        self.dispatcher.wake()
        return ident

    async def command(
        self,
        meter: str,
        name: str,
        args: dict[str, object] | None = None,
        *,
        timeout: float = 30.0,
        **kw: float,
    ) -> CommandRecord:
        """Submit a command and wait until it is settled."""
        return await self.dispatcher.wait(self.submit(meter, name, args, **kw), timeout)

    def rotate_key(self, meter: str, *, timeout_s: float = 10.0, max_attempts: int = 5) -> int:
        """Start a key rotation: new keys wrapped under the meter's KEK, sent under the old."""
        record = self.store.meter(meter)
        if record is None:
            raise InvalidInputError("meter", meter, "not a registered meter")
        if record.ring.pending is not None:
            raise CommandRefusedError("rotate_key", "a rotation is already under way")
        new = generate_session_keys(record.suite, record.ring.current.key_id + 1)
        record.ring.offer(new)
        self.store.save_ring(meter, record.ring)
        for worker in self.workers:
            worker.forget_meter(meter)
        return self.submit(
            meter,
            "rotate_key",
            {
                "key_id": new.key_id,
                "wrapped_ek": wrap_key(record.kek, new.encryption_key),
                "wrapped_ak": wrap_key(record.kek, new.authentication_key),
            },
            timeout_s=timeout_s,
            max_attempts=max_attempts,
        )
