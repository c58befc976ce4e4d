"""Modbus TCP/RTU: the virtual meter's register map and the head-end's map-driven reader."""

from meterstack.protocols.modbus.meter_map import METER_REGISTERS, meter_registers
from meterstack.protocols.modbus.reader import ModbusMeterReader, ModbusReadError
from meterstack.protocols.modbus.registers import (
    RegisterDefinition,
    RegisterMap,
    decode_value,
    encode_value,
)
from meterstack.protocols.modbus.server import MeterModbusContext, rtu_server, tcp_server

__all__ = [
    "METER_REGISTERS",
    "MeterModbusContext",
    "ModbusMeterReader",
    "ModbusReadError",
    "RegisterDefinition",
    "RegisterMap",
    "decode_value",
    "encode_value",
    "meter_registers",
    "rtu_server",
    "tcp_server",
]
