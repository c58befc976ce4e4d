"""Opening the stores from :class:`~meterstack.core.config.Settings`, and the imports that
write to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.config import Settings
from meterstack.core.errors import ConfigError
from meterstack.mdm.csv_import import parse_interval_csv
from meterstack.mdm.errors import UnknownMeterError
from meterstack.mdm.greenbutton.importer import parse_greenbutton
from meterstack.mdm.ingest import IngestResult
from meterstack.mdm.intervals.base import IntervalStore, MeterRegistration
from meterstack.mdm.intervals.duckdb_store import DuckDBIntervalStore
from meterstack.mdm.intervals.postgres_store import PostgresIntervalStore
from meterstack.mdm.operational.engine import create_operational_engine, migrate
from meterstack.mdm.operational.models import Meter


def operational_url(settings: Settings) -> str:
    url = settings.mdm.operational_url
    return url or f"sqlite:///{(settings.data_dir / 'operational.db').resolve()}"


def open_operational(settings: Settings) -> Engine:
    """The operational database, migrated to the newest schema."""
    engine = create_operational_engine(operational_url(settings))
    migrate(engine)
    return engine


def open_interval_store(settings: Settings) -> IntervalStore:
    """The interval store the settings name (the head-end writes to it as its sink)."""
    mdm = settings.mdm
    if mdm.interval_backend == "postgresql":
        if not mdm.interval_url:
            raise ConfigError(
                "mdm.interval_url is required when mdm.interval_backend = 'postgresql'"
            )
        return PostgresIntervalStore(mdm.interval_url, mdm.interval_schema)
    return DuckDBIntervalStore(mdm.duckdb_file or settings.data_dir / "intervals.duckdb")


def open_meter_data_sink(settings: Settings) -> IntervalStore:
    """The :class:`~meterstack.mdm.ingest.MeterDataSink` the head-end hands readings to,
    with the operational database's meters registered in it."""
    store = open_interval_store(settings)
    sync_meters(open_operational(settings), store)
    return store


def sync_meters(engine: Engine, store: IntervalStore) -> int:
    """Register every operational meter in the interval store; returns how many."""
    with Session(engine) as session:
        meters = session.scalars(select(Meter)).all()
        store.register_meters(
            MeterRegistration(
                m.id, m.interval_s, m.timezone, m.has_generation, m.profile_capacity_days
            )
            for m in meters
        )
        return len(meters)


def add_meter(
    engine: Engine,
    store: IntervalStore,
    registration: MeterRegistration,
    service: str = "electricity",
) -> None:
    """Create (or update) a meter in the operational database and the interval store."""
    with Session(engine) as session, session.begin():
        meter = session.get(Meter, registration.meter) or Meter(id=registration.meter)
        meter.service = service
        meter.interval_s = registration.interval_s
        meter.timezone = registration.timezone
        meter.has_generation = registration.has_generation
        meter.profile_capacity_days = registration.profile_capacity_days
        meter.status = "active"
        session.add(meter)
    store.register_meters([registration])


@dataclass
class ImportReport:
    """What an import did: the store's result, and every refused reading by its place in
    the file (``line 7``, ``.../IntervalReading[3]``) and reason, whether the file's
    reader or the store refused it."""

    result: IngestResult
    rejected: list[tuple[str, str]]


def _places(
    result: IngestResult, places: Sequence[str], before: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The reader's refusals and the store's, the store's named by the batch row's place."""
    return before + [(places[row.index], row.reason) for row in result.rejected]


def import_greenbutton(
    engine: Engine,
    store: IntervalStore,
    path: Path,
    *,
    meter: str | None = None,
    create_meters: bool = False,
) -> ImportReport:
    """Import a Green Button file: its readings land in the store in one transaction.

    Without ``create_meters``, the readings of a UsagePoint whose meter the store does not
    know are refused by their place (the store names the meter) and the other UsagePoints'
    readings are kept; a file none of whose UsagePoints is known is refused whole with
    :class:`~meterstack.mdm.errors.UnknownMeterError`.
    """
    feed = parse_greenbutton(Path(path), meter)
    known = {r.meter for r in store.meters()}
    unknown = [point for point in feed.usage_points if point.meter not in known]
    if unknown and not create_meters and len(unknown) == len(feed.usage_points):
        point = unknown[0]
        raise UnknownMeterError(
            "meter", point.meter, f"{path}: UsagePoint {point.href} has no meter here"
        )
    for point in unknown if create_meters else []:
        regular = point.interval_s if len(point.interval_s) == 1 else set()
        interval = next(iter(regular), None)
        if interval is not None and (interval > 86400 or 86400 % interval):
            interval = None
        service = {0: "electricity", 1: "gas", 2: "water"}.get(
            int(point.service) if point.service is not None else -1, "unknown"
        )
        add_meter(engine, store, MeterRegistration(point.meter, interval), service)
    result = store.ingest_intervals(feed.batch)
    return ImportReport(result, _places(result, feed.places, feed.rejected))


def import_csv(store: IntervalStore, path: Path) -> ImportReport:
    """Import a CSV file of readings (rows of unknown meters are rejected, the rest kept).

    Every refused row is reported by its line in the file, in file order.
    """
    parsed = parse_interval_csv(Path(path))
    result = store.ingest_intervals(parsed.batch)
    refused = [(line, reason) for line, reason in parsed.rejected]
    refused += [(parsed.lines[row.index], row.reason) for row in result.rejected]
    refused.sort(key=lambda item: item[0])
    return ImportReport(result, [(f"line {line}", reason) for line, reason in refused])
