"""The interval store's contract, the same on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterstack.core.errors import InvalidInputError
from meterstack.mdm import missing_reads
from meterstack.mdm.errors import MonthNotClosedError
from meterstack.mdm.ingest import EVENT_SCHEMA, REGISTER_SCHEMA
from meterstack.mdm.intervals import IntervalStore, MeterRegistration

from .conftest import intervals, t

A = "1.0.1.8.0.255"
T0 = int(t(1).timestamp())


def test_ingest_is_idempotent_and_revisions_chain(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    ends = T0 + 1800 * np.arange(1, 5)
    first = store.ingest_intervals(intervals("M1", ends, [1, 2, 3, 4]))
    assert (first.inserted, first.duplicates, first.revisions) == (4, 0, 0)
    again = store.ingest_intervals(intervals("M1", ends, [1, 2, 3, 4]))
    assert (again.inserted, again.duplicates, again.revisions) == (0, 4, 0)
    changed = store.ingest_intervals(intervals("M1", ends[:1], [10]))
    assert changed.revisions == 1
    store.ingest_intervals(intervals("M1", ends[:1], [11]))
    chain = store.revisions("M1", A, datetime.fromtimestamp(int(ends[0]), UTC))
    assert [(r.revision, r.value) for r in chain] == [(0, 1.0), (1, 10.0), (2, 11.0)]
    assert chain[-1].superseded_at is None
    assert chain[0].superseded_at is not None
    raw = store.read_intervals(t(1), t(2), ["M1"])
    assert raw.column("value").to_pylist() == [11.0, 2.0, 3.0, 4.0]
    assert raw.column("revision").to_pylist() == [2, 0, 0, 0]


def test_a_key_twice_in_one_batch_is_a_revision_in_order(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    end = T0 + 1800
    result = store.ingest_intervals(intervals("M1", [end, end, end], [5, 5, 6]))
    assert (result.inserted, result.duplicates, result.revisions) == (1, 1, 1)
    chain = store.revisions("M1", A, datetime.fromtimestamp(end, UTC))
    assert [r.value for r in chain] == [5.0, 6.0]


def test_bad_rows_are_rejected_and_the_rest_kept(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    batch = pa.concat_tables(
        [
            intervals("M1", [T0 + 1800], [1.0]),
            intervals("NOPE", [T0 + 1800], [1.0]),
            intervals("M1", [T0 + 3600], [float("nan")]),
            intervals("M1", [T0 + 5400], [1.0], channel="not-obis"),
        ]
    )
    result = store.ingest_intervals(batch)
    assert result.inserted == 1
    reasons = {row.index: row.reason for row in result.rejected}
    assert "unknown meter 'NOPE'" in reasons[1]
    assert "not finite" in reasons[2]
    assert "OBIS" in reasons[3]


def test_a_malformed_batch_is_refused_whole(store: IntervalStore) -> None:
    with pytest.raises(InvalidInputError, match="value"):
        store.ingest_intervals(pa.table({"meter": ["M1"], "channel": [A], "interval_end": [t(1)]}))


def test_registers_and_events_are_idempotent(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    regs = pa.table(
        {"meter": ["M1", "M1"], "obis": [A, A], "read_at": [t(1), t(2)], "value": [100.0, 150.0]},
        schema=REGISTER_SCHEMA,
    )
    assert store.ingest_registers(regs).inserted == 2
    again = store.ingest_registers(regs)
    assert (again.inserted, again.duplicates) == (0, 2)
    revised = store.ingest_registers(regs.slice(0, 1).set_column(3, "value", pa.array([101.0])))
    assert revised.revisions == 1
    events = pa.table(
        {
            "meter": ["M1"],
            "log": ["power_failure"],
            "seq": [1],
            "at": [t(1, 3)],
            "code": [1],
            "detail": [""],
        },
        schema=EVENT_SCHEMA,
    )
    assert store.ingest_events(events).inserted == 1
    assert store.ingest_events(events).duplicates == 1
    read = store.read_events(t(1), t(2), ["M1"])
    assert read.column("code").to_pylist() == [1]


def test_validated_versions_are_kept(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    row = {
        "meter": ["M1"],
        "channel": [A],
        "interval_end": [t(1, 1)],
        "value": [5.0],
        "quality": ["S"],
        "method": pa.array([2], pa.int8()),
        "checks": pa.array([1], pa.int32()),
    }
    assert store.write_validated(pa.table(row), "vee").inserted == 1
    assert store.write_validated(pa.table(row), "vee").unchanged == 1
    row.update(value=[7.0], quality=["A"], method=pa.array([0], pa.int8()))
    assert store.write_validated(pa.table(row), "vee").changed == 1
    history = store.validated_history("M1", A, t(1, 1))
    assert [(v.version, v.value, v.quality.value) for v in history] == [
        (1, 5.0, "S"),
        (2, 7.0, "A"),
    ]


def test_closed_months_export_to_parquet(store: IntervalStore, tmp_path: Path) -> None:
    store.register_meters([MeterRegistration("M1")])
    store.ingest_intervals(intervals("M1", T0 + 1800 * np.arange(1, 49), np.arange(48.0)))
    with pytest.raises(MonthNotClosedError):
        store.export_month(2024, 1, tmp_path, as_of=datetime(2024, 2, 3, tzinfo=UTC))
    paths = store.export_month(2024, 1, tmp_path, as_of=datetime(2024, 3, 1, tzinfo=UTC))
    raw = pq.read_table(paths[0])
    assert raw.num_rows == 48
    assert raw.column("value").to_pylist() == list(np.arange(48.0))


def test_missing_reads_are_listed_per_meter(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1", profile_capacity_days=10)])
    ends = T0 + 1800 * np.arange(1, 49)
    keep = np.ones(48, bool)
    keep[[5, 6, 7, 20]] = False
    store.ingest_intervals(intervals("M1", ends[keep], np.ones(int(keep.sum()))))
    gaps = missing_reads(store, t(1), t(2), as_of=t(5)).to_pylist()
    assert [(g["missing"], int(g["first_end"].timestamp())) for g in gaps] == [
        (3, int(ends[5])),
        (1, int(ends[20])),
    ]
    assert all(g["recoverable"] for g in gaps)
    assert not any(
        g["recoverable"] for g in missing_reads(store, t(1), t(2), as_of=t(20)).to_pylist()
    )


def test_an_unsorted_batch_with_repeats_is_applied_in_batch_order(store: IntervalStore) -> None:
    """Each key's revision chain is its values in batch order, an exact repeat of the value
    just before it dropped; computed here with a plain dict, independent of the store."""
    store.register_meters([MeterRegistration("M1"), MeterRegistration("M2")])
    rng = np.random.default_rng(11)
    n = 400
    meters = rng.choice(["M1", "M2"], n)
    ends = T0 + 1800 * rng.integers(1, 40, n)
    values = rng.integers(0, 3, n).astype(float)
    chains: dict[tuple[str, int], list[float]] = {}
    for meter, end, value in zip(meters.tolist(), ends.tolist(), values.tolist(), strict=True):
        chain = chains.setdefault((meter, end), [])
        if not chain or chain[-1] != value:
            chain.append(value)
    batch = pa.table(
        {
            "meter": pa.array(meters).dictionary_encode(),  # dictionary columns are accepted
            "channel": [A] * n,
            "interval_end": pa.array(ends).cast(pa.timestamp("s", tz="UTC")),
            "value": values,
            "status": pa.array(np.zeros(n, np.int32)),
        }
    )
    result = store.ingest_intervals(batch)
    assert result.inserted == len(chains)
    assert result.revisions == sum(len(c) - 1 for c in chains.values())
    assert result.inserted + result.revisions + result.duplicates == n
    for (meter, end), chain in list(chains.items())[:25]:
        stored = store.revisions(meter, A, datetime.fromtimestamp(end, UTC))
        assert [r.value for r in stored] == chain


def test_a_batch_over_two_months_lands_in_both(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1")])
    ends = int(datetime(2024, 1, 31, 22, tzinfo=UTC).timestamp()) + 1800 * np.arange(1, 9)
    assert store.ingest_intervals(intervals("M1", ends, np.arange(8.0))).inserted == 8
    raw = store.read_intervals(datetime(2024, 1, 31, tzinfo=UTC), datetime(2024, 2, 2, tzinfo=UTC))
    assert raw.column("value").to_pylist() == list(np.arange(8.0))
    again = store.ingest_intervals(intervals("M1", ends + 1800 * 8, np.arange(8.0)))
    assert again.inserted == 8


def test_rows_stored_behind_the_watermark_are_merged(pg_schema: str) -> None:
    """Another writer committed a row after this store read its watermark: the direct
    COPY meets the primary key, rolls back to its savepoint and the rows are merged."""
    import uuid

    import psycopg

    from meterstack.mdm.intervals import PostgresIntervalStore

    from .conftest import PG

    schema = f"{pg_schema}_{uuid.uuid4().hex[:8]}"
    store = PostgresIntervalStore(PG, schema)
    try:
        store.register_meters([MeterRegistration("M1")])
        ends = T0 + 1800 * np.arange(1, 5)
        meter_id = store.meter_ids(["M1"])["M1"]
        with psycopg.connect(PG, autocommit=True) as other:
            other.execute(f"SET search_path TO {schema}")
            other.execute(
                "CREATE TABLE IF NOT EXISTS interval_reading_y2024m01 PARTITION OF"
                " interval_reading FOR VALUES FROM ('2024-01-01 00:00+00')"
                " TO ('2024-02-01 00:00+00')"
            )
            other.execute(
                "INSERT INTO interval_reading (meter_id, channel_id, interval_end, value, status)"
                " VALUES (%s, 1, to_timestamp(%s), 99, 0)",
                [meter_id, int(ends[2])],
            )
        result = store.ingest_intervals(intervals("M1", ends, [1.0, 2.0, 3.0, 4.0]))
        assert (result.inserted, result.revisions, result.duplicates) == (3, 1, 0)
        chain = store.revisions("M1", A, datetime.fromtimestamp(int(ends[2]), UTC))
        assert [r.value for r in chain] == [99.0, 3.0]
    finally:
        store.close()


@given(
    st.lists(
        st.tuples(st.sampled_from(["M1", "M2"]), st.integers(1, 8), st.integers(0, 2)),
        min_size=1,
        max_size=60,
    )
)
def test_any_batch_keeps_every_value_in_order(rows: list[tuple[str, int, int]]) -> None:
    """Whatever the order and repeats, each key's chain of values is the batch's, in batch
    order with exact repeats of the previous value dropped, and nothing is lost."""
    from meterstack.mdm.intervals import DuckDBIntervalStore

    store = DuckDBIntervalStore()
    try:
        store.register_meters([MeterRegistration("M1"), MeterRegistration("M2")])
        chains: dict[tuple[str, int], list[float]] = {}
        for meter, slot, value in rows:
            chain = chains.setdefault((meter, slot), [])
            if not chain or chain[-1] != value:
                chain.append(float(value))
        batch = pa.table(
            {
                "meter": [r[0] for r in rows],
                "channel": [A] * len(rows),
                "interval_end": pa.array([T0 + 1800 * r[1] for r in rows]).cast(
                    pa.timestamp("s", tz="UTC")
                ),
                "value": [float(r[2]) for r in rows],
                "status": pa.array(np.zeros(len(rows), np.int32)),
            }
        )
        result = store.ingest_intervals(batch)
        assert result.inserted == len(chains)
        assert result.inserted + result.revisions + result.duplicates == len(rows)
        for (meter, slot), chain in chains.items():
            stored = store.revisions(meter, A, datetime.fromtimestamp(T0 + 1800 * slot, UTC))
            assert [r.value for r in stored] == chain
    finally:
        store.close()
