"""The simulated inverter on Modbus TCP (SunSpec register map), advancing in real time.

Writes reach model 123's controls only; every value is range-checked first: WMaxLimPct
above 10000 (100.00 %), an enable or connect flag other than 0 or 1, or a write to a
read-only register is refused with Modbus exception 03 or 02, and the inverter is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer

from meterstack.protocols.sunspec.inverter import (
    BASE_ADDRESS,
    CONN,
    END_AT,
    MODEL_123_AT,
    WMAXLIM_ENA,
    WMAXLIMPCT,
    WMAXLIMPCT_RMPTMS,
    WMAXLIMPCT_RVRTTMS,
    WMAXLIMPCT_WINTMS,
    SimulatedInverter,
)

_WRITABLE = {
    CONN,
    WMAXLIMPCT,
    WMAXLIMPCT_WINTMS,
    WMAXLIMPCT_RVRTTMS,
    WMAXLIMPCT_RMPTMS,
    WMAXLIM_ENA,
}


class InverterContext(ModbusServerContext):
    """A pymodbus datastore over a :class:`SimulatedInverter`."""

    def __init__(self, inverter: SimulatedInverter) -> None:
        self.old_simulator = True
        self.simdevices = []
        self._devices = {}
        self.inverter = inverter

    def device_ids(self) -> list[int]:
        return [1]

    async def async_getValues(  # noqa: N802 - pymodbus's name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> Any:
        if func_code not in (3, 4, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        if address < BASE_ADDRESS or address + count > END_AT + 2:
            return ExcCodes.ILLEGAL_ADDRESS
        image = self.inverter.registers()
        return [image.get(a, 0) for a in range(address, address + count)]

    async def async_setValues(  # noqa: N802 - pymodbus's name
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> Any:
        first = MODEL_123_AT + 2
        inverter = self.inverter
        image = inverter.registers()
        points: dict[int, int] = {}
        for index, value in enumerate(values):
            offset = address + index - first
            if offset not in _WRITABLE:
                if image.get(address + index) == int(value):
                    continue  # rewriting a read-only value unchanged is harmless
                return ExcCodes.ILLEGAL_ADDRESS
            points[offset] = int(value)
        if points.get(WMAXLIMPCT, 0) > 10000:
            return ExcCodes.ILLEGAL_VALUE
        for flag in (CONN, WMAXLIM_ENA):
            if points.get(flag, 0) not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
        current = image
        pct = points.get(WMAXLIMPCT, current[first + WMAXLIMPCT]) / 100.0
        enabled = points.get(WMAXLIM_ENA, current[first + WMAXLIM_ENA]) == 1
        revert = float(points.get(WMAXLIMPCT_RVRTTMS, current[first + WMAXLIMPCT_RVRTTMS]))
        if CONN in points:
            inverter.connect(points[CONN] == 1)
        if points.keys() & {WMAXLIMPCT, WMAXLIM_ENA, WMAXLIMPCT_RVRTTMS}:
            inverter.command(pct, enabled, revert)
        return None


class InverterServer:
    """Serve ``inverter`` on Modbus TCP and advance it with the wall clock every ``tick_s``."""

    def __init__(self, inverter: SimulatedInverter, tick_s: float = 0.05) -> None:
        self.inverter = inverter
        self.tick_s = tick_s
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = ModbusTcpServer(InverterContext(self.inverter), address=(host, port))
        await self._server.serve_forever(background=True)
        self._task = asyncio.create_task(self._advance())
        transport: Any = self._server.transport
        return int(transport.sockets[0].getsockname()[1])

    async def _advance(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            self.inverter.step(now - last)
            last = now

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
