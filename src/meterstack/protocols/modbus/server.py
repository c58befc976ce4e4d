"""The virtual meter as a Modbus server: TCP, and RTU over a serial line (RS-485).

Reads (functions 3 and 4) return the meter's values at the moment of the request, from
:mod:`~meterstack.protocols.modbus.meter_map`. Writes (functions 6 and 16) reach only the
two command registers, each range-checked before the meter sees it:

* 200 ``relay_command`` (uint16): 0 remote disconnect, 1 remote reconnect;
* 202 ``limiter_threshold`` (uint32, two registers in one function-16 write) [W],
  1 to 1 000 000.

Anything else is refused with the protocol's exception response: 02 illegal data address
(an address not in the map, or a write to a read-only register), 03 illegal data value (a
value out of range, half of a 32-bit register), 04 server device failure (the meter refused
the command in its current state). The server keeps serving.

References
----------
.. [1] Modbus Application Protocol Specification V1.1b3, 7 "MODBUS Exception Responses".
.. [2] Modbus over Serial Line Specification and Implementation Guide V1.02 (RTU framing,
   RS-485).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from meterstack.core.errors import MeterstackError
from meterstack.protocols.dlms.cosem.base import MeterBinding
from meterstack.protocols.modbus.meter_map import (
    LIMITER_THRESHOLD,
    MAX_THRESHOLD_W,
    MIN_THRESHOLD_W,
    RELAY_COMMAND,
    meter_registers,
    register_image,
)

log = logging.getLogger(__name__)

_READ_FUNCTIONS = (3, 4)
_WRITE_FUNCTIONS = (6, 16)


class MeterModbusContext(ModbusServerContext):
    """A pymodbus datastore that reads and commands a meter (one unit id, any id answers)."""

    def __init__(self, binding: MeterBinding, unit_id: int = 1) -> None:
        # The base class's storage is not used: values come from the meter on demand.
        self.old_simulator = True
        self.simdevices = []
        self._devices = {}
        self.binding = binding
        self.unit_id = unit_id
        self.registers = meter_registers(binding.meter)
        self._addresses = {
            address
            for register in self.registers
            for address in range(
                register.definition.address,
                register.definition.address + register.definition.count,
            )
        }

    def device_ids(self) -> list[int]:
        return [self.unit_id]

    async def async_getValues(  # noqa: N802 - pymodbus's name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> Any:
        if func_code not in _READ_FUNCTIONS + _WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        wanted = range(address, address + count)
        allowed = self._addresses
        if func_code != 4:  # holding registers, and the read-back after a write
            allowed = allowed | self._command_addresses()
        if any(a not in allowed for a in wanted):
            return ExcCodes.ILLEGAL_ADDRESS
        image = register_image(self.binding.meter, self.registers)
        image.update(self._command_image())
        return [image.get(a, 0) for a in wanted]

    def _command_addresses(self) -> set[int]:
        return {RELAY_COMMAND, LIMITER_THRESHOLD, LIMITER_THRESHOLD + 1}

    def _command_image(self) -> dict[int, int]:
        meter = self.binding.meter
        threshold = 0 if meter.limiter is None else round(meter.limiter.threshold_w)
        return {
            RELAY_COMMAND: int(meter.relay.output_state),
            LIMITER_THRESHOLD: threshold >> 16,
            LIMITER_THRESHOLD + 1: threshold & 0xFFFF,
        }

    async def async_setValues(  # noqa: N802 - pymodbus's name
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> Any:
        words = [int(v) for v in values]
        if func_code not in _WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        meter = self.binding.meter
        try:
            if address == RELAY_COMMAND and len(words) == 1:
                if words[0] not in (0, 1):
                    return ExcCodes.ILLEGAL_VALUE
                at = self.binding.now()
                if words[0] == 0:
                    meter.remote_disconnect(at)
                else:
                    meter.remote_reconnect(at)
                return None
            if address == LIMITER_THRESHOLD:
                if len(words) != 2:
                    return ExcCodes.ILLEGAL_VALUE  # half of a 32-bit value
                watts = (words[0] << 16) | words[1]
                if not MIN_THRESHOLD_W <= watts <= MAX_THRESHOLD_W:
                    return ExcCodes.ILLEGAL_VALUE
                if meter.limiter is None:
                    return ExcCodes.DEVICE_FAILURE
                meter.set_limiter_threshold(float(watts), self.binding.now())
                return None
        except MeterstackError as exc:
            log.info("Modbus command refused: %s", exc)
            return ExcCodes.DEVICE_FAILURE
        if address == LIMITER_THRESHOLD + 1 or (address == RELAY_COMMAND and len(words) > 1):
            return ExcCodes.ILLEGAL_VALUE
        return ExcCodes.ILLEGAL_ADDRESS


def tcp_server(binding: MeterBinding, host: str, port: int, unit_id: int = 1) -> ModbusTcpServer:
    """A Modbus TCP server for the meter; start it with ``await server.serve_forever()``."""
    return ModbusTcpServer(MeterModbusContext(binding, unit_id), address=(host, port))


def rtu_server(
    binding: MeterBinding, port: str, unit_id: int = 1, baudrate: int = 9600
) -> ModbusSerialServer:
    """A Modbus RTU server on serial ``port`` (an RS-485 adapter or a pseudo-terminal)."""
    return ModbusSerialServer(
        MeterModbusContext(binding, unit_id),
        framer=FramerType.RTU,
        port=port,
        baudrate=baudrate,
    )
