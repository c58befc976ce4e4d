"""An MQTT broker inside the process (amqtt), for the demo and laptops without Mosquitto.

amqtt speaks MQTT 3.1.1 only: no shared subscriptions, so the head-end runs one ingest
worker against it (``BrokerPath(protocol=4)``). Production uses Mosquitto (MQTT 5).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from amqtt.broker import Broker

from meterstack.core.errors import InvalidInputError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker listening on ``host:port`` while running (``async with``)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidInputError("host", host, "the embedded broker listens on loopback only")
        self.host = host
        self.port = port or free_port(host)
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)

    async def start(self) -> None:
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
