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

    async def main() -> bytes:
        binding = MeterBinding(meter, SimulatedClock(meter.now + timedelta(seconds=1)))
        server = rtu_server(binding, path, unit_id=1, baudrate=115200)
        await server.serve_forever(background=True)
        try:
            request = bytes([1, 4]) + struct.pack(">HH", 100, 4)
            os.write(master, request + _crc16_modbus(request))
            reply = b""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while len(reply) < 13 and loop.time() < deadline:
                await asyncio.sleep(0.02)
                with contextlib.suppress(BlockingIOError):
                    reply += os.read(master, 256)
            return reply
        finally:
            await server.shutdown()

    os.set_blocking(master, False)
    try:
        reply = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
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
