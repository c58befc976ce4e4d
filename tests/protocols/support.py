"""Test support: a virtual meter with history, a DLMS server in a thread, a gurux peer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from meterstack.core.time import SimulatedClock
from meterstack.meter import Measurement, Meter, MeterConfig, PrepaidConfig
from meterstack.protocols.dlms import (
    DlmsSecurity,
    DlmsServer,
    LogicalDevice,
    SecurityKeys,
    default_clients,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
#: Test keys (the Green Book's example keys are not used anywhere else).
BLOCK_CIPHER_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTHENTICATION_KEY = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
MASTER_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SERVER_TITLE = b"MST00001"
CLIENT_TITLE = b"HEADEND1"
PASSWORD = b"12345678"


def load(at: datetime, watts: float, voltage: float = 230.0) -> Measurement:
    current = abs(watts) / voltage
    return Measurement(
        timestamp=at,
        voltage_v=(voltage,),
        current_a=(current,),
        active_power_w=(watts,),
        reactive_power_var=(watts * 0.1,),
        frequency_hz=50.0,
    )


def meter_with_history(days: int = 3, *, prepaid: bool = False) -> Meter:
    """A meter stepped every 5 minutes for ``days`` days with a known load.

    The load is 1000 W + 100 W x (hour of day), so the interval energies are known in
    closed form: a 30-minute interval ending in hour h (start in hour h') holds
    (1000 + 100 h') x 0.5 Wh.
    """
    config = MeterConfig(
        serial="MS000001",
        export_expected=True,
        prepaid=PrepaidConfig(initial_credit=Decimal(100)) if prepaid else None,
    )
    meter = Meter(config, commissioned_at=START)
    at = START
    for _ in range(days * 288):
        watts = 1000.0 + 100.0 * at.hour
        at += timedelta(minutes=5)
        meter.step(load(at, watts))
    return meter


def security() -> DlmsSecurity:
    return DlmsSecurity(
        server_system_title=SERVER_TITLE,
        keys=SecurityKeys(BLOCK_CIPHER_KEY, AUTHENTICATION_KEY),
        master_key=MASTER_KEY,
        lls_password=PASSWORD,
    )


class ServerThread:
    """A DLMS server on 127.0.0.1 (free port) in its own event loop thread."""

    def __init__(self, meter: Meter, clock: SimulatedClock | None = None) -> None:
        self.meter = meter
        self.clock = clock or SimulatedClock(meter.now + timedelta(seconds=1))
        self.device = LogicalDevice.for_meter(meter, self.clock, security(), default_clients())
        self.server = DlmsServer({1: self.device})
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(
            self.server.start("127.0.0.1", 0), self.loop
        ).result(10)
        return self

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextmanager
def raw_connection(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        yield sock


def exchange(sock: socket.socket, frame: bytes) -> bytes:
    """Send one wrapper frame, return the APDU of the one frame that answers it."""
    from meterstack.protocols.dlms.wrapper import WrapperFramer

    sock.sendall(frame)
    framer = WrapperFramer()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        frames = framer.feed(chunk)
        if frames:
            return frames[0].apdu
