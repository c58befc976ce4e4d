"""Test support for the link and the head-end: our own Mosquitto, a recording MDM sink,
and a small fleet of meters with communication modules."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from meterstack.core.time import SystemClock
from meterstack.link import (
    CommunicationModule,
    LinkDatabase,
    MeterCredentials,
    ModuleConfig,
    OutboxPolicy,
    SecuritySuite,
    provision,
)
from meterstack.link.topics import downlink_filter
from meterstack.link.transports import MqttTransport
from meterstack.mdm.ingest import (
    EVENT_SCHEMA,
    INTERVAL_SCHEMA,
    REGISTER_SCHEMA,
    IngestResult,
    RejectedRow,
)
from meterstack.meter import Measurement, Meter, MeterConfig

from ..conftest import IN_CI

START = datetime(2024, 1, 1, tzinfo=UTC)


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if path is None:
        message = "the mosquitto binary is not installed (apt-get install mosquitto)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """A Mosquitto of our own on a free loopback port (never the system one on 1883)."""

    def __init__(self, directory: Path) -> None:
        self.binary = mosquitto_binary()
        self.port = free_port()
        self.config = directory / f"mosquitto-{self.port}.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\nmax_inflight_messages 0\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)
        self.process = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Any:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def second_mosquitto(tmp_path: Path) -> Any:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class RecordingSink:
    """A :class:`~meterstack.mdm.MeterDataSink` in memory that enforces the natural keys
    of the ingest contract: the same key with the same value is a duplicate, with another
    value a revision; it counts every write so tests can see duplicates."""

    def __init__(self) -> None:
        self.intervals: dict[tuple[str, str, int], float] = {}
        self.registers: dict[tuple[str, str, int], float] = {}
        self.events: dict[tuple[str, str, int], tuple[int, int, str]] = {}
        self.duplicates: Counter[str] = Counter()
        self.revisions: Counter[str] = Counter()
        self.fail_next = 0

    def _check(self, batch: pa.Table, schema: pa.Schema) -> list[dict[str, Any]]:
        assert batch.schema.equals(schema), batch.schema
        if self.fail_next:
            self.fail_next -= 1
            from meterstack.core.errors import StoreError

            raise StoreError("the sink is down (test)")
        return batch.to_pylist()

    def _put(self, table: dict[Any, Any], name: str, key: Any, value: Any) -> str:
        if key not in table:
            table[key] = value
            return "inserted"
        if table[key] == value:
            self.duplicates[name] += 1
            return "duplicate"
        self.revisions[name] += 1
        return "revision"

    def _result(self, outcomes: list[str], rejected: list[RejectedRow]) -> IngestResult:
        counts = Counter(outcomes)
        return IngestResult(
            counts["inserted"], counts["duplicate"], counts["revision"], tuple(rejected)
        )

    def ingest_intervals(self, batch: pa.Table) -> IngestResult:
        outcomes = []
        for row in self._check(batch, INTERVAL_SCHEMA):
            key = (row["meter"], row["channel"], int(row["interval_end"].timestamp()))
            outcomes.append(self._put(self.intervals, "intervals", key, row["value"]))
        return self._result(outcomes, [])

    def ingest_registers(self, batch: pa.Table) -> IngestResult:
        outcomes = []
        for row in self._check(batch, REGISTER_SCHEMA):
            key = (row["meter"], row["obis"], int(row["read_at"].timestamp() * 1000))
            outcomes.append(self._put(self.registers, "registers", key, row["value"]))
        return self._result(outcomes, [])

    def ingest_events(self, batch: pa.Table) -> IngestResult:
        outcomes = []
        for row in self._check(batch, EVENT_SCHEMA):
            key = (row["meter"], row["log"], row["seq"])
            value = (int(row["at"].timestamp() * 1000), row["code"], row["detail"])
            outcomes.append(self._put(self.events, "events", key, value))
        return self._result(outcomes, [])

    def profile_seqs(self, meter: str) -> int:
        return sum(1 for m, ch, _ in self.intervals if m == meter and ch == "1.0.1.8.0.255")


def load(at: datetime, watts: float, **inputs: Any) -> Measurement:
    current = watts / 230.0
    return Measurement(
        timestamp=at,
        voltage_v=(230.0,),
        current_a=(current,),
        active_power_w=(watts,),
        reactive_power_var=(0.0,),
        frequency_hz=50.0,
        **inputs,
    )


@dataclass
class SimMeter:
    """One simulated meter with its communication module."""

    meter: Meter
    module: CommunicationModule
    credentials: MeterCredentials
    at: datetime = START
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def step(self, intervals: int = 1, watts: float = 1000.0, **inputs: Any) -> None:
        for _ in range(intervals):
            self.at += timedelta(minutes=30)
            self.meter.step(load(self.at, watts, **inputs))
        self.module.collect()


def make_meter(
    serial: str,
    *,
    database: LinkDatabase,
    transport: Any,
    suite: SecuritySuite = SecuritySuite.AES_128_GCM,
    headend_signing_key: Any = None,
    policy: OutboxPolicy | None = None,
    config: ModuleConfig | None = None,
    credentials: MeterCredentials | None = None,
    meter: Meter | None = None,
    **module_kw: Any,
) -> SimMeter:
    credentials = credentials or provision(serial, suite, headend_signing_key=headend_signing_key)
    meter = meter or Meter(MeterConfig(serial=serial), commissioned_at=START)
    module = CommunicationModule(
        meter,
        credentials,
        store=database.for_meter(serial),
        transport=transport,
        clock=SystemClock(),
        outbox_policy=policy
        or OutboxPolicy(ack_timeout_s=1.0, backoff_base_s=0.2, backoff_max_s=2.0),
        config=config,
        **module_kw,
    )
    return SimMeter(meter, module, credentials)


def meter_transport(
    broker: Mosquitto, serial: str, name: str = "primary", **kw: Any
) -> MqttTransport:
    return MqttTransport(
        "127.0.0.1",
        broker.port,
        name=name,
        client_id=f"meter-{serial}-{name}",
        subscriptions=[downlink_filter(serial)],
        publish_timeout_s=2.0,
        **kw,
    )


async def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="meterstack-link-"))
