"""The head-end's reader of third-party Modbus meters, driven by a register-map file.

```python
meter_map = RegisterMap.load("sdm630.toml")
async with ModbusMeterReader("127.0.0.1", 502, meter_map, unit_id=1) as reader:
    readings = await reader.read()   # {"active_energy_import": 123456.0, ...}
```

Registers are read in as few requests as the map allows (contiguous runs of at most 125
registers, functions 3 and 4) and decoded with their type, word order and scale.
"""

from __future__ import annotations

from types import TracebackType

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from meterstack.core.errors import MeterstackError
from meterstack.protocols.modbus.registers import RegisterMap, decode_value, encode_value


class ModbusReadError(MeterstackError):
    """The meter answered a read or write with an exception, or did not answer."""

    hint = "check the unit id, the register map and the meter's connection"


class ModbusMeterReader:
    """Reads one Modbus TCP meter by its register map."""

    def __init__(
        self,
        host: str,
        port: int,
        register_map: RegisterMap,
        *,
        unit_id: int = 1,
        timeout_s: float = 3.0,
    ) -> None:
        self.register_map = register_map
        self.unit_id = unit_id
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=1)

    async def __aenter__(self) -> ModbusMeterReader:
        if not await self._client.connect():
            raise ModbusReadError(f"cannot connect to the Modbus meter at {self._client}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._client.close()

    async def read(self) -> dict[str, float | int | str]:
        """Every register of the map, by name, as quantities in their units."""
        readings: dict[str, float | int | str] = {}
        order = self.register_map.word_order
        for function in ("holding", "input"):
            for start, count, members in self.register_map.blocks(function):
                words = await self._read(function, start, count)
                for definition in members:
                    offset = definition.address - start
                    readings[definition.name] = decode_value(
                        words[offset : offset + definition.count],
                        definition.kind,
                        scale=definition.scale,
                        word_order=order,
                    )
        return readings

    async def _read(self, function: str, address: int, count: int) -> list[int]:
        try:
            if function == "holding":
                response = await self._client.read_holding_registers(
                    address, count=count, device_id=self.unit_id
                )
            else:
                response = await self._client.read_input_registers(
                    address, count=count, device_id=self.unit_id
                )
        except ModbusException as exc:
            raise ModbusReadError(f"reading {count} registers at {address}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise ModbusReadError(
                f"reading {count} {function} registers at {address}: exception {code}"
            )
        return list(response.registers)

    async def write(self, name: str, value: float | int) -> None:
        """Write a writable register of the map (function 16)."""
        matches = [d for d in self.register_map.registers if d.name == name]
        if not matches or not matches[0].writable:
            raise ModbusReadError(f"{name!r} is not a writable register of the map")
        definition = matches[0]
        words = encode_value(
            value, definition.kind, scale=definition.scale, word_order=self.register_map.word_order
        )
        response = await self._client.write_registers(
            definition.address, words, device_id=self.unit_id
        )
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise ModbusReadError(f"writing {name}: exception {code}")
