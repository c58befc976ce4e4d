"""Meter data management: the store of readings and events, VEE, Green Button.

* :mod:`~meterstack.mdm.ingest`: the contract with the head-end (Arrow batches and the
  :class:`MeterDataSink` protocol).
* :mod:`~meterstack.mdm.operational`: meters, service points, customers, accounts, tariff
  assignments, commands, alarms, vends, bills and the append-only audit log (SQLAlchemy,
  Alembic; SQLite or PostgreSQL).
* :mod:`~meterstack.mdm.intervals`: the interval store (DuckDB or PostgreSQL), idempotent,
  with revisions, raw and validated versions, and Parquet archives of closed months.
* :mod:`~meterstack.mdm.vee`: validation, estimation and editing.
* :mod:`~meterstack.mdm.greenbutton`, :mod:`~meterstack.mdm.csv_import`: files in and out.
"""

from meterstack.mdm.gaps import GAP_SCHEMA, missing_reads
from meterstack.mdm.ingest import (
    EVENT_SCHEMA,
    INTERVAL_SCHEMA,
    REGISTER_SCHEMA,
    IngestResult,
    MeterDataSink,
)
from meterstack.mdm.intervals import (
    VALIDATED_SCHEMA,
    DuckDBIntervalStore,
    IntervalStore,
    MeterRegistration,
    PostgresIntervalStore,
)
from meterstack.mdm.quality import Check, Method, Quality
from meterstack.mdm.stores import (
    add_meter,
    import_csv,
    import_greenbutton,
    open_interval_store,
    open_meter_data_sink,
    open_operational,
    sync_meters,
)

__all__ = [
    "EVENT_SCHEMA",
    "GAP_SCHEMA",
    "INTERVAL_SCHEMA",
    "REGISTER_SCHEMA",
    "VALIDATED_SCHEMA",
    "Check",
    "DuckDBIntervalStore",
    "IngestResult",
    "IntervalStore",
    "MeterDataSink",
    "MeterRegistration",
    "Method",
    "PostgresIntervalStore",
    "Quality",
    "add_meter",
    "import_csv",
    "import_greenbutton",
    "missing_reads",
    "open_interval_store",
    "open_meter_data_sink",
    "open_operational",
    "sync_meters",
]
