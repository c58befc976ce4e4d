"""The interval store: one interface, DuckDB and PostgreSQL backends."""

from meterstack.mdm.intervals.base import (
    VALIDATED_SCHEMA,
    IntervalStore,
    MeterRegistration,
    Revision,
    ValidatedVersion,
    ValidatedWrite,
)
from meterstack.mdm.intervals.duckdb_store import DuckDBIntervalStore
from meterstack.mdm.intervals.postgres_store import PostgresIntervalStore

__all__ = [
    "VALIDATED_SCHEMA",
    "DuckDBIntervalStore",
    "IntervalStore",
    "MeterRegistration",
    "PostgresIntervalStore",
    "Revision",
    "ValidatedVersion",
    "ValidatedWrite",
]
