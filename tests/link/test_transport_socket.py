"""The MQTT transport's socket: small frames (alarms, PUBACKs) are not held by Nagle.

With Nagle's algorithm on, a small write made while an earlier segment is unacknowledged
waits for the peer's delayed ACK (up to 40 ms on Linux): measured as 12-68 ms per alarm
in ``bench/link.py`` with the broker otherwise idle. The kernel's own answer to
``getsockopt(TCP_NODELAY)`` is the reference.
"""

from __future__ import annotations

import socket

from meterstack.link.transports import MqttTransport

from .support import Mosquitto, meter_transport


async def test_the_transport_socket_has_nagle_off(mosquitto: Mosquitto) -> None:
    transport: MqttTransport = meter_transport(mosquitto, "MS0001")
    async with transport:
        assert await transport.wait_connected(10)
        client = transport._client
        assert client is not None
        sock = client._client.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert await transport.publish("meterstack/v1/MS0001/up/alarm", b"x") == "primary"
