"""Benchmark the REST API under uvicorn. Prints JSON lines.

Loads ``--meters`` prepaid meters (customers, accounts, STS records) into a SQLite
operational store and ``--days`` of 30-minute A+ intervals into a DuckDB interval store
(Arrow batches through :meth:`IntervalStore.ingest_intervals`), starts ``meterstack``'s app
under uvicorn on a free 127.0.0.1 port in its own process, and drives it from
``--concurrency`` concurrent httpx clients:

* ``healthz``: the trivial request, the server's ceiling on this machine (same run);
* ``vend``: ``POST /api/v1/vends`` (STS token, ledger, audit) on random meters, each with a
  new request id;
* ``intervals_day``: ``GET /api/v1/meters/{serial}/intervals`` for one random day of one
  random meter (48 readings);
* ``consumption_month``: ``GET /api/v1/meters/{serial}/consumption?resolution=day`` over
  the month of one random meter.

Each line gives requests/s, p50 and p99 latency [ms], errors, and its ratio to the
``healthz`` ceiling. A ``load`` line gives the time to load the stores.

    python bench/api.py                      # 10,000 meters x 30 days (14.4 M readings)
    python bench/api.py --meters 1000 --requests 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import insert

from meterstack.api import create_user
from meterstack.mdm.intervals import DuckDBIntervalStore, MeterRegistration
from meterstack.mdm.operational import (
    Account,
    Customer,
    Meter,
    PrepaidAccount,
    ServicePoint,
    VendingMeter,
    create_operational_engine,
    migrate,
)
from meterstack.vending import VendingService

VENDING_KEY = "abababababababab"
PASSWORD = "benchmark password"
A_PLUS = "1.0.1.8.0.255"


def emit(**fields: Any) -> None:
    print(orjson.dumps({"bench": "api", **fields}).decode(), flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_operational(path: Path, meters: int, now: datetime) -> None:
    engine = create_operational_engine(f"sqlite:///{path}")
    migrate(engine)
    serials = [f"BM{i:06d}" for i in range(meters)]
    with engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [{"id": i + 1, "name": f"customer {i}", "created_at": now} for i in range(meters)],
        )
        conn.execute(
            insert(Account),
            [
                {
                    "id": i + 1,
                    "number": f"A{i:06d}",
                    "customer_id": i + 1,
                    "currency": "ZAR",
                    "prepaid": True,
                    "opened_at": now,
                }
                for i in range(meters)
            ],
        )
        conn.execute(
            insert(PrepaidAccount),
            [
                {
                    "account_id": i + 1,
                    "mode": "meter",
                    "tariff": "prepaid-fbe-50",
                    "balance": Decimal(0),
                    "debt": Decimal(0),
                    "debt_recovery_pct": Decimal(0),
                    "carry_over": Decimal(0),
                    "low_credit_threshold": Decimal(0),
                    "month_kwh": Decimal(0),
                    "month_charged": {},
                    "supply": "on",
                    "low_notified": False,
                    "version": 0,
                }
                for i in range(meters)
            ],
        )
        conn.execute(
            insert(ServicePoint),
            [
                {"id": i + 1, "code": s, "account_id": i + 1, "timezone": "UTC", "service": "e"}
                for i, s in enumerate(serials)
            ],
        )
        conn.execute(
            insert(Meter),
            [
                {
                    "id": s,
                    "service_point_id": i + 1,
                    "service": "electricity",
                    "interval_s": 1800,
                    "timezone": "UTC",
                    "has_generation": False,
                    "profile_capacity_days": 60,
                    "status": "active",
                }
                for i, s in enumerate(serials)
            ],
        )
        conn.execute(
            insert(VendingMeter),
            [
                {
                    "meter_id": s,
                    "account_id": i + 1,
                    "iin": "600727",
                    "drn": f"{i:011d}",
                    "supply_group_code": "123456",
                    "tariff_index": "01",
                    "key_revision_number": 1,
                    "key_type": 2,
                    "key_expiry_number": 255,
                    "base_date": 2014,
                    "ea": "07",
                    "dkga": "02",
                }
                for i, s in enumerate(serials)
            ],
        )
    service = VendingService(engine, clock=_Clock())
    vendor = service.create_vendor("bench shop", "ZAR", "bench")
    service.deposit(vendor, Decimal("100000000"), "bench")
    create_user(engine, "vendor", PASSWORD, "vendor", vendor_id=vendor)
    create_user(engine, "reader", PASSWORD, "operator")
    engine.dispose()


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def load_intervals(path: Path, meters: int, days: int, end: datetime) -> int:
    store = DuckDBIntervalStore(path)
    serials = [f"BM{i:06d}" for i in range(meters)]
    store.register_meters(MeterRegistration(s) for s in serials)
    per = days * 48
    first = int(end.timestamp()) - 1800 * (per - 1)
    ends = first + 1800 * np.arange(per, dtype=np.int64)
    rng = np.random.default_rng(3)
    chunk = max(1, 2_000_000 // per)
    rows = 0
    for lo in range(0, meters, chunk):
        hi = min(meters, lo + chunk)
        n = (hi - lo) * per
        meter = pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(hi - lo, dtype=np.int32), per)),
            pa.array(serials[lo:hi]),
        )
        table = pa.table(
            {
                "meter": meter,
                "channel": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n, np.int32)), pa.array([A_PLUS])
                ),
                "interval_end": pa.array(np.tile(ends, hi - lo)).cast(pa.timestamp("s", tz="UTC")),
                "value": pa.array(np.round(rng.gamma(2.0, 150.0, n))),
                "status": pa.array(np.zeros(n, np.int32)),
            }
        )
        result = store.ingest_intervals(table)
        rows += result.inserted
    store.close()
    return rows


SERVER = """
import sys, uvicorn
from meterstack.api import create_app
uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "METERSTACK_DATA_DIR": str(data),
        "METERSTACK_TIMEZONE": "Africa/Johannesburg",
        "METERSTACK_CURRENCY": "ZAR",
        "METERSTACK_VENDING__VENDING_KEY": VENDING_KEY,
        "METERSTACK_API__JWT_SECRET": "bench-secret-bench-secret-bench-secret",
        "METERSTACK_API__RATE_LIMIT_PER_S": "1000000",
        "METERSTACK_API__RATE_LIMIT_BURST": "1000000",
    }
    env.pop("METERSTACK_CONFIG", None)
    log = (data / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)], env=env, cwd=data, stderr=log, stdout=log
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError((data / "server.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


async def drive(
    base: str, requests: list[tuple[str, str, dict[str, Any]]], concurrency: int
) -> tuple[float, list[float], int]:
    """Send the requests from ``concurrency`` clients; wall time, latencies, errors."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                method, url, kw = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            response = await client.request(method, url, **kw)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 300:
                errors += 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        begin = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - begin
    return wall, latencies, errors


def report(name: str, wall: float, latencies: list[float], errors: int, ceiling: float) -> float:
    values = np.array(latencies) * 1000
    rate = len(latencies) / wall
    emit(
        op=name,
        requests=len(latencies),
        per_s=round(rate, 1),
        p50_ms=round(float(np.percentile(values, 50)), 2),
        p99_ms=round(float(np.percentile(values, 99)), 2),
        errors=errors,
        ratio_to_healthz=None if ceiling == 0 else round(rate / ceiling, 4),
    )
    return rate


def token(base: str, username: str) -> dict[str, str]:
    answer = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=1000, help="per operation")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--server-log", action="store_true", help="print the server's log")
    args = parser.parse_args()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    with tempfile.TemporaryDirectory(prefix="meterstack-bench-api-") as tmp:
        data = Path(tmp)
        started = time.perf_counter()
        load_operational(data / "operational.db", args.meters, end)
        operational_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = load_intervals(data / "intervals.duckdb", args.meters, args.days, end)
        intervals_s = time.perf_counter() - started
        emit(
            op="load",
            meters=args.meters,
            days=args.days,
            readings=rows,
            operational_s=round(operational_s, 2),
            intervals_s=round(intervals_s, 2),
            readings_per_s=round(rows / intervals_s),
            load_average=round(os.getloadavg()[0], 2),
        )
        port = free_port()
        server = start_server(data, port)
        try:
            base = f"http://127.0.0.1:{port}"
            seller, reader = token(base, "vendor"), token(base, "reader")
            rng = random.Random(5)
            n = args.requests
            health = [("GET", "/healthz", {})] * n
            wall, lat, err = asyncio.run(drive(base, health, args.concurrency))
            ceiling = report("healthz", wall, lat, err, 0)
            serials = [f"BM{rng.randrange(args.meters):06d}" for _ in range(n)]
            vends = [
                (
                    "POST",
                    "/api/v1/vends",
                    {
                        "json": {"request_id": f"b{i}", "meter": s, "amount": "50"},
                        "headers": seller,
                    },
                )
                for i, s in enumerate(serials)
            ]
            report("vend", *asyncio.run(drive(base, vends, args.concurrency)), ceiling)
            days = []
            for _ in range(n):
                day_end = end - timedelta(days=rng.randrange(args.days))
                days.append(
                    (
                        "GET",
                        f"/api/v1/meters/BM{rng.randrange(args.meters):06d}/intervals",
                        {
                            "params": {
                                "start": (day_end - timedelta(days=1)).isoformat(),
                                "end": day_end.isoformat(),
                            },
                            "headers": reader,
                        },
                    )
                )
            report("intervals_day", *asyncio.run(drive(base, days, args.concurrency)), ceiling)
            months = [
                (
                    "GET",
                    f"/api/v1/meters/BM{rng.randrange(args.meters):06d}/consumption",
                    {
                        "params": {
                            "resolution": "day",
                            "start": (end - timedelta(days=args.days)).isoformat(),
                            "end": end.isoformat(),
                        },
                        "headers": reader,
                    },
                )
                for _ in range(n)
            ]
            report(
                "consumption_month", *asyncio.run(drive(base, months, args.concurrency)), ceiling
            )
        finally:
            server.terminate()
            server.wait(30)
            if args.server_log:
                sys.stderr.write((data / "server.log").read_text())


if __name__ == "__main__":
    main()
