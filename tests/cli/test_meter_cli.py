"""``meterstack meter run``: configuration, printed parameters, a real process and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.cli.meter import (
    TEST_CLIENT_SIGNING_SCALAR,
    TEST_METER_SIGNING_SCALAR,
    DlmsSettings,
    LinkSettings,
    parse_mqtt_url,
)
from meterstack.core.errors import ConfigError
from meterstack.core.obis import ObisCode
from meterstack.link import (
    CommandBody,
    EventBlock,
    Message,
    MessageKind,
    RegisterRead,
    ResponseBody,
    ResponseStatus,
    SecuritySuite,
    SessionKeys,
    decode,
    encode,
    open_frame,
    seal,
)
from meterstack.link.topics import downlink
from meterstack.meter.events import EventCode
from meterstack.protocols.dlms import SecurityKeys
from meterstack.protocols.dlms.client import ClientSettings, DlmsClient

from ..link.support import Mosquitto


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bounded_run_prints_the_test_keys() -> None:
    result = CliRunner().invoke(
        app, ["meter", "run", "--dlms-port", "0", "--modbus-port", "0", "--duration", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "LLS password 12345678" in result.output
    assert "TEST KEYS" in result.output
    assert "stopped" in result.output


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[dlms]\nsystem_title = "ABC"\n', "system_title"),
        ("[dlms]\nsecurity_suite = 2\n", "security_suite"),
        (f'[firmware]\nvendor_public_key = "{"00" * 64}"\n', "vendor_public_key"),
        ('[link]\nkek = "0011"\n', "kek"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "meter.toml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["meter", "run", "--config", str(path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert field in str(result.exception)


def test_real_process_serves_dlms_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "meter.toml"
    config.write_text(
        '[meter]\nserial = "MS777777"\n[dlms]\nlls_password = "secret12"\nsecurity_suite = 1\n'
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "meter",
            "run",
            "--config",
            str(config),
            "--dlms-port",
            str(port),
            "--modbus-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("running"):
                break

        async def read() -> tuple[str, int]:
            settings = ClientSettings.low(b"secret12")
            async with await DlmsClient.connect("127.0.0.1", port, settings) as client:
                value = await client.get(1, ObisCode.parse("0.0.96.1.0.255"), 2)
            # suite 1 with the published test keys: HLS-ECDSA, then a ciphered read
            dlms = DlmsSettings()
            management = ClientSettings.high_ecdsa(
                bytes.fromhex(dlms.client_system_title),
                SecurityKeys(
                    bytes.fromhex(dlms.block_cipher_key), bytes.fromhex(dlms.authentication_key)
                ),
                1,
                signing_key=ec.derive_private_key(TEST_CLIENT_SIGNING_SCALAR, ec.SECP256R1()),
                server_verify_key=ec.derive_private_key(
                    TEST_METER_SIGNING_SCALAR, ec.SECP256R1()
                ).public_key(),
            )
            async with await DlmsClient.connect("127.0.0.1", port, management) as client:
                suite = await client.get(64, ObisCode.parse("0.0.43.0.0.255"), 3)
            return str(value.value), int(suite.as_int("security_suite"))

        assert asyncio.run(read()) == ("MS777777", 1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_mqtt_url_is_checked() -> None:
    for url, problem in [
        ("http://127.0.0.1:1883", "scheme"),
        ("mqtts://broker:8883", "scheme"),
        ("mqtt://user:pw@broker", "credentials"),
        ("mqtt://broker:99999", "not a URL"),
        ("mqtt://broker/topic", "path"),
    ]:
        result = CliRunner().invoke(app, ["meter", "run", "--mqtt", url, "--duration", "0"])
        assert result.exit_code != 0
        assert isinstance(result.exception, ConfigError)
        assert problem in str(result.exception), (url, result.exception)
    assert parse_mqtt_url("mqtt://broker") == ("broker", 1883)
    assert parse_mqtt_url("mqtt://10.0.0.2:1884") == ("10.0.0.2", 1884)


def _open(frame: bytes, keys: SessionKeys) -> Message:
    _, plaintext = open_frame(frame, keys)
    return decode(plaintext)


def test_mqtt_reports_through_mosquitto(tmp_path: Path) -> None:
    """A real process reports over MQTT to a Mosquitto of our own: the daily register
    snapshot, the event a DLMS client caused, and the answer to a head-end command."""
    broker = Mosquitto(tmp_path)
    broker.start()
    serial = "MS777778"
    link = LinkSettings()
    keys = SessionKeys(
        SecuritySuite.AES_128_GCM,
        link.key_id,
        bytes.fromhex(link.encryption_key),
        bytes.fromhex(link.authentication_key),
    )
    dlms_port = _free_port()
    config = tmp_path / "meter.toml"
    config.write_text(
        f'[meter]\nserial = "{serial}"\n[load]\nstep_s = 0.2\n'
        f'[link]\ndatabase = "{tmp_path / "link.db"}"\n'
    )

    async def scenario() -> dict[str, list[Message]]:
        seen: dict[str, list[Message]] = {}
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-headend") as mqtt:
            await mqtt.subscribe(f"meterstack/v1/{serial}/up/#", qos=1)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from meterstack.cli import main; main()",
                "meter",
                "run",
                "--config",
                str(config),
                "--dlms-port",
                str(dlms_port),
                "--modbus-port",
                "0",
                "--mqtt",
                f"mqtt://127.0.0.1:{broker.port}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert process.stdout is not None
            try:
                banner = []
                while not banner or not banner[-1].startswith("running"):
                    line = await asyncio.wait_for(process.stdout.readline(), 20)
                    assert line, "".join(banner)
                    banner.append(line.decode())
                assert any(f"MQTT to 127.0.0.1:{broker.port}" in b for b in banner)

                async def until(kind: str, test: Callable[[Message], bool]) -> Message:
                    async for received in mqtt.messages:
                        topic = received.topic.value
                        assert isinstance(received.payload, bytes)
                        message = _open(received.payload, keys)
                        seen.setdefault(topic.rsplit("/", 1)[1], []).append(message)
                        if topic.endswith(f"/up/{kind}") and test(message):
                            return message
                    raise AssertionError("the subscription ended")

                snapshot = await asyncio.wait_for(until("registers", lambda m: True), 20)
                assert isinstance(snapshot.body, RegisterRead)
                assert snapshot.meter == serial
                # a DLMS client disconnects the supply: the event goes up over MQTT
                settings = ClientSettings.low(b"12345678")
                async with await DlmsClient.connect("127.0.0.1", dlms_port, settings) as meter:
                    await meter.disconnect()
                events = await asyncio.wait_for(
                    until(
                        "events",
                        lambda m: (
                            isinstance(m.body, EventBlock)
                            and any(r.code == EventCode.REMOTE_DISCONNECTION for r in m.body.rows)
                        ),
                    ),
                    20,
                )
                assert isinstance(events.body, EventBlock)
                assert events.body.log == "disconnector"
                # the head-end commands a reconnection over MQTT; the meter answers
                now_ms = round(time.time() * 1000)
                command = Message(
                    MessageKind.COMMAND,
                    serial,
                    1,
                    1,
                    now_ms,
                    CommandBody(77, "remote_reconnect", {}, now_ms + 60_000),
                )
                frame = seal(encode(command), keys, system_title=b"MSHE0001", invocation_counter=1)
                await mqtt.publish(downlink(serial, MessageKind.COMMAND), frame, qos=1)
                response = await asyncio.wait_for(
                    until("response", lambda m: isinstance(m.body, ResponseBody)), 20
                )
                assert isinstance(response.body, ResponseBody)
                assert response.body.command_id == 77
                assert response.body.status == ResponseStatus.OK
                assert "ready_for_reconnection" in response.body.detail
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        broker.stop()
    assert {"registers", "events", "response"} <= set(seen)
