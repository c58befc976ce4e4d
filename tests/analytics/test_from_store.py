"""The analytics' inputs read back from the meter data stores equal what was written.

A simulated grid is written into an interval store (DuckDB, and a real PostgreSQL) the way
the head-end writes it: A+, A- and average voltage per interval, last gasps, restores and
fraud events in the meters' logs, some also raised as alarms in the operational database.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from meterstack.analytics import find_outages
from meterstack.analytics.from_store import FRAUD_CODES, assemble
from meterstack.analytics.run import analyse
from meterstack.core.errors import ClockError, InvalidInputError
from meterstack.mdm.ingest import EVENT_SCHEMA, INTERVAL_SCHEMA
from meterstack.mdm.intervals import DuckDBIntervalStore, IntervalStore, PostgresIntervalStore
from meterstack.mdm.intervals.base import MeterRegistration
from meterstack.mdm.operational import create_operational_engine, migrate
from meterstack.mdm.operational.models import Alarm, Meter
from meterstack.sim.grid import GridScenario, generate_grid
from tests.conftest import require_service

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CODE_OF_KIND = {kind: code for code, kind in FRAUD_CODES.items()}


def write_scenario(
    s: GridScenario, store: IntervalStore, engine: Engine | None = None
) -> dict[str, np.ndarray]:
    """Write ``s`` as the head-end would; returns what was written where it differs from
    the scenario (readings stop once a meter is no longer heard).

    With an engine, every meter is also in the operational database, and every third
    power event and every second fraud event is raised as an alarm there as well as
    logged (the head-end does both); every fifth power event is an alarm only.
    """
    net = s.network
    checks = [c for c in net.check_meters if c is not None]
    serials = list(net.meters) + checks
    store.register_meters(MeterRegistration(m, s.interval_s) for m in serials)
    if engine is not None:
        with Session(engine) as session, session.begin():
            session.add_all(Meter(id=m, interval_s=s.interval_s) for m in serials)
    n_int = s.customer_wh.shape[1]
    ends = s.start + s.interval_s * np.arange(1, n_int + 1)
    heard = ends[None, :] <= s.last_heard[:, None]
    rows: dict[str, list[np.ndarray]] = {"meter": [], "channel": [], "end": [], "value": []}

    def add(serial: str, channel: str, values: np.ndarray, keep: np.ndarray) -> None:
        keep = keep & np.isfinite(values)
        rows["meter"].append(np.full(int(keep.sum()), serial, dtype=object))
        rows["channel"].append(np.full(int(keep.sum()), channel, dtype=object))
        rows["end"].append(ends[keep])
        rows["value"].append(values[keep].astype(np.float64))

    for i, serial in enumerate(net.meters):
        add(serial, "1.0.1.8.0.255", s.customer_wh[i], heard[i])
        add(serial, "1.0.2.8.0.255", s.export_wh[i], heard[i])
        add(serial, "1.0.12.27.0.255", s.voltage_v[i], heard[i])
    for t, serial in enumerate(net.check_meters):
        if serial is None:
            continue
        everywhere = np.ones(n_int, dtype=bool)
        add(serial, "1.0.1.8.0.255", np.maximum(s.check_wh[t], 0), everywhere)
        add(serial, "1.0.2.8.0.255", np.maximum(-s.check_wh[t], 0), everywhere)
    count = sum(a.size for a in rows["end"])
    result = store.ingest_intervals(
        pa.table(
            {
                "meter": pa.array(np.concatenate(rows["meter"]).tolist(), pa.string()),
                "channel": pa.array(np.concatenate(rows["channel"]).tolist(), pa.string()),
                "interval_end": pa.array(np.concatenate(rows["end"]).astype(np.int64)).cast(
                    pa.timestamp("s", tz="UTC")
                ),
                "value": pa.array(np.concatenate(rows["value"])),
                "status": pa.array(np.zeros(count, np.int32)),
            },
            schema=INTERVAL_SCHEMA,
        )
    )
    assert result.inserted == count
    assert not result.rejected

    events: list[tuple[str, str, int, float, int]] = []  # meter, log, code, at, how
    pe = s.power_events
    for k in range(pe.meter.size):
        events.append(("power_failure", net.meters[pe.meter[k]], int(pe.kind[k]), pe.at[k], k))
    rng = np.random.default_rng(7)
    for kind, counts in sorted(s.fraud_events.items()):
        for i in np.flatnonzero(counts):
            for _ in range(int(counts[i])):
                at = s.start + float(rng.uniform(0, n_int * s.interval_s))
                events.append(("fraud", net.meters[i], CODE_OF_KIND[kind], at, len(events)))
    logged: list[dict[str, object]] = []
    alarms: list[Alarm] = []
    seq: dict[tuple[str, str], int] = {}
    for log, meter, code, at, k in sorted(events, key=lambda e: (e[1], e[3])):
        at_ms = round(at * 1000) / 1000
        alarm_only = engine is not None and log == "power_failure" and k % 5 == 0
        as_alarm = engine is not None and (k % 3 == 0 if log == "power_failure" else k % 2 == 0)
        if not alarm_only:
            seq[meter, log] = seq.get((meter, log), 0) + 1
            logged.append(
                {"meter": meter, "log": log, "seq": seq[meter, log], "at": at_ms, "code": code}
            )
        if alarm_only or as_alarm:
            alarms.append(
                Alarm(
                    meter_id=meter,
                    code=code,
                    raised_at=datetime.fromtimestamp(at_ms, UTC),
                    detail="",
                )
            )
    store.ingest_events(
        pa.table(
            {
                "meter": [e["meter"] for e in logged],
                "log": [e["log"] for e in logged],
                "seq": pa.array([e["seq"] for e in logged], pa.int64()),
                "at": pa.array([round(float(e["at"]) * 1000) for e in logged], pa.int64()).cast(  # type: ignore[arg-type]
                    pa.timestamp("ms", tz="UTC")
                ),
                "code": pa.array([e["code"] for e in logged], pa.int32()),
                "detail": [""] * len(logged),
            },
            schema=EVENT_SCHEMA,
        )
    )
    if engine is not None:
        with Session(engine) as session, session.begin():
            session.add_all(alarms)
    return {"heard": heard, "ends": ends}


@pytest.fixture(scope="module")
def scenario() -> GridScenario:
    return generate_grid(
        150, datetime(2026, 2, 2, tzinfo=UTC), 8, seed=5, outages_per_week=6, check_meter_share=0.8
    )


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[IntervalStore]:
    if request.param == "duckdb":
        s: IntervalStore = DuckDBIntervalStore()
        yield s
        s.close()
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = f"analytics_test_{uuid.uuid4().hex[:10]}"
    s = PostgresIntervalStore(PG, schema)
    yield s
    s.close()
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = create_operational_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(e)
    yield e
    e.dispose()


def test_assembled_arrays_equal_the_scenario(
    scenario: GridScenario, store: IntervalStore, engine: Engine
) -> None:
    # Three meters fall silent (a lost modem) two days before the end: no reads after.
    last_heard = scenario.last_heard.copy()
    last_heard[:3] = scenario.as_of - 2 * 86400 - 600
    s, net = dataclasses.replace(scenario, last_heard=last_heard), scenario.network
    written = write_scenario(s, store, engine)
    heard = written["heard"]
    assert not heard[:3, -96:].any()
    assert heard[3:].all()
    inputs = assemble(
        net,
        store,
        engine,
        start=datetime.fromtimestamp(s.start, UTC),
        end=datetime.fromtimestamp(s.as_of, UTC),
        chunk_meters=37,  # several queries, the check meters in the last
    )
    assert inputs.interval_s == s.interval_s
    assert (inputs.start, inputs.end) == (s.start, s.as_of)
    assert inputs.unknown_meters == []
    for got, want in (
        (inputs.customer_wh, s.customer_wh),
        (inputs.export_wh, s.export_wh),
        (inputs.voltage_v, s.voltage_v),
    ):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.where(heard, want, np.nan))
    np.testing.assert_array_equal(inputs.check_wh, s.check_wh)  # NaN rows: no check meter
    assert np.isnan(s.check_wh).all(axis=1).any()

    # Power events: each (meter, kind, time) once, whichever way it arrived.
    pe = s.power_events
    want_events = {
        (int(m), int(k), round(float(a) * 1000))
        for m, k, a in zip(pe.meter, pe.kind, pe.at, strict=True)
    }
    got = inputs.power_events
    got_events = [
        (int(m), int(k), round(float(a) * 1000))
        for m, k, a in zip(got.meter, got.kind, got.at, strict=True)
    ]
    assert len(got_events) == len(set(got_events))
    assert set(got_events) == want_events

    for kind, counts in s.fraud_events.items():
        np.testing.assert_array_equal(inputs.fraud_events[kind], counts)
    assert not inputs.fraud_events["meter_cover"].any()

    # Last heard: the last interval read, or a later event.
    last_read = np.where(
        heard.any(axis=1), np.where(heard, written["ends"], -np.inf).max(axis=1), np.nan
    )
    latest_event = np.full(net.n_meters, -np.inf)
    np.maximum.at(latest_event, pe.meter, np.round(pe.at * 1000) / 1000)
    assert np.all(inputs.last_heard >= last_read)
    assert np.all(
        inputs.last_heard >= np.where(np.isfinite(latest_event), latest_event, -np.inf) - 1e-3
    )
    assert np.all(inputs.last_heard <= s.as_of)

    # The outages and the inspection list are those of the scenario's own arrays.
    from_store = find_outages(net, got, as_of=inputs.end, last_heard=inputs.last_heard)
    direct = find_outages(net, pe, as_of=s.as_of, last_heard=s.last_heard)
    assert [(o.transformer, o.customers, round(o.start)) for o in from_store.outages] == [
        (o.transformer, o.customers, round(o.start)) for o in direct.outages
    ]
    mine = inputs.analyse().to_dict()
    theirs = analyse(
        net,
        interval_s=s.interval_s,
        customer_wh=np.where(heard, s.customer_wh, np.nan).astype(np.float32),
        export_wh=s.export_wh,
        check_wh=s.check_wh,
        voltage_v=s.voltage_v,
        power_events=pe,
        last_heard=s.last_heard,
        as_of=s.as_of,
        fraud_events=s.fraud_events,
    ).to_dict()
    assert [r["serial"] for r in mine["inspection"]] == [r["serial"] for r in theirs["inspection"]]
    assert mine["energy_balance"] == theirs["energy_balance"]


def test_validated_values_replace_raw_ones_and_unknown_meters_are_named(
    scenario: GridScenario,
) -> None:
    s, net = scenario, scenario.network
    store = DuckDBIntervalStore()
    try:
        write_scenario(s, store)
        meter = net.meters[0]
        end = datetime.fromtimestamp(s.start + 3 * s.interval_s, UTC)
        store.write_validated(
            pa.table(
                {
                    "meter": [meter],
                    "channel": ["1.0.1.8.0.255"],
                    "interval_end": pa.array([end], pa.timestamp("s", tz="UTC")),
                    "value": [1234.5],
                    "quality": ["E"],
                    "method": pa.array([1], pa.int8()),
                    "checks": pa.array([0], pa.int32()),
                }
            ),
            "test",
        )
        bigger = net.__class__.from_rows(
            [
                *({"meter": m, "transformer": "T1", "feeder": "F1"} for m in net.meters[:3]),
                {"meter": "NOT-STORED", "transformer": "T1", "feeder": "F1"},
            ]
        )
        inputs = assemble(
            bigger,
            store,
            None,
            start=datetime.fromtimestamp(s.start, UTC),
            end=datetime.fromtimestamp(s.start + 86400, UTC),
        )
        assert inputs.customer_wh[0, 2] == np.float32(1234.5)
        assert inputs.customer_wh[0, 3] == s.customer_wh[0, 3]
        assert np.isnan(inputs.customer_wh[3]).all()
        assert inputs.unknown_meters == ["NOT-STORED"]
        report = inputs.analyse()
        assert any("NOT-STORED" in note for note in report.notes)
        start = datetime.fromtimestamp(s.start, UTC)
        with pytest.raises(InvalidInputError, match="end"):
            assemble(bigger, store, None, start=start, end=start)
        with pytest.raises(ClockError, match="start"):
            assemble(bigger, store, None, start=start.replace(tzinfo=None), end=start)
    finally:
        store.close()
