"""The meter's Modbus map over TCP and RTU, the map-file reader, and refused writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tty
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from meterstack.core.errors import ConfigError, InvalidInputError
from meterstack.core.time import SimulatedClock
from meterstack.meter import ControlState, LimiterConfig, Meter, MeterConfig
from meterstack.protocols.dlms.cosem.base import MeterBinding
from meterstack.protocols.modbus import (
    ModbusMeterReader,
    ModbusReadError,
    RegisterMap,
    decode_value,
    encode_value,
    rtu_server,
    tcp_server,
)

from .support import START, load

MAP_FILE = (
    Path(__file__).resolve().parents[2]
    / "src/meterstack/protocols/modbus/maps/meterstack-meter.toml"
)


def make_meter() -> Meter:
    config = MeterConfig(serial="MS000042", limiter=LimiterConfig(threshold_w=8000))
    meter = Meter(config, commissioned_at=START)
    at = START
    for step in range(200):
        at += timedelta(minutes=5)
        meter.step(load(at, 1500.0 + 10 * step))
    return meter


async def _with_tcp(meter: Meter, body: Any) -> Any:
    binding = MeterBinding(meter, SimulatedClock(meter.now + timedelta(seconds=1)))
    server = tcp_server(binding, "127.0.0.1", 0)
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await body(port)
    finally:
        await server.shutdown()


def test_map_file_reader_reads_the_meter_over_tcp() -> None:
    meter = make_meter()
    register_map = RegisterMap.load(MAP_FILE)

    async def body(port: int) -> dict[str, Any]:
        async with ModbusMeterReader("127.0.0.1", port, register_map) as reader:
            return await reader.read()

    readings = asyncio.run(_with_tcp(meter, body))
    assert readings["serial"] == "MS000042"
    assert readings["active_energy_import"] == meter.registers.a_plus
    assert readings["reactive_energy_import"] == meter.registers.r_plus
    assert readings["active_energy_import_rate_1"] == meter.registers.a_plus_rate[1]
    assert readings["maximum_demand"] == round(meter.demand.maximum_w)
    assert readings["average_voltage"] == pytest.approx(230.0)
    assert readings["relay_control_state"] == ControlState.CONNECTED
    assert readings["limiter_threshold"] == 8000


def test_relay_and_limiter_writes_and_refusals() -> None:
    meter = make_meter()

    async def body(port: int) -> None:
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        await client.connect()
        assert not (await client.write_register(200, 0, device_id=1)).isError()
        assert meter.relay.state == ControlState.DISCONNECTED
        bad = await client.write_register(200, 7, device_id=1)
        assert bad.isError()
        assert bad.exception_code == 3
        words = [0x0000, 5000]
        assert not (await client.write_registers(202, words, device_id=1)).isError()
        assert meter.limiter is not None
        assert meter.limiter.threshold_w == 5000
        # 2 000 000 W and 0 W are out of range; a lone high word is half a value
        for values in ([0x001E, 0x8480], [0, 0]):
            refused = await client.write_registers(202, values, device_id=1)
            assert refused.isError()
            assert refused.exception_code == 3
        half = await client.write_register(202, 1, device_id=1)
        assert half.isError()
        assert half.exception_code == 3
        read_only = await client.write_register(100, 1, device_id=1)
        assert read_only.isError()
        assert read_only.exception_code == 2
        outside = await client.read_holding_registers(5000, count=2, device_id=1)
        assert outside.isError()
        assert outside.exception_code == 2
        assert meter.limiter.threshold_w == 5000
        # and the server keeps serving
        energy = await client.read_input_registers(100, count=4, device_id=1)
        assert decode_value(energy.registers, "uint64") == meter.registers.a_plus
        client.close()

    asyncio.run(_with_tcp(meter, body))


def _crc16_modbus(frame: bytes) -> bytes:
    """CRC-16/MODBUS (reflected 0xA001, initial 0xFFFF), low byte first."""
    crc = 0xFFFF
    for octet in frame:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def test_rtu_over_a_pseudo_terminal() -> None:
    meter = make_meter()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)

    async def exchange(request: bytes, length: int) -> bytes:
        os.write(master, request + _crc16_modbus(request))
        reply = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(reply) < length and loop.time() < deadline:
            await asyncio.sleep(0.02)
            with contextlib.suppress(BlockingIOError):
                reply += os.read(master, 256)
        return reply

    async def main() -> tuple[bytes, bytes, bytes]:
        binding = MeterBinding(meter, SimulatedClock(meter.now + timedelta(seconds=1)))
        server = rtu_server(binding, path, unit_id=1, baudrate=115200)
        await server.serve_forever(background=True)
        try:
            # an out-of-range relay command (7) written with function 6
            refused = await exchange(bytes([1, 6]) + struct.pack(">HH", 200, 7), 5)
            await asyncio.sleep(0.05)  # RTU inter-frame silence
            reply = await exchange(bytes([1, 4]) + struct.pack(">HH", 100, 4), 13)
            await asyncio.sleep(0.05)
            # a frame with a corrupt CRC is ignored (no reply), the next one is served
            bad = bytes([1, 4]) + struct.pack(">HH", 100, 4)
            os.write(master, bad + b"\x00\x00")
            await asyncio.sleep(0.3)
            with contextlib.suppress(BlockingIOError):
                assert os.read(master, 256) == b""
            return refused, reply, await exchange(bytes([1, 4]) + struct.pack(">HH", 130, 1), 7)
        finally:
            await server.shutdown()

    os.set_blocking(master, False)
    try:
        refused, reply, voltage = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    # exception response: function | 0x80, code 03 illegal data value [Modbus V1.1b3, 7]
    assert refused[:3] == bytes([1, 0x86, 3])
    assert refused[-2:] == _crc16_modbus(refused[:-2])
    assert meter.relay.state == ControlState.CONNECTED
    assert voltage[:3] == bytes([1, 4, 2])
    assert struct.unpack(">H", voltage[3:5])[0] == 2300  # 230.0 V at scale -1
    assert reply[:3] == bytes([1, 4, 8])
    assert reply[-2:] == _crc16_modbus(reply[:-2])
    assert struct.unpack(">Q", reply[3:11])[0] == meter.registers.a_plus


@given(
    st.sampled_from(["uint16", "int16", "uint32", "int32", "uint64", "int64"]),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(["big", "little"]),
)
def test_encode_decode_round_trip_or_refuse(kind: str, value: int, order: str) -> None:
    try:
        words = encode_value(value, kind, word_order=order)
    except InvalidInputError:
        bits = int(kind.removeprefix("u").removeprefix("int"))
        low, high = (
            (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
        assert not low <= value <= high  # refused only when it does not fit: no wrap-around
        return
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_value(words, kind, word_order=order) == value


def test_float32_matches_ieee754() -> None:
    words = encode_value(230.5, "float32")
    assert words == [0x4366, 0x8000]
    assert decode_value([0x8000, 0x4366], "float32", word_order="little") == 230.5


def test_third_party_map_with_little_word_order(tmp_path: Path) -> None:
    path = tmp_path / "meter.yaml"
    path.write_text(
        "meter: {name: other, word_order: little}\n"
        "registers:\n"
        "  - {name: voltage, address: 0, function: input, type: float32, unit: V}\n"
        "  - {name: energy, address: 2, function: input, type: uint32, scale: 1, unit: Wh}\n"
    )
    register_map = RegisterMap.load(path)
    assert register_map.blocks("input")[0][:2] == (0, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[meter]\n", "no \\[\\[registers\\]\\]"),
        ("[[registers]]\nname='a'\naddress=70000\ntype='uint16'\n", "address"),
        ("[[registers]]\nname='a'\naddress=1\ntype='uint24'\n", "type"),
        ("[[registers]]\nname='a'\naddress=1\ntype='string'\n", "length"),
        ("[[registers]]\nname='a'\naddress=1\ntype='uint16'\nobis='x'\n", "obis"),
        ("[[registers]]\nname='a'\naddress=1\ntype='uint16'\nfunction='coil'\n", "function"),
        ("not toml [", "not valid"),
    ],
)
def test_bad_map_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        RegisterMap.load(path)


#: An Eastron SDM120-style single-phase meter: input registers, IEEE-754 float32, most
#: significant word first, PDU addresses from the maker's published map (30001 voltage,
#: 30007 current, 30013 active power, 30071 frequency, 30073 import active energy [kWh]).
SDM120_MAP = """
[meter]
name = "SDM120-style meter"
word_order = "big"

[[registers]]
name = "voltage"
address = 0
function = "input"
type = "float32"
unit = "V"

[[registers]]
name = "current"
address = 6
function = "input"
type = "float32"
unit = "A"

[[registers]]
name = "active_power"
address = 12
function = "input"
type = "float32"
unit = "W"

[[registers]]
name = "frequency"
address = 70
function = "input"
type = "float32"
unit = "Hz"

[[registers]]
name = "active_energy_import"
address = 72
function = "input"
type = "float32"
unit = "kWh"
obis = "1.0.1.8.0.255"
"""

#: A meter that swaps words: 32-bit counters in 0.01 kWh in holding registers, least
#: significant word first, a signed power and an ASCII serial number.
SWAPPED_MAP = """
meter: {name: swapped-word meter, word_order: little}
registers:
  - {name: serial, address: 10, function: holding, type: string, length: 8}
  - {name: energy_import, address: 20, function: holding, type: uint32, scale: -2, unit: kWh}
  - {name: energy_export, address: 22, function: holding, type: uint32, scale: -2, unit: kWh}
  - {name: power, address: 24, function: holding, type: int32, unit: W}
"""


def _words_big(fmt: str, value: float | int) -> list[int]:
    """A value packed with :mod:`struct` (big-endian), as 16-bit words, high word first."""
    octets = struct.pack(">" + fmt, value)
    return [int.from_bytes(octets[i : i + 2], "big") for i in range(0, len(octets), 2)]


async def _third_party(holding: list[int], inputs: list[int], body: Any) -> Any:
    """A plain pymodbus device (not our server) holding the given register images."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    def block(image: list[int]) -> list[SimData]:
        return [SimData(0, values=image, datatype=DataType.REGISTERS)]

    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    device = SimDevice(1, simdata=(bits, bits, block(holding), block(inputs)))
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await body(port)
    finally:
        await server.shutdown()


def test_head_end_reads_a_third_party_float_meter_by_its_map_file(tmp_path: Path) -> None:
    """The registers are filled with struct-packed IEEE-754 values, independently of our
    encoder, in a plain pymodbus device; the reader gets them back by the map file."""
    values = {0: 231.7, 6: 4.25, 12: -981.5, 70: 49.98, 72: 12345.67}
    image = [0] * 80
    for address, value in values.items():
        image[address : address + 2] = _words_big("f", value)
    path = tmp_path / "sdm120.toml"
    path.write_text(SDM120_MAP)
    register_map = RegisterMap.load(path)
    # contiguous registers are read together: 70-73 in one request
    assert [b[:2] for b in register_map.blocks("input")] == [(0, 2), (6, 2), (12, 2), (70, 4)]

    async def body(port: int) -> tuple[dict[str, Any], str]:
        async with ModbusMeterReader("127.0.0.1", port, register_map) as reader:
            readings = await reader.read()
        # a map that names a register the meter does not have: a typed error
        bad = tmp_path / "bad.toml"
        bad.write_text("[[registers]]\nname='x'\naddress=500\nfunction='input'\ntype='uint16'\n")
        async with ModbusMeterReader("127.0.0.1", port, RegisterMap.load(bad)) as reader:
            with pytest.raises(ModbusReadError) as refused:
                await reader.read()
        return readings, str(refused.value)

    readings, refusal = asyncio.run(_third_party([0], image, body))
    for name, address in zip(
        ("voltage", "current", "active_power", "frequency", "active_energy_import"),
        values,
        strict=True,
    ):
        # float32 holds about 7 significant digits
        assert readings[name] == pytest.approx(values[address], rel=1e-6), name
    assert "500" in refusal


def test_head_end_reads_a_swapped_word_meter_by_its_map_file(tmp_path: Path) -> None:
    image = [0] * 30
    serial = b"SN-00417"
    image[10:14] = [int.from_bytes(serial[i : i + 2], "big") for i in range(0, 8, 2)]
    for address, fmt, raw in ((20, "I", 123_456_789), (22, "I", 70_000), (24, "i", -2_500)):
        image[address : address + 2] = list(reversed(_words_big(fmt, raw)))  # low word first
    path = tmp_path / "swapped.yaml"
    path.write_text(SWAPPED_MAP)
    register_map = RegisterMap.load(path)

    async def body(port: int) -> dict[str, Any]:
        async with ModbusMeterReader("127.0.0.1", port, register_map) as reader:
            return await reader.read()

    readings = asyncio.run(_third_party(image, [0], body))
    assert readings["serial"] == "SN-00417"
    assert readings["energy_import"] == pytest.approx(1_234_567.89)
    assert readings["energy_export"] == pytest.approx(700.0)
    assert readings["power"] == -2_500
