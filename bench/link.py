"""Benchmark: simulated meters through Mosquitto into the head-end.

Prints JSON lines:

* ``raw_broker_ceiling``: messages per second through our Mosquitto with mosquitto_pub and
  mosquitto_sub (QoS 1, payloads of the size of a profile frame), and with a minimal
  aiomqtt publisher and subscriber (no crypto, no outbox, no database);
* ``link``: the same broker carrying N meters' backlog of load profile (bulk, saturating)
  through the full path (outbox, GCM envelope, MQTT, shared subscription, replay check,
  idempotency, Arrow batches to a sink, acknowledgements), with alarms raised while the bulk
  flows: ingest rate (the backlog's messages over the time until the last profile message
  was acknowledged, so applied by the head-end), alarm latency p50/p99 from the meter's
  outbox to the head-end's alarm handler over the alarms raised while the backlog was still
  flowing (``alarms_under_bulk_load``; all alarms in ``alarm_latency_all_p99_ms``), and the
  ratios of both ceilings to the ingest rate (goal: at most 2).

Run: ``python bench/link.py [--meters 50] [--days 2] [--alarms 60] [--headend-processes 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from meterstack.core.time import SystemClock
from meterstack.headend import BrokerPath, HeadEnd, HeadEndStore, IngestConfig
from meterstack.link import CommunicationModule, LinkDatabase, OutboxPolicy, Priority, provision
from meterstack.link.envelope import seal
from meterstack.link.module import profile_row
from meterstack.link.schema import Message, MessageKind, ProfileBlock, encode
from meterstack.link.shutdown import cancel_all
from meterstack.link.topics import downlink_filter
from meterstack.link.transports import MqttTransport
from meterstack.mdm.ingest import IngestResult
from meterstack.meter import Measurement, Meter, MeterConfig

START = datetime(2024, 1, 1, tzinfo=UTC)
MASTER = bytes(range(16))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_mosquitto(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_inflight_messages 0\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process, port
        time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


def profile_frame_size() -> int:
    """Bytes of one sealed one-interval PROFILE message (AES-128-GCM suite)."""
    credentials = provision("BM00000")
    meter = Meter(MeterConfig(serial="BM00000"), commissioned_at=START)
    meter.step(load(START + timedelta(minutes=30), 1500.0))
    (entry,) = meter.load_profile.since(0)
    message = Message(
        MessageKind.PROFILE,
        "BM00000",
        2**31,
        1,
        1_704_069_000_123,
        ProfileBlock(1800, (profile_row(entry),)),
    )
    frame = seal(
        encode(message),
        credentials.keys,
        system_title=credentials.system_title,
        invocation_counter=1,
    )
    return len(frame)


def raw_ceiling_cli(port: int, count: int, size: int) -> float:
    """mosquitto_pub -l to mosquitto_sub -C, QoS 1: messages per second."""
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(port), "-t", "bench/raw", "-q", "1", "-C", str(count)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    lines = ("x" * (size - 1) + "\n") * count
    start = time.perf_counter()
    subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-t", "bench/raw", "-q", "1", "-l"],
        input=lines.encode(),
        check=True,
    )
    sub.wait(60)
    return count / (time.perf_counter() - start)


async def raw_ceiling_python(port: int, count: int, size: int) -> float:
    """A minimal aiomqtt publisher and subscriber, QoS 1: messages per second."""
    import aiomqtt

    received = 0
    done = asyncio.Event()
    payload = b"x" * size
    async with aiomqtt.Client("127.0.0.1", port, identifier="raw-sub") as sub:
        await sub.subscribe("bench/rawpy", qos=1)

        async def consume() -> None:
            nonlocal received
            async for _ in sub.messages:
                received += 1
                if received >= count:
                    done.set()
                    return

        consumer = asyncio.create_task(consume())
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier="raw-pub", max_inflight_messages=256
        ) as pub:
            start = time.perf_counter()
            window = asyncio.Semaphore(256)

            async def one() -> None:
                async with window:
                    await pub.publish("bench/rawpy", payload, qos=1)

            await asyncio.gather(*(one() for _ in range(count)))
            async with asyncio.timeout(120):
                await done.wait()
            elapsed = time.perf_counter() - start
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    return count / elapsed


class CountingSink:
    """A MeterDataSink that counts rows (the MDM stores are benchmarked on their own)."""

    def __init__(self) -> None:
        self.rows = 0

    def _count(self, batch: pa.Table) -> IngestResult:
        self.rows += batch.num_rows
        return IngestResult(inserted=batch.num_rows)

    ingest_intervals = ingest_registers = ingest_events = _count


def headend_process(  # noqa: PLR0917
    db_path: str, port: int, instance: int, queue: Any, stop: Any, workers: int, batch: int
) -> None:
    async def main() -> None:
        store = HeadEndStore(db_path, MASTER)
        latencies: list[tuple[int, float]] = []  # (created_ms, latency_ms)

        def on_alarm(notice: Any) -> None:
            latencies.append((notice.created_ms, time.time() * 1000 - notice.created_ms))

        headend = HeadEnd(
            store,
            CountingSink(),
            [BrokerPath("primary", "127.0.0.1", port)],
            instance=instance,
            workers=workers,
            on_alarm=on_alarm,
            dispatch=False,
            ingest_config=IngestConfig(max_batch=batch, max_wait_s=0.005),
        )
        async with headend:
            queue.put(("ready", instance))
            first = last = None
            applied = 0
            while not stop.is_set():
                await asyncio.sleep(0.05)
                now_applied = sum(w.stats.applied for w in headend.workers)
                if now_applied != applied:
                    first = first or time.perf_counter()
                    last = time.perf_counter()
                    applied = now_applied
            queue.put(("done", instance, applied, latencies, (last or 0) - (first or 0)))

    asyncio.run(main())


def load(at: datetime, watts: float, **inputs: Any) -> Measurement:
    return Measurement(at, (230.0,), (watts / 230.0,), (watts,), (0.0,), 50.0, **inputs)


async def run_link(args: argparse.Namespace, port: int, directory: Path) -> dict[str, Any]:
    db_path = str(directory / "headend.db")
    store = HeadEndStore(db_path, MASTER)
    database = LinkDatabase(directory / "link.db", synchronous="NORMAL")
    clock = SystemClock()
    meters = []
    for index in range(args.meters):
        serial = f"BM{index:05d}"
        credentials = provision(serial)
        store.register_meter(credentials)
        transport = MqttTransport(
            "127.0.0.1", port, client_id=f"meter-{serial}", subscriptions=[downlink_filter(serial)]
        )
        meter = Meter(MeterConfig(serial=serial, event_log_capacity=20), commissioned_at=START)
        module = CommunicationModule(
            meter,
            credentials,
            store=database.for_meter(serial),
            transport=transport,
            clock=clock,
            outbox_policy=OutboxPolicy(ack_timeout_s=30.0, max_in_flight_bulk=64),
        )
        transport.on_message = module.receive
        meters.append((meter, module, transport))
    store.close()

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    stop = context.Event()
    processes = [
        context.Process(
            target=headend_process,
            args=(db_path, port, 1 + i, queue, stop, args.workers, args.batch),
            daemon=True,
        )
        for i in range(args.headend_processes)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        queue.get(timeout=60)

    for _, _, transport in meters:
        transport.start()
    await asyncio.gather(*(t.wait_connected(10) for _, _, t in meters))
    # The backlog: days of half-hour profile (a meter back from a long outage, or a fleet
    # reading after a head-end maintenance window).
    at = START
    for _ in range(args.days * 48):
        at += timedelta(minutes=30)
        for meter, _, _ in meters:
            meter.step(load(at, 1500.0))
    for _, module, _ in meters:
        module.collect()
    total = sum(len(module.outbox) for _, module, _ in meters)
    start = time.perf_counter()
    start_ms = time.time() * 1000
    bulk_done_ms: float | None = None  # when the last profile message was acknowledged
    bulk_drain_s: float | None = None
    tasks = [asyncio.create_task(module.run()) for _, module, _ in meters]
    sent_alarms = 0
    interval = args.alarm_interval_s
    while sum(len(module.outbox) for _, module, _ in meters) > 0 or sent_alarms < args.alarms:
        if bulk_done_ms is None and not any(
            module.outbox.depth()[Priority.PROFILE] for _, module, _ in meters
        ):
            bulk_done_ms = time.time() * 1000
            bulk_drain_s = time.perf_counter() - start
        if sent_alarms < args.alarms:
            meter, module, _ = meters[sent_alarms % len(meters)]
            # The terminal cover opens (one alarm) and closes again a second later (an
            # event, bulk), so that every round raises exactly one alarm.
            meter.step(load(meter.now + timedelta(seconds=1), 1500.0, terminal_cover_open=True))
            module.collect()
            meter.step(load(meter.now + timedelta(seconds=1), 1500.0))
            sent_alarms += 1
        await asyncio.sleep(interval)
        if time.perf_counter() - start > args.timeout_s:
            break
    elapsed = time.perf_counter() - start
    await asyncio.sleep(2.0)  # let the last alarms and acknowledgements land
    stop.set()
    applied = 0
    alarm_records: list[tuple[int, float]] = []
    for _ in processes:
        _, _, count, lat, _span = queue.get(timeout=60)
        applied += count
        alarm_records.extend(lat)
    for process in processes:
        process.join(30)
        if process.is_alive():  # a head-end that does not stop must not hang the bench
            print(f"head-end process {process.pid} did not stop; terminated", file=sys.stderr)
            process.terminate()
            process.join(5)
    await cancel_all(tasks)
    for _, module, transport in meters:
        await module.stop()
        await transport.stop()
    if bulk_drain_s is None:  # timed out with bulk still queued: rate over what was applied
        bulk_drain_s, bulk_done_ms = elapsed, start_ms + elapsed * 1000
    # Only alarms raised while the profile backlog was still flowing count as "under load".
    loaded = sorted(lat for created, lat in alarm_records if created <= bulk_done_ms)
    every = sorted(lat for _, lat in alarm_records)
    return {
        "meters": args.meters,
        "messages": total,
        "applied": applied,
        "bulk_drain_s": round(bulk_drain_s, 3),
        "ingest_msgs_per_s": round(min(applied, total) / bulk_drain_s, 1),
        "alarms_sent": sent_alarms,
        "alarms_received": len(every),
        "alarms_under_bulk_load": len(loaded),
        "alarm_latency_p50_ms": _percentile(loaded, 0.50),
        "alarm_latency_p99_ms": _percentile(loaded, 0.99),
        "alarm_latency_max_ms": round(loaded[-1], 2) if loaded else None,
        "alarm_latency_all_p99_ms": _percentile(every, 0.99),
        "headend_processes": args.headend_processes,
        "workers_per_process": args.workers,
    }


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list. [same unit]"""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 2)


def main() -> None:
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    logging.getLogger("aiomqtt").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50)
    parser.add_argument("--days", type=int, default=2, help="profile backlog per meter")
    parser.add_argument("--alarms", type=int, default=60)
    parser.add_argument("--alarm-interval-s", type=float, default=0.02)
    parser.add_argument("--headend-processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="ingest workers per process")
    parser.add_argument("--batch", type=int, default=64, help="frames per ingest batch")
    parser.add_argument("--raw-count", type=int, default=20000)
    parser.add_argument("--timeout-s", type=float, default=45.0)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="meterstack-bench-link-"))
    broker, port = start_mosquitto(directory)
    try:
        size = profile_frame_size()  # the raw ceiling moves frames of the same size
        cli = raw_ceiling_cli(port, args.raw_count, size)
        python = asyncio.run(raw_ceiling_python(port, args.raw_count // 2, size))
        print(
            json.dumps(
                {
                    "bench": "raw_broker_ceiling",
                    "payload_bytes": size,
                    "mosquitto_pub_sub_msgs_per_s": round(cli, 1),
                    "aiomqtt_minimal_msgs_per_s": round(python, 1),
                }
            )
        )
        result = asyncio.run(run_link(args, port, directory))
        rate = result["ingest_msgs_per_s"] or float("nan")
        p99 = result["alarm_latency_p99_ms"]
        result.update(
            bench="link",
            ratio_to_mosquitto_cli=round(cli / rate, 2),
            ratio_to_minimal_python_client=round(python / rate, 2),
            alarm_p99_goal_ms=100,
            ingest_goal_ratio=2.0,
            alarm_goal_met=p99 is not None and p99 < 100,
            ingest_goal_met=cli / rate <= 2.0,
        )
        print(json.dumps(result))
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
