"""Fixtures: the same tests on DuckDB and on a real PostgreSQL (a schema per session)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from meterstack.mdm.ingest import INTERVAL_SCHEMA
from meterstack.mdm.intervals import DuckDBIntervalStore, IntervalStore, PostgresIntervalStore
from tests.conftest import require_service

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    base = f"mdm_test_{uuid.uuid4().hex[:10]}"
    yield base
    with psycopg.connect(PG, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [base + "%"]
        ).fetchall()
        for (name,) in rows:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[IntervalStore]:
    if request.param == "duckdb":
        s: IntervalStore = DuckDBIntervalStore()
    else:
        base = request.getfixturevalue("pg_schema")
        s = PostgresIntervalStore(PG, f"{base}_{uuid.uuid4().hex[:8]}")
    yield s
    s.close()


def t(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def intervals(
    meter: str,
    ends_s: np.ndarray,
    values: np.ndarray,
    channel: str = "1.0.1.8.0.255",
    status: np.ndarray | None = None,
) -> pa.Table:
    n = len(ends_s)
    return pa.table(
        {
            "meter": [meter] * n,
            "channel": [channel] * n,
            "interval_end": pa.array(np.asarray(ends_s, dtype=np.int64)).cast(
                pa.timestamp("s", tz="UTC")
            ),
            "value": pa.array(np.asarray(values, dtype=np.float64)),
            "status": pa.array(
                np.zeros(n, np.int32) if status is None else np.asarray(status, np.int32)
            ),
        },
        schema=INTERVAL_SCHEMA,
    )
