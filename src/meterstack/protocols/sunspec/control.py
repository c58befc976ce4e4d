"""Export control wired to a SunSpec inverter over Modbus TCP (the real-time loop).

Every period: take the meter's net power (a callable the caller wires to its meter), read
the inverter's output (model 103 ``W``), run the pure controller, range-check and encode
``WMaxLimPct`` (0-10000 at scale -2), and write it with the connection control ``Conn``,
its revert timeout and the enable flag (model 123) in one function-16 request. Transitions
go to the meter's event log when a meter is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pymodbus.client import AsyncModbusTcpClient

from meterstack.core.errors import InvalidInputError
from meterstack.meter import Meter
from meterstack.meter.export_control import (
    ExportControlConfig,
    ExportController,
    MeterReading,
    Setpoint,
)
from meterstack.protocols.modbus.reader import ModbusReadError
from meterstack.protocols.modbus.registers import decode_value, encode_value
from meterstack.protocols.sunspec.inverter import (
    CONN,
    MODEL_103_AT,
    MODEL_123_AT,
    NOT_IMPLEMENTED_INT16,
)

W_ADDRESS = MODEL_103_AT + 2 + 12


def encode_setpoint(setpoint: Setpoint) -> list[int]:
    """Registers Conn .. WMaxLim_Ena (offsets 2-7 of model 123), range-checked.

    Raises
    ------
    InvalidInputError
        ``limit_pct`` outside 0-100 % or a revert timeout outside 0-65535 s: refused here,
        never encoded (an unsigned register would wrap a negative value round).
    """
    if not 0.0 <= setpoint.limit_pct <= 100.0:  # also refuses NaN
        raise InvalidInputError("limit_pct", setpoint.limit_pct, "0 to 100 % of WMax")
    if not 0.0 <= setpoint.revert_timeout_s <= 65535.0:
        raise InvalidInputError(
            "revert_timeout_s", setpoint.revert_timeout_s, "0 to 65535 s (WMaxLimPct_RvrtTms)"
        )
    return [
        1 if setpoint.connect else 0,  # Conn: 0 opens the output contactor
        *encode_value(setpoint.limit_pct, "uint16", scale=-2),
        0,  # WMaxLimPct_WinTms: at once
        *encode_value(setpoint.revert_timeout_s, "uint16"),
        0,  # WMaxLimPct_RmpTms: the inverter's own ramp
        1,  # WMaxLim_Ena
    ]


def output_w(registers: Sequence[int]) -> float | None:
    """Model 103 ``W`` and ``W_SF`` as watts; ``None`` where the inverter marks either
    not implemented (0x8000)."""
    raw, scale = registers[0], registers[1]
    if NOT_IMPLEMENTED_INT16 in (raw, scale):
        return None
    return float(decode_value([raw], "int16", scale=int(decode_value([scale], "int16"))))


async def run_export_control(
    host: str,
    port: int,
    config: ExportControlConfig,
    net_power_w: Callable[[], float | None],
    *,
    duration_s: float | None = None,
    meter: Meter | None = None,
    unit_id: int = 1,
) -> list[tuple[float, float]]:
    """Run the loop (for ``duration_s``, or until cancelled); return ``(t [s], export [W])``
    at each tick with a reading. ``net_power_w`` returns ``None`` while the meter reading
    is unavailable."""
    controller = ExportController(config)
    client = AsyncModbusTcpClient(host, port=port, timeout=1.0, retries=0)
    if not await client.connect():
        raise ModbusReadError(f"cannot reach the inverter at {host}:{port}")
    exports: list[tuple[float, float]] = []
    start = time.monotonic()
    last_reading: MeterReading | None = None
    try:
        while duration_s is None or time.monotonic() - start < duration_s:
            tick = time.monotonic()
            now = tick - start
            net = net_power_w()
            if net is not None:
                last_reading = MeterReading(now, net)
                exports.append((now, max(0.0, -net)))
            output = await client.read_holding_registers(W_ADDRESS, count=2, device_id=unit_id)
            generation = None if output.isError() else output_w(output.registers)
            setpoint = controller.update(now, last_reading, generation)
            written = await client.write_registers(
                MODEL_123_AT + 2 + CONN, encode_setpoint(setpoint), device_id=unit_id
            )
            if written.isError():
                raise ModbusReadError(f"the inverter refused the setpoint {setpoint.limit_pct}")
            if meter is not None:
                for code, detail in setpoint.events:
                    meter.record_event(code, max(datetime.now(UTC), meter.now), detail)
            await asyncio.sleep(max(0.0, config.period_s - (time.monotonic() - tick)))
    finally:
        client.close()
    return exports
