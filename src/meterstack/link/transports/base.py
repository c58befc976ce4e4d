"""What a communication module needs from a transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

#: Called with ``(topic, payload, path_name)`` for every message a transport receives.
MessageHandler = Callable[[str, bytes, str], Awaitable[None] | None]


@dataclass
class PathHealth:
    """What the health checks know about one path."""

    name: str
    connected: bool = False
    healthy: bool = False
    rtt_ewma_s: float | None = None
    consecutive_ok: int = 0
    consecutive_failures: int = 0
    probes: int = 0
    probe_failures: int = 0
    last_error: str = ""
    low_bandwidth: bool = False


class Transport(Protocol):
    """Publishes frames; says whether the link is poor (degraded mode)."""

    @property
    def degraded(self) -> bool:
        """True while only alarms and daily registers should be sent."""
        ...

    async def publish(self, topic: str, payload: bytes) -> str:
        """Publish with QoS 1; return the name of the path that took it.

        Raises
        ------
        LinkDownError
            No path accepted the message.
        """
        ...

    def diagnostics(self) -> dict[str, object]:
        """Link quality for remote troubleshooting."""
        ...
