"""Benchmark meter data management. Prints JSON lines.

* ``ingest`` / ``duckdb``: rows/s through the interval-store interface into a DuckDB file,
  against a raw Arrow insert of the same checked rows into the same file (the ceiling).
* ``ingest`` / ``postgresql``: rows/s through the interface, against a raw binary COPY of
  the same rows into a table shaped like the store's (partitioned by month, the same
  primary key and defaults), made and timed the same way (streamed pieces, one
  transaction, DDL included). Two more ceilings show what the server can take: the same
  COPY split over two connections (one per core), and a COPY into a table with no index.
* ``vee``: intervals/s of VEE compute (grids, validation, estimation: no I/O) and end to
  end (reads and writes included). Only intervals actually validated or estimated are
  counted: channels a meter has no data for are skipped, not counted.

Every figure is measured ``--repeats`` times, interleaved with its ceiling, on a fresh
store each time; the median and the best are reported (the machine may be shared, so the
load average is printed too).

    python bench/mdm.py [--meters 500] [--days 7] [--repeats 3] [--pg "host=... dbname=test"]
    python bench/mdm.py --meters 6000          # 2,016,000 rows
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from meterstack.mdm.ingest import INTERVAL_SCHEMA
from meterstack.mdm.intervals import (
    DuckDBIntervalStore,
    MeterRegistration,
    PostgresIntervalStore,
    pgbinary,
)
from meterstack.mdm.intervals.batches import IntervalRows
from meterstack.mdm.vee import run_vee

START = datetime(2024, 1, 1, tzinfo=UTC)
A_PLUS = "1.0.1.8.0.255"


def batch(meters: int, days: int, gaps: bool = True) -> pa.Table:
    """Half-hourly A+ of ``meters`` meters over ``days`` days, with a few gaps of 1-8
    intervals per meter (so estimation has work), sorted by meter and time."""
    per = days * 48
    start = int(START.timestamp())
    ends = np.tile(start + 1800 * np.arange(1, per + 1), meters)
    rng = np.random.default_rng(7)
    value = np.round(rng.gamma(2.0, 150.0, meters * per))
    keep = np.ones(meters * per, dtype=bool)
    if gaps:
        starts = rng.integers(0, meters * per, size=max(1, meters * per // 400))
        for length in range(1, 9):
            chosen = starts[starts % 8 == length - 1]
            for k in range(length):
                keep[np.minimum(chosen + k, keep.size - 1)] = False
    names = np.repeat([f"B{i:06d}" for i in range(meters)], per)
    return pa.table(
        {
            "meter": pa.array(names[keep]),
            "channel": pa.array([A_PLUS] * int(keep.sum())),
            "interval_end": pa.array(ends[keep]).cast(pa.timestamp("s", tz="UTC")),
            "value": value[keep],
            "status": pa.array(np.zeros(int(keep.sum()), np.int32)),
        },
        schema=INTERVAL_SCHEMA,
    )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def rates(n: int, seconds: list[float]) -> tuple[int, int]:
    """(median, best) of n / seconds."""
    return round(n / statistics.median(seconds)), round(n / min(seconds))


def emit(line: dict[str, Any]) -> None:
    line["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(line).decode(), flush=True)


# -- DuckDB --------------------------------------------------------------------------------


def arrow_of(rows: IntervalRows) -> pa.Table:
    return pa.table(
        {
            "meter_id": rows.meter_id.astype(np.int32),
            "channel_id": rows.channel_id.astype(np.int16),
            "interval_end": pa.array(rows.interval_end).cast(pa.timestamp("s", tz="UTC")),
            "value": rows.value,
            "status": rows.status.astype(np.int32),
        }
    )


def bench_duckdb(table: pa.Table, regs: list[MeterRegistration], args: argparse.Namespace) -> None:
    n = table.num_rows
    ingest_s, raw_s, resend_s = [], [], []
    vee_compute_s, vee_total_s = [], []
    report = None
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            store = DuckDBIntervalStore(Path(folder) / "intervals.duckdb")
            store.register_meters(regs)
            seconds, result = timed(lambda store=store: store.ingest_intervals(table))
            assert result.inserted == n, result
            ingest_s.append(seconds)
            raw = arrow_of(store.prepare_intervals(table)[0])
            con = store._con  # the ceiling writes beside the store, in the same file

            def raw_insert(con: Any = con, raw: pa.Table = raw) -> None:
                con.register("bench_raw_rows", raw)
                con.execute("CREATE TABLE bench_raw AS SELECT * FROM bench_raw_rows LIMIT 0")
                con.execute("INSERT INTO bench_raw SELECT * FROM bench_raw_rows")
                con.unregister("bench_raw_rows")

            raw_s.append(timed(raw_insert)[0])
            seconds, again = timed(lambda store=store: store.ingest_intervals(table))
            assert again.duplicates == n, again
            resend_s.append(seconds)
            as_of = START + timedelta(days=args.days)
            seconds, report = timed(
                lambda store=store, as_of=as_of: run_vee(
                    store, START, as_of, as_of=as_of, history_days=7
                )
            )
            vee_total_s.append(seconds)
            vee_compute_s.append(report.compute_seconds)
            store.close()
    median, best = rates(n, ingest_s)
    raw_median, raw_best = rates(n, raw_s)
    emit(
        {
            "bench": "ingest",
            "backend": "duckdb",
            "rows": n,
            "repeats": args.repeats,
            "rows_per_s": median,
            "rows_per_s_best": best,
            "raw_arrow_rows_per_s": raw_median,
            "raw_arrow_rows_per_s_best": raw_best,
            "ratio_to_raw": round(statistics.median(ingest_s) / statistics.median(raw_s), 2),
            "resend_rows_per_s": rates(n, resend_s)[0],
            "goal_rows_per_s_2M": median >= 2_000_000,
        }
    )
    assert report is not None
    done = report.intervals
    emit(
        {
            "bench": "vee",
            "backend": "duckdb",
            "meters": report.meters,
            "channels_with_data": report.channels,
            "intervals": done,
            "validated_actual": report.actual,
            "estimated": report.estimated,
            "null": report.null,
            "repeats": args.repeats,
            "intervals_per_s_compute": rates(done, vee_compute_s)[0],
            "intervals_per_s_compute_best": rates(done, vee_compute_s)[1],
            "intervals_per_s_end_to_end": rates(done, vee_total_s)[0],
            "intervals_per_s_end_to_end_best": rates(done, vee_total_s)[1],
            "goal_compute_1M": rates(done, vee_compute_s)[0] >= 1_000_000,
        }
    )


# -- PostgreSQL ----------------------------------------------------------------------------

READING_COLUMNS = "meter_id, channel_id, interval_end, value, status"


def pg_columns(rows: IntervalRows, part: slice) -> list[tuple[str, np.ndarray]]:
    return [
        ("int4", rows.meter_id[part]),
        ("int2", rows.channel_id[part]),
        ("timestamptz", rows.interval_end[part]),
        ("float8", rows.value[part]),
        ("int4", rows.status[part]),
    ]


def raw_copy(conninfo: str, schema: str, rows: IntervalRows, *, index: bool, parts: int) -> float:
    """Seconds to create a table shaped like ``interval_reading`` (month partitions, the
    primary key unless ``index`` is False) and COPY the rows into it, in ``parts``
    connections at once (split by meter), each in one transaction."""
    import psycopg

    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    like = "INCLUDING DEFAULTS" + (" INCLUDING INDEXES" if index else "")
    months = np.unique(rows.interval_end.astype("datetime64[s]").astype("datetime64[M]"))
    connections = [psycopg.connect(conninfo, autocommit=True) for _ in range(parts)]
    for connection in connections:
        connection.execute(f"SET search_path TO {schema}")
    split = np.searchsorted(rows.meter_id, rows.meter_id[-1] // 2 + 1) if parts == 2 else 0
    slices = [slice(0, split), slice(split, None)] if parts == 2 else [slice(None)]
    errors: list[BaseException] = []

    def load(connection: Any, part: slice) -> None:
        try:
            with connection.transaction(), connection.cursor() as cur:
                chunks = pgbinary.encode_chunks(pg_columns(rows, part))
                with cur.copy(
                    f"COPY {table} ({READING_COLUMNS}) FROM STDIN (FORMAT binary)"
                ) as copy:
                    for chunk in chunks:
                        copy.write(chunk)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    began = time.perf_counter()
    with connections[0].transaction():
        connections[0].execute(
            f"CREATE TABLE {table} (LIKE interval_reading {like}) PARTITION BY RANGE (interval_end)"
        )
        for month in months:
            low = str(month)
            high = str(month + np.timedelta64(1, "M"))
            connections[0].execute(
                f"CREATE TABLE {table}_{low.replace('-', '')} PARTITION OF {table}"
                f" FOR VALUES FROM ('{low}-01 00:00+00') TO ('{high}-01 00:00+00')"
            )
    threads = [
        threading.Thread(target=load, args=(c, s)) for c, s in zip(connections, slices, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    connections[0].execute(f"DROP TABLE {table}")
    for connection in connections:
        connection.close()
    return seconds


def bench_postgresql(
    table: pa.Table, regs: list[MeterRegistration], args: argparse.Namespace
) -> None:
    import psycopg

    n = table.num_rows
    runs: dict[str, list[float]] = {
        "ingest": [],
        "raw": [],
        "raw_2conn": [],
        "raw_no_pk": [],
        "resend": [],
    }
    for _ in range(args.repeats):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            store = PostgresIntervalStore(args.pg, schema)
        except Exception as exc:  # no server: say so and stop
            emit({"bench": "ingest", "backend": "postgresql", "skipped": str(exc)})
            return
        try:
            store.register_meters(regs)
            rows = store.prepare_intervals(table)[0]
            runs["raw"].append(raw_copy(args.pg, schema, rows, index=True, parts=1))
            seconds, result = timed(lambda store=store: store.ingest_intervals(table))
            assert result.inserted == n, result
            runs["ingest"].append(seconds)
            runs["raw_2conn"].append(raw_copy(args.pg, schema, rows, index=True, parts=2))
            runs["raw_no_pk"].append(raw_copy(args.pg, schema, rows, index=False, parts=1))
            seconds, again = timed(lambda store=store: store.ingest_intervals(table))
            assert again.duplicates == n, again
            runs["resend"].append(seconds)
        finally:
            store.close()
            with psycopg.connect(args.pg, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")
    median, best = rates(n, runs["ingest"])
    ratio = statistics.median(runs["ingest"]) / statistics.median(runs["raw"])
    emit(
        {
            "bench": "ingest",
            "backend": "postgresql",
            "rows": n,
            "repeats": args.repeats,
            "rows_per_s": median,
            "rows_per_s_best": best,
            "raw_copy_rows_per_s": rates(n, runs["raw"])[0],
            "raw_copy_rows_per_s_best": rates(n, runs["raw"])[1],
            "raw_copy_2conn_rows_per_s": rates(n, runs["raw_2conn"])[0],
            "raw_copy_no_pk_rows_per_s": rates(n, runs["raw_no_pk"])[0],
            "ratio_to_raw": round(ratio, 2),
            "resend_rows_per_s": rates(n, runs["resend"])[0],
            "goal_rows_per_s_500k": median >= 500_000,
            "goal_within_2x_of_raw": ratio <= 2.0,
            "cpus": os.cpu_count(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=500)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    table = batch(args.meters, args.days)
    regs = [MeterRegistration(f"B{i:06d}") for i in range(args.meters)]
    bench_duckdb(table, regs, args)
    if not args.skip_pg:
        bench_postgresql(table, regs, args)


if __name__ == "__main__":
    main()
