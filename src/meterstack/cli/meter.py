"""``meterstack meter run``: one virtual meter on the network (DLMS/COSEM, Modbus TCP, MQTT).

The meter's configuration, its DLMS association parameters and its link credentials come
from a TOML file::

    [meter]                 # any MeterConfig field
    serial = "MS000001"

    [dlms]
    server_sap = 1
    public_client = 16      # lowest-level security, read only
    reader_client = 17      # low-level security (password)
    management_client = 1   # HLS-GMAC with suite 0 (HLS-ECDSA with suite 1)
    lls_password = "12345678"
    system_title = "4D53543030303031"          # hex, 8 octets
    block_cipher_key = "000102030405060708090A0B0C0D0E0F"
    authentication_key = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    master_key = "00112233445566778899AABBCCDDEEFF"
    security_suite = 0      # 1: HLS-ECDSA and key agreement
    signing_key = "..."     # suite 1: the meter's P-256 private key (hex, 32 octets)
    client_public_key = "..."   # suite 1: the management client's public key (x || y)

    [link]                  # with --mqtt (meterstack.link)
    database = ":memory:"   # the link's outbox and counters (a file survives restarts)
    kek = "..."             # hex, 16 octets each
    encryption_key = "..."
    authentication_key = "..."
    key_id = 1

    [firmware]
    vendor_public_key = "..."   # P-256 x || y: images must be signed with its private key

    [load]
    power_w = 1500.0        # what the virtual meter measures
    step_s = 1.0

The defaults are TEST KEYS, published here: a test harness only. They are printed at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from meterstack.cli.app import app
from meterstack.core.aio import wait_event
from meterstack.core.errors import ConfigError
from meterstack.core.time import SystemClock
from meterstack.link import (
    CommunicationModule,
    FirmwareSlot,
    LinkDatabase,
    MeterCredentials,
    SecuritySuite,
    SessionKeys,
    system_title_for,
)
from meterstack.link.topics import ROOT, downlink_filter
from meterstack.link.transports import MqttTransport
from meterstack.meter import Measurement, Meter, MeterConfig
from meterstack.protocols.dlms import (
    ClientPolicy,
    DlmsSecurity,
    DlmsServer,
    LogicalDevice,
    Pusher,
    SecurityKeys,
    default_clients,
)
from meterstack.protocols.dlms.security import public_key_from_octets, public_key_octets
from meterstack.protocols.modbus import tcp_server

meter_app = typer.Typer(
    name="meter", help="Run virtual meters on the network.", no_args_is_help=True
)
app.add_typer(meter_app, name="meter")

#: Private scalars of the published TEST keys (suite 1 and firmware), so that a test
#: client and a test vendor can use them. Never for a real meter.
TEST_METER_SIGNING_SCALAR = 0x5EC0DE5
TEST_CLIENT_SIGNING_SCALAR = 0xC11E47
TEST_VENDOR_SCALAR = 0xF1A3E


def _test_public(scalar: int) -> str:
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    return public_key_octets(key.public_key()).hex().upper()


def _hex(value: str, size: int, name: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not hexadecimal") from exc
    if len(raw) != size:
        raise ValueError(f"{name} must be {size} octets")
    return value


def _public_key(value: str) -> str:
    _hex(value, 64, "public key")
    try:
        public_key_from_octets(bytes.fromhex(value))
    except ValueError as exc:  # ProtocolError is an InvalidInputError (ValueError)
        raise ValueError("not a point on P-256") from exc
    return value


class DlmsSettings(BaseModel):
    """DLMS association parameters. The defaults are TEST KEYS, never for a real meter."""

    model_config = ConfigDict(extra="forbid")

    server_sap: int = Field(default=1, ge=1, le=0x3FFF)
    public_client: int = Field(default=16, ge=1, le=0x7F)
    reader_client: int = Field(default=17, ge=1, le=0x7F)
    management_client: int = Field(default=1, ge=1, le=0x7F)
    lls_password: str = "12345678"
    system_title: str = "4D53543030303031"  # "MST00001"
    block_cipher_key: str = "000102030405060708090A0B0C0D0E0F"
    authentication_key: str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    master_key: str = "00112233445566778899AABBCCDDEEFF"
    security_suite: int = Field(default=0, ge=0, le=1)
    signing_key: str = f"{TEST_METER_SIGNING_SCALAR:064X}"
    client_public_key: str = _test_public(TEST_CLIENT_SIGNING_SCALAR)
    client_system_title: str = "484541444E443031"  # "HEADND01", the suite 1 client

    @field_validator("system_title", "client_system_title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _hex(value, 8, "system_title")

    @field_validator("block_cipher_key", "authentication_key", "master_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _hex(value, 16, "key")

    @field_validator("signing_key")
    @classmethod
    def _signing(cls, value: str) -> str:
        return _hex(value, 32, "signing_key")

    @field_validator("client_public_key")
    @classmethod
    def _client_public(cls, value: str) -> str:
        return _public_key(value)


class LinkSettings(BaseModel):
    """The meter's link credentials (``--mqtt``). TEST KEYS by default."""

    model_config = ConfigDict(extra="forbid")

    database: str = ":memory:"
    kek: str = "101112131415161718191A1B1C1D1E1F"
    encryption_key: str = "202122232425262728292A2B2C2D2E2F"
    authentication_key: str = "303132333435363738393A3B3C3D3E3F"
    key_id: int = Field(default=1, ge=0, le=255)

    @field_validator("kek", "encryption_key", "authentication_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _hex(value, 16, "key")


class FirmwareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor_public_key: str = _test_public(TEST_VENDOR_SCALAR)

    @field_validator("vendor_public_key")
    @classmethod
    def _vendor(cls, value: str) -> str:
        return _public_key(value)


class LoadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    power_w: float = 1500.0
    step_s: float = Field(default=1.0, gt=0, le=60)


class MeterRunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meter: dict[str, Any] = Field(default_factory=lambda: {"serial": "MS000001"})
    dlms: DlmsSettings = DlmsSettings()
    link: LinkSettings = LinkSettings()
    firmware: FirmwareSettings = FirmwareSettings()
    load: LoadSettings = LoadSettings()


@dataclass(frozen=True)
class RunSettings:
    meter: MeterConfig
    dlms: DlmsSettings
    link: LinkSettings
    firmware: FirmwareSettings
    load: LoadSettings


def load_config(path: Path | None) -> RunSettings:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        config = MeterRunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid meter run configuration: {problems}") from exc
    return RunSettings(
        MeterConfig.parse(config.meter), config.dlms, config.link, config.firmware, config.load
    )


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``mqtt://host[:port]`` (port 1883 by default).

    Raises
    ------
    ConfigError
        Another scheme (TLS is not supported here), credentials, a path or a bad port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"--mqtt {url!r} is not a URL: {exc}") from exc
    if parts.scheme != "mqtt":
        raise ConfigError(f"--mqtt {url!r}: the scheme must be mqtt:// (plain TCP)")
    if not parts.hostname or parts.username or parts.password:
        raise ConfigError(f"--mqtt {url!r}: give mqtt://host[:port], without credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"--mqtt {url!r}: no path, query or fragment")
    return parts.hostname, 1883 if port is None else port


def _security(dlms: DlmsSettings) -> DlmsSecurity:
    suite1 = dlms.security_suite == 1
    return DlmsSecurity(
        server_system_title=bytes.fromhex(dlms.system_title),
        keys=SecurityKeys(
            bytes.fromhex(dlms.block_cipher_key), bytes.fromhex(dlms.authentication_key)
        ),
        master_key=bytes.fromhex(dlms.master_key),
        lls_password=dlms.lls_password.encode(),
        security_suite=dlms.security_suite,
        signing_key=(
            ec.derive_private_key(int(dlms.signing_key, 16), ec.SECP256R1()) if suite1 else None
        ),
        client_verify_keys=(
            {
                bytes.fromhex(dlms.client_system_title): public_key_from_octets(
                    bytes.fromhex(dlms.client_public_key)
                )
            }
            if suite1
            else {}
        ),
    )


def _credentials(serial: str, link: LinkSettings) -> MeterCredentials:
    suite = SecuritySuite.AES_128_GCM
    return MeterCredentials(
        serial=serial,
        system_title=system_title_for(serial),
        suite=suite,
        kek=bytes.fromhex(link.kek),
        keys=SessionKeys(
            suite,
            link.key_id,
            bytes.fromhex(link.encryption_key),
            bytes.fromhex(link.authentication_key),
        ),
    )


def _print_parameters(
    settings: RunSettings, host: str, dlms_port: int, modbus_port: int, mqtt: tuple[str, int] | None
) -> None:
    dlms = settings.dlms
    mechanism = "HLS-ECDSA, suite 1" if dlms.security_suite == 1 else "HLS-GMAC, suite 0"
    typer.echo(f"DLMS/COSEM on {host}:{dlms_port} (TCP wrapper), server SAP {dlms.server_sap}")
    typer.echo(f"  public client {dlms.public_client}: lowest security, read only")
    typer.echo(f"  reader client {dlms.reader_client}: LLS password {dlms.lls_password}")
    typer.echo(f"  management client {dlms.management_client}: {mechanism} ciphering")
    typer.echo(f"  system title {dlms.system_title}")
    typer.echo(f"  block cipher key {dlms.block_cipher_key}")
    typer.echo(f"  authentication key {dlms.authentication_key}")
    typer.echo(f"  master key (KEK) {dlms.master_key}")
    if dlms.security_suite == 1:
        typer.echo(f"  meter signing key (P-256 private) {dlms.signing_key}")
        typer.echo(f"  client {dlms.client_system_title} public key {dlms.client_public_key}")
    typer.echo(f"  firmware vendor public key {settings.firmware.vendor_public_key}")
    if dlms == DlmsSettings():
        typer.echo("  (these are the published TEST KEYS: a test harness, never a real meter)")
    typer.echo(f"Modbus TCP on {host}:{modbus_port}, unit 1 (register map: docs/protocols.md)")
    if mqtt is not None:
        link = settings.link
        serial = settings.meter.serial
        title = system_title_for(serial).hex().upper()
        typer.echo(f"MQTT to {mqtt[0]}:{mqtt[1]}, topics {ROOT}/{serial}/up|down/...")
        typer.echo(f"  system title {title}, suite 0, key id {link.key_id}")
        typer.echo(f"  encryption key {link.encryption_key}")
        typer.echo(f"  authentication key {link.authentication_key}")
        typer.echo(f"  key-encryption key {link.kek}")
        if link == LinkSettings():
            typer.echo("  (published TEST KEYS)")


@dataclass
class _Link:
    module: CommunicationModule
    transport: MqttTransport
    task: asyncio.Task[None]
    database: LinkDatabase


def _start_link(
    meter: Meter, settings: RunSettings, mqtt: tuple[str, int], vendor: ec.EllipticCurvePublicKey
) -> tuple[_Link, FirmwareSlot]:
    serial = meter.config.serial
    database = LinkDatabase(settings.link.database)
    store = database.for_meter(serial)
    slot = FirmwareSlot(store, vendor)
    transport = MqttTransport(
        mqtt[0], mqtt[1], client_id=f"meter-{serial}", subscriptions=[downlink_filter(serial)]
    )
    module = CommunicationModule(
        meter,
        _credentials(serial, settings.link),
        store=store,
        transport=transport,
        clock=SystemClock(),
        firmware=slot,
    )
    transport.on_message = module.receive
    transport.start()
    task = asyncio.create_task(module.run(), name=f"link-{serial}")
    return _Link(module, transport, task, database), slot


async def _stop_link(link: _Link) -> None:
    link.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await link.task
    await link.module.stop()
    await link.transport.stop()
    link.database.close()


async def _run(
    meter: Meter,
    settings: RunSettings,
    host: str,
    dlms_port: int,
    modbus_port: int,
    mqtt: tuple[str, int] | None,
    duration_s: float | None,
) -> None:
    dlms, load = settings.dlms, settings.load
    clock = SystemClock()
    clients: tuple[ClientPolicy, ...] = default_clients(
        dlms.public_client,
        dlms.reader_client,
        dlms.management_client,
        security_suite=dlms.security_suite,
    )
    vendor = public_key_from_octets(bytes.fromhex(settings.firmware.vendor_public_key))
    link: _Link | None = None
    slot: FirmwareSlot | None = None
    if mqtt is not None:
        link, slot = _start_link(meter, settings, mqtt, vendor)
    device = LogicalDevice.for_meter(
        meter, clock, _security(dlms), clients, firmware_verify_key=vendor, firmware=slot
    )
    server = DlmsServer({dlms.server_sap: device})
    pusher = Pusher(device, dlms.server_sap)
    pushing = asyncio.create_task(pusher.run(), name="pushes")
    try:
        dlms_bound = await server.start(host, dlms_port)
        modbus = tcp_server(device.binding, host, modbus_port)
        await modbus.serve_forever(background=True)
    except OSError as exc:
        pushing.cancel()
        if link is not None:
            await _stop_link(link)
        await server.close()
        raise ConfigError(f"cannot listen on {host}: {exc}") from exc
    transport: Any = modbus.transport
    modbus_bound = int(transport.sockets[0].getsockname()[1])
    _print_parameters(settings, host, dlms_bound, modbus_bound, mqtt)
    typer.echo("running; Ctrl-C to stop", err=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started = loop.time()
    voltage = meter.config.nominal_voltage_v
    phases = meter.config.phases
    try:
        if link is not None:
            link.module.collect()
        while not stop.is_set():
            if duration_s is not None and loop.time() - started >= duration_s:
                break
            await wait_event(stop, load.step_s)
            at = device.binding.now()
            per_phase = load.power_w / phases
            meter.step(
                Measurement(
                    timestamp=at,
                    voltage_v=(voltage,) * phases,
                    current_a=(abs(per_phase) / voltage,) * phases,
                    active_power_w=(per_phase,) * phases,
                    reactive_power_var=(0.0,) * phases,
                    frequency_hz=float(meter.config.nominal_frequency_hz),
                )
            )
            if link is not None:
                link.module.collect()
    finally:
        pushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pushing
        await server.close()
        await modbus.shutdown()  # type: ignore[no-untyped-call]
        if link is not None:
            await _stop_link(link)
        meter.checkpoint()
        typer.echo("stopped")


_CONFIG = typer.Option(None, "--config", help="meter.toml")
_DLMS_PORT = typer.Option(4059, "--dlms-port", min=0, max=65535)
_MODBUS_PORT = typer.Option(5020, "--modbus-port", min=0, max=65535)
_MQTT = typer.Option(
    None, "--mqtt", help="report over MQTT (meterstack.link), e.g. mqtt://127.0.0.1:1883"
)
_HOST = typer.Option("127.0.0.1", "--host", help="address to listen on")
_DURATION = typer.Option(None, "--duration", help="stop after N seconds")


@meter_app.command("run")
def run(
    config: Path | None = _CONFIG,
    dlms_port: int = _DLMS_PORT,
    modbus_port: int = _MODBUS_PORT,
    mqtt: str | None = _MQTT,
    host: str = _HOST,
    duration: float | None = _DURATION,
) -> None:
    """Run one virtual meter on the network until stopped (SIGINT/SIGTERM)."""
    settings = load_config(config)
    broker = None if mqtt is None else parse_mqtt_url(mqtt)
    start = datetime.now(UTC) - timedelta(seconds=1)
    meter = Meter(settings.meter, commissioned_at=start)
    asyncio.run(_run(meter, settings, host, dlms_port, modbus_port, broker, duration))


__all__ = [
    "TEST_CLIENT_SIGNING_SCALAR",
    "TEST_METER_SIGNING_SCALAR",
    "TEST_VENDOR_SCALAR",
    "DlmsSettings",
    "LinkSettings",
    "load_config",
    "parse_mqtt_url",
    "run",
]
