"""Two paths with health checks, automatic failover and failback, and degraded mode.

A meter with a cellular modem and a LoRa/NB-IoT radio has two ways to the head-end; here
each is an :class:`~meterstack.link.transports.mqtt.MqttTransport` (its own broker or
endpoint). :class:`FailoverTransport` probes both every ``probe_interval_s`` with a QoS 1
publish whose PUBACK round trip is the path's RTT (smoothed, EWMA with ``rtt_alpha``).

* Failover: the active path is abandoned after ``fail_after`` consecutive failed probes or
  at the first failed publish; the message is offered to the other path at once.
* Failback: the primary is taken back after ``failback_after`` consecutive good probes
  (hysteresis, so a flapping primary does not bounce traffic).
* Degraded mode: while the active path is a narrow one (``low_bandwidth``) or its smoothed
  RTT is above ``poor_rtt_s``, :attr:`degraded` is true and the communication module sends
  only alarms, command responses and the daily register snapshot; the rest waits in the
  outbox.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from meterstack.core.errors import InvalidInputError
from meterstack.link.errors import LinkDownError
from meterstack.link.shutdown import cancel_and_wait
from meterstack.link.transports.mqtt import MqttTransport, _health_dict


@dataclass(frozen=True)
class FailoverPolicy:
    """Health-check and switching parameters.

    Attributes
    ----------
    probe_interval_s : float
        Time between probes of each path. [s]
    probe_timeout_s : float
        A probe slower than this fails. [s]
    fail_after : int
        Consecutive failed probes that take a path out. [count]
    failback_after : int
        Consecutive good probes before the primary is used again. [count]
    poor_rtt_s : float
        Smoothed RTT above which the link counts as poor (degraded mode). [s]
    rtt_alpha : float
        Weight of the newest RTT sample in the EWMA, 0-1. [1]
    """

    probe_interval_s: float = 1.0
    probe_timeout_s: float = 1.0
    fail_after: int = 2
    failback_after: int = 3
    poor_rtt_s: float = 0.5
    rtt_alpha: float = 0.3

    def __post_init__(self) -> None:
        if self.probe_interval_s <= 0 or self.probe_timeout_s <= 0:
            raise InvalidInputError("probe_interval_s", self.probe_interval_s, "must be positive")
        if self.fail_after < 1 or self.failback_after < 1:
            raise InvalidInputError("fail_after", self.fail_after, "at least one probe")
        if not 0 < self.rtt_alpha <= 1:
            raise InvalidInputError("rtt_alpha", self.rtt_alpha, "a weight in (0, 1]")


@dataclass(frozen=True)
class Switch:
    """One change of the active path."""

    at: float  # POSIX seconds
    from_path: str
    to_path: str
    reason: str


class FailoverTransport:
    """A primary and a secondary path behind one :class:`~meterstack.link.transports.Transport`."""

    def __init__(
        self,
        primary: MqttTransport,
        secondary: MqttTransport,
        policy: FailoverPolicy | None = None,
    ) -> None:
        if primary.name == secondary.name:
            raise InvalidInputError("secondary.name", secondary.name, "paths need distinct names")
        self.primary = primary
        self.secondary = secondary
        self.policy = policy or FailoverPolicy()
        self.active = primary
        self.switches: list[Switch] = []
        self._task: asyncio.Task[None] | None = None
        for path in (primary, secondary):
            path.health.healthy = True  # until the probes say otherwise

    @property
    def paths(self) -> tuple[MqttTransport, MqttTransport]:
        return (self.primary, self.secondary)

    def start(self) -> None:
        """Start both connections and the health checks."""
        self.primary.start()
        self.secondary.start()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._health_loop(), name="failover-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.primary.stop()
        await self.secondary.stop()

    async def __aenter__(self) -> FailoverTransport:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ health
    async def _health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._probe(path) for path in self.paths))
            self._choose()
            await asyncio.sleep(self.policy.probe_interval_s)

    async def _probe(self, path: MqttTransport) -> None:
        health = path.health
        health.probes += 1
        try:
            rtt = await path.probe(self.policy.probe_timeout_s)
        except LinkDownError as exc:
            health.probe_failures += 1
            health.consecutive_ok = 0
            health.consecutive_failures += 1
            health.last_error = str(exc)
            if health.consecutive_failures >= self.policy.fail_after:
                health.healthy = False
            return
        alpha = self.policy.rtt_alpha
        health.rtt_ewma_s = (
            rtt if health.rtt_ewma_s is None else alpha * rtt + (1 - alpha) * health.rtt_ewma_s
        )
        health.consecutive_failures = 0
        health.consecutive_ok += 1
        if not health.healthy:
            needed = self.policy.failback_after if path is self.primary else 1
            health.healthy = health.consecutive_ok >= needed

    def _choose(self) -> None:
        primary, secondary = self.primary, self.secondary
        if self.active is primary and not primary.health.healthy and secondary.health.healthy:
            self._switch(secondary, "primary failed its health checks")
        elif self.active is secondary and primary.health.healthy:
            self._switch(primary, f"primary healthy for {self.policy.failback_after} probes")

    def _switch(self, to: MqttTransport, reason: str) -> None:
        if to is self.active:
            return
        self.switches.append(Switch(time.time(), self.active.name, to.name, reason))
        self.active = to

    # ------------------------------------------------------------------ sending
    @property
    def degraded(self) -> bool:
        health = self.active.health
        if health.low_bandwidth or not self.active.connected:
            return True
        return health.rtt_ewma_s is not None and health.rtt_ewma_s > self.policy.poor_rtt_s

    async def publish(self, topic: str, payload: bytes) -> str:
        first = self.active
        try:
            return await first.publish(topic, payload)
        except LinkDownError as exc:
            first.health.healthy = False
            first.health.consecutive_ok = 0
            first.health.last_error = str(exc)
            other = self.secondary if first is self.primary else self.primary
            if not other.connected:
                raise
            if self.active is first:
                self._switch(other, f"publish failed on {first.name}")
            return await other.publish(topic, payload)

    def diagnostics(self) -> dict[str, object]:
        return {
            "active": self.active.name,
            "degraded": self.degraded,
            "paths": {path.name: _health_dict(path.health) for path in self.paths},
            "switches": [
                {"at": s.at, "from": s.from_path, "to": s.to_path, "reason": s.reason}
                for s in self.switches[-10:]
            ],
            "last_errors": self.primary.errors[-5:] + self.secondary.errors[-5:],
        }
