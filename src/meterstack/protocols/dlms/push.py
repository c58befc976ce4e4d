"""Pushes: the virtual meter sends DataNotifications to its push destinations over TCP.

:class:`Pusher` runs one logical device's push triggers and sends what they queue:

* the **push action schedule** (class 22, 0.0.15.0.4.255): when one of its execution
  times falls between two polls, its script in the push script table (class 9) runs,
  which invokes ``push`` of the scheduled push setup 0.0.25.9.0.255;
* **alarms**: when the meter logs an event marked as an alarm (power down, cover opened,
  credit exhausted, ...), the push setup on alarm 0.4.25.9.0.255 pushes;
* a client may also invoke ``push`` (method 1) of any push setup.

Each DataNotification goes, inside one IEC 62056-47 wrapper frame (source wPort the
logical device, destination wPort the push client, 102 by default as IDIS meters use),
over a fresh TCP connection to the setup's ``host:port``, after a random delay of up to
``randomisation_start_interval`` seconds, only inside a ``communication_window`` when the
setup has any (until then it waits in the queue), retried ``number_of_retries`` times
``repetition_delay`` seconds apart when the connection fails. A DataNotification is
unconfirmed: a delivered push is one the destination's TCP stack accepted.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.4.8 "Push setup", 4.5.3 "Script table",
   4.5.7 "Single action schedule".
.. [2] IEC 62056-5-3:2017 (Green Book ed. 8), 9.3.12 the DataNotification service;
   IEC 62056-47:2006 the wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from meterstack.core.obis import ObisCode
from meterstack.meter.events import EVENTS, EventCode
from meterstack.protocols.dlms.acse import ApplicationContext, Mechanism
from meterstack.protocols.dlms.cosem.base import CosemError, ServiceContext
from meterstack.protocols.dlms.cosem.objects import PUSH_ON_ALARM
from meterstack.protocols.dlms.cosem.push import PushSetupObject, QueuedPush, parse_destination
from meterstack.protocols.dlms.cosem.schedule import ScriptTable, SingleActionSchedule
from meterstack.protocols.dlms.server import LogicalDevice
from meterstack.protocols.dlms.wrapper import encode_frame
from meterstack.protocols.errors import ProtocolError

log = logging.getLogger(__name__)

#: The client address pushes go to (IDIS: the pre-established push client, 0x66).
PUSH_CLIENT_SAP = 102


@dataclass
class _MeterItself:
    """The association view scripts run under: the meter acting on its own objects."""

    server_sap: int
    client_sap: int = 0
    mechanism: int = int(Mechanism.HIGH)
    application_context: int = int(ApplicationContext.LOGICAL_NAME)
    authenticated: bool = True
    client_title: bytes | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What became of one DataNotification."""

    setup: ObisCode
    destination: str
    made_at: datetime
    delivered: bool
    attempts: int
    error: str = ""


@dataclass
class Pusher:
    """The push triggers and sender of one logical device.

    Parameters
    ----------
    device : LogicalDevice
        The meter whose push setups are run.
    server_sap : int
        The logical device's address (the wrapper's source wPort).
    client_sap : int
        The push client's address (the wrapper's destination wPort).
    connect_timeout_s : float
        How long one connection attempt may take. [s]
    """

    device: LogicalDevice
    server_sap: int = 1
    client_sap: int = PUSH_CLIENT_SAP
    connect_timeout_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    results: list[PushResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        binding = self.device.binding
        self._last = binding.now()
        self._cursors = {kind: log.last_seq for kind, log in binding.meter.event_logs.items()}
        self._context = ServiceContext(binding, _MeterItself(self.server_sap), self.device.objects)
        self._sending: asyncio.Task[list[PushResult]] | None = None

    @property
    def setups(self) -> list[PushSetupObject]:
        return [obj for obj in self.device.objects if isinstance(obj, PushSetupObject)]

    def poll(self) -> list[QueuedPush]:
        """Run the triggers due since the last poll (at the meter's time); return what they
        queued."""
        binding = self.device.binding
        now = binding.now()
        queued: list[QueuedPush] = []
        before = {id(setup): len(setup.outbox) for setup in self.setups}
        objects = {(obj.class_id, obj.logical_name): obj for obj in self.device.objects}
        for obj in self.device.objects:
            if not isinstance(obj, SingleActionSchedule) or not obj.due(self._last, now):
                continue
            name, selector = obj.script
            table = objects.get((9, name))
            if not isinstance(table, ScriptTable):
                log.warning("schedule %s names no script table (%s)", obj.logical_name, name)
                continue
            try:
                table.execute(selector, self._context)
            except CosemError as exc:
                log.warning("schedule %s could not run its script: %s", obj.logical_name, exc)
        if self._new_alarm():
            setup = objects.get((40, PUSH_ON_ALARM))
            if isinstance(setup, PushSetupObject):
                setup.push(self._context)
        self._last = now
        for setup in self.setups:
            fresh = len(setup.outbox) - before[id(setup)]
            if fresh > 0:
                queued.extend(list(setup.outbox)[-fresh:])
        return queued

    def _new_alarm(self) -> bool:
        alarm = False
        for kind, event_log in self.device.binding.meter.event_logs.items():
            for event in event_log.since(self._cursors[kind]):
                definition = EVENTS.get(EventCode(event.code))
                alarm = alarm or (definition is not None and definition.alarm)
            self._cursors[kind] = event_log.last_seq
        return alarm

    async def send(self) -> list[PushResult]:
        """Send every queued DataNotification whose window is open; return the outcomes."""
        results = []
        now = self.device.binding.now()
        for setup in self.setups:
            while setup.outbox and setup.in_window(now):
                results.append(await self._deliver(setup, setup.outbox.popleft()))
        self.results.extend(results)
        return results

    async def _deliver(self, setup: PushSetupObject, item: QueuedPush) -> PushResult:
        destination = setup.destination.decode("ascii", "replace")
        try:
            host, port = parse_destination(setup.destination)
        except ProtocolError as exc:
            return PushResult(setup.logical_name, destination, item.at, False, 0, str(exc))
        if setup.randomisation_s > 0:
            await self.sleep(self.rng.uniform(0.0, float(setup.randomisation_s)))
        frame = encode_frame(self.server_sap, self.client_sap, item.apdu)
        error = ""
        attempts = 0
        for attempt in range(setup.retries + 1):
            attempts += 1
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    _, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(frame)
                    await writer.drain()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                return PushResult(setup.logical_name, destination, item.at, True, attempts)
            except (OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt < setup.retries:
                    await self.sleep(float(setup.repetition_delay_s))
        log.info("push to %s failed after %d attempts: %s", destination, attempts, error)
        return PushResult(setup.logical_name, destination, item.at, False, attempts, error)

    async def run(self, period_s: float = 1.0) -> None:
        """Poll and send every ``period_s`` until cancelled (sending never holds up the
        polling: retries wait in their own task)."""
        try:
            while True:
                self.poll()
                if self._sending is None or self._sending.done():
                    self._sending = asyncio.create_task(self.send())
                await asyncio.sleep(period_s)
        finally:
            if self._sending is not None:
                self._sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sending
