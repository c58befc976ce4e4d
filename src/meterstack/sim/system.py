"""The whole system on its embedded defaults: ``meterstack demo``.

:func:`run_system` takes a simulated fleet through every layer, in stages:

1. **fleet**: the meters step through their load shapes (:func:`~meterstack.sim.fleet.run_fleet`),
   their non-volatile images kept under ``data_dir/meters``;
2. **link**: an in-process amqtt broker and a :class:`~meterstack.headend.HeadEnd` that ingests
   into the MDM stores (SQLite operational database, DuckDB interval store). A sample of the
   meters, restored from their images, get communication modules that send their whole load
   profile, event logs, register snapshot and the alarms they raised through the secure
   link; the rest of the fleet's history is bulk-loaded into the interval store as the same
   Arrow batches the head-end writes (sending every interval of a large fleet through one
   Python MQTT broker would not fit the demo's time). Then every meter's stored load profile
   and events are compared with the meter's own: nothing lost, nothing duplicated;
3. **vee**: validation and estimation over the stored intervals;
4. **billing**: a month's bills for the postpaid meters on a template tariff, and vends (STS
   tokens) for the prepaid customers through :class:`~meterstack.vending.VendingService`,
   with the vendor's float and the ledger's balance.

Orchestration level: it opens stores and sockets under the directory it is given.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, select
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from meterstack.analytics import NetworkModel
from meterstack.billing import bills_from_rating
from meterstack.core.config import Settings
from meterstack.core.errors import InvalidInputError, StoreError
from meterstack.core.time import SystemClock, zone
from meterstack.core.units import round_money
from meterstack.headend import BrokerPath, EmbeddedBroker, HeadEnd, HeadEndStore
from meterstack.headend.ingest import PROFILE_CHANNELS, AlarmNotice
from meterstack.link import (
    CommunicationModule,
    LinkDatabase,
    ModuleConfig,
    OutboxPolicy,
    SecuritySuite,
    provision,
)
from meterstack.link.shutdown import cancel_all
from meterstack.link.topics import downlink_filter
from meterstack.link.transports import MqttTransport
from meterstack.mdm import (
    EVENT_SCHEMA,
    INTERVAL_SCHEMA,
    REGISTER_SCHEMA,
    IntervalStore,
    MeterRegistration,
    open_interval_store,
    open_operational,
)
from meterstack.mdm import channels as mdm_channels
from meterstack.mdm.operational.models import (
    Account,
    Alarm,
    Bill,
    Customer,
    ServicePoint,
    Vendor,
)
from meterstack.mdm.operational.models import Meter as MeterRow
from meterstack.mdm.vee import VeeReport, run_vee
from meterstack.meter import Meter, NonVolatileDatabase
from meterstack.meter.device import Alarm as MeterAlarm
from meterstack.meter.events import EVENTS, EventCode
from meterstack.sim.fleet import FleetSummary, run_fleet
from meterstack.sim.loadshapes import generate_load_shapes
from meterstack.sim.scenario import FleetPlan, plan_fleet
from meterstack.sts import TokenIssuer
from meterstack.tariff import rate
from meterstack.tariff.yaml_format import load_template
from meterstack.vending import StsParameters, VendingService, VendRequest, save_tariff
from meterstack.vending.ledger import trial_balance

__all__ = [
    "STAGES",
    "BillingReport",
    "LinkReport",
    "StageProgress",
    "SystemSummary",
    "VendingReport",
    "default_live_meters",
    "prepare_data_dir",
    "run_system",
]

#: The stages in the order they run, with what the progress display calls them.
STAGES = {
    "fleet": "simulating the fleet (meter-intervals)",
    "link": "link and head-end into MDM (meters)",
    "vee": "VEE over stored intervals (groups)",
    "billing": "bills and vends (accounts)",
}

#: Called with a stage's name, the work done in it and its total.
StageProgress = Callable[[str, int, int], None]

A_PLUS = mdm_channels.A_PLUS.obis
A_MINUS = mdm_channels.A_MINUS.obis
ACTOR = "demo"
POSTPAID_TARIFF = "residential-flat"
PREPAID_TEMPLATE = "prepaid-ibt-2-block"
PREPAID_TARIFF = "demo-prepaid"
MARKER = ".meterstack-demo"
_EVER = (datetime(1970, 1, 2, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def default_live_meters(meters: int) -> int:
    """How many meters send their history through the live link by default: all of a
    small fleet, a sample of 24 of a larger one (the rest is bulk-loaded)."""
    return min(meters, 24)


def prepare_data_dir(path: Path) -> Path:
    """Empty ``path`` for a new demo run (it must be a demo directory or absent).

    Raises
    ------
    InvalidInputError
        ``path`` exists, is not empty and was not made by the demo (the demo never removes
        what it did not create).
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InvalidInputError("--data-dir", str(path), "is a file, not a directory")
        if any(path.iterdir()) and not (path / MARKER).exists():
            raise InvalidInputError(
                "--data-dir",
                str(path),
                "is not empty and was not made by `meterstack demo`; give an empty or new one",
            )
        for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir() and not child.is_symlink():
                child.rmdir()
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by meterstack demo; removed and rebuilt on each run\n")
    return path


@dataclass
class LinkReport:
    """What went through the link and what the stores hold afterwards."""

    live_meters: int = 0
    bulk_meters: int = 0
    frames_applied: int = 0
    redeliveries_suppressed: int = 0
    alarms_sent: int = 0
    alarms_stored: int = 0
    intervals_expected: int = 0  # meter-interval-channel rows
    intervals_stored: int = 0
    intervals_lost: int = 0
    intervals_unexpected: int = 0
    values_differing: int = 0
    revisions: int = 0
    events_expected: int = 0
    events_stored: int = 0
    events_lost: int = 0
    events_unexpected: int = 0
    registers_stored: int = 0
    live_seconds: float = 0.0
    bulk_seconds: float = 0.0

    @property
    def intact(self) -> bool:
        """Every interval and event stored exactly once with the meter's value."""
        return (
            self.intervals_lost == 0
            and self.intervals_unexpected == 0
            and self.values_differing == 0
            and self.revisions == 0
            and self.intervals_stored == self.intervals_expected
            and self.events_lost == 0
            and self.events_unexpected == 0
            and self.events_stored == self.events_expected
            and self.alarms_stored == self.alarms_sent
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name[-8:] != "_seconds"
        }
        document["live_seconds"] = round(self.live_seconds, 3)
        document["bulk_seconds"] = round(self.bulk_seconds, 3)
        document["intact"] = self.intact
        return document


@dataclass
class BillingReport:
    """The postpaid meters' bills for the period."""

    tariff: str = POSTPAID_TARIFF
    bills: int = 0
    accounts: int = 0
    kwh: float = 0.0
    total: Decimal = Decimal(0)
    currency: str = "USD"

    def to_json(self) -> dict[str, Any]:
        return {
            "tariff": self.tariff,
            "bills": self.bills,
            "accounts": self.accounts,
            "kwh": round(self.kwh, 3),
            "total": str(self.total),
            "currency": self.currency,
        }


@dataclass
class VendingReport:
    """Vends for the prepaid customers."""

    tariff: str = PREPAID_TARIFF
    customers: int = 0
    vends: int = 0
    tokens: int = 0
    amount: Decimal = Decimal(0)
    kwh: Decimal = Decimal(0)
    currency: str = "USD"
    float_deposited: Decimal = Decimal(0)
    float_left: Decimal = Decimal(0)
    ledger_accounts: int = 0
    ledger_sum: Decimal = Decimal(0)
    replay_same_token: bool = False

    @property
    def ledger_balanced(self) -> bool:
        return self.ledger_sum == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "tariff": self.tariff,
            "customers": self.customers,
            "vends": self.vends,
            "tokens": self.tokens,
            "amount": str(self.amount),
            "kwh": str(self.kwh),
            "currency": self.currency,
            "float_deposited": str(self.float_deposited),
            "float_left": str(self.float_left),
            "ledger_accounts": self.ledger_accounts,
            "ledger_sum": str(self.ledger_sum),
            "ledger_balanced": self.ledger_balanced,
            "replay_same_token": self.replay_same_token,
        }


@dataclass
class SystemSummary:
    """Everything the demo did, stage by stage."""

    fleet: FleetSummary
    link: LinkReport
    vee: VeeReport
    billing: BillingReport
    vending: VendingReport
    data_dir: Path
    start: datetime
    end: datetime
    network: NetworkModel
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = self.fleet.to_json()
        document["period"] = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        document["data_dir"] = str(self.data_dir)
        document["network"] = {
            "file": str(self.data_dir / NETWORK_FILE),
            "transformers": self.network.n_transformers,
            "feeders": len(self.network.feeders),
        }
        document["link"] = self.link.to_json()
        vee = dict(self.vee.as_dict())
        vee["quality"] = dict(sorted(self.vee.quality.items()))
        vee["checks"] = dict(sorted(self.vee.checks.items()))
        document["vee"] = vee
        document["billing"] = self.billing.to_json()
        document["vending"] = self.vending.to_json()
        document["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        return document


#: The demo fleet's network model, written into the data directory for the Grid page.
NETWORK_FILE = "network.csv"


def fleet_network(plan: FleetPlan, transformers_per_feeder: int = 8) -> NetworkModel:
    """The planned fleet on a network model, for the grid analytics.

    Each of the plan's low-voltage feeders (the meters that its outages and voltage
    problems hit together) is supplied by one transformer; ``transformers_per_feeder`` of
    them share a medium-voltage feeder. The demo's transformers have no check meters, so
    the analytics find outages and EN 50160 breaches but make no energy balance.
    """
    groups, transformer = np.unique(plan.feeder.astype(np.int64), return_inverse=True)
    return NetworkModel(
        meters=tuple(config.serial for config in plan.configs),
        transformers=tuple(f"TX{int(g):04d}" for g in groups),
        feeders=tuple(
            f"FDR{k:03d}" for k in range((groups.size - 1) // transformers_per_feeder + 1)
        ),
        meter_transformer=transformer.astype(np.int32),
        transformer_feeder=(np.arange(groups.size) // transformers_per_feeder).astype(np.int32),
        rating_kva=np.full(groups.size, np.nan),
        check_meters=tuple(None for _ in groups),
    )


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    """``settings`` on the embedded stores under ``data_dir`` (whatever the file said)."""
    mdm = settings.mdm.model_copy(
        update={
            "operational_url": None,
            "interval_backend": "duckdb",
            "duckdb_file": None,
            "archive_dir": None,
        }
    )
    return settings.model_copy(update={"data_dir": Path(data_dir), "mdm": mdm})


def run_system(
    settings: Settings,
    *,
    meters: int,
    days: int,
    seed: int,
    first_day: date,
    workers: int,
    issuer: TokenIssuer,
    live_meters: int | None = None,
    state_dir: Path | None = None,
    progress: StageProgress | None = None,
) -> tuple[SystemSummary, Engine, IntervalStore]:
    """Run every stage; return the summary and the filled stores (left open for serving).

    ``settings.data_dir`` must be prepared (:func:`prepare_data_dir`); the stores are made
    there on the embedded defaults.
    """
    if meters < 1:
        raise InvalidInputError("--meters", meters, "at least 1")
    if days < 1:
        raise InvalidInputError("--days", days, "at least 1")
    live = default_live_meters(meters) if live_meters is None else live_meters
    if not 0 <= live <= meters:
        raise InvalidInputError("--live-meters", live, f"0 to the fleet's {meters} meters")
    report = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    tz = zone(settings.timezone)
    begin_local = datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz)
    data_dir = settings.data_dir
    meters_dir = Path(state_dir) if state_dir is not None else data_dir / "meters"

    # 1. the fleet
    clock = time.perf_counter()
    shapes = generate_load_shapes(meters, begin_local, days, seed=seed, timezone=settings.timezone)
    plan = plan_fleet(shapes, seed=seed, timezone=settings.timezone)
    network = fleet_network(plan)
    (data_dir / NETWORK_FILE).write_text(network.to_csv())
    total = shapes.n_meters * shapes.n_intervals
    done = 0
    per_chunk = max(1, shapes.n_meters // min(workers, shapes.n_meters))

    def fleet_progress(intervals: int) -> None:
        nonlocal done
        done = min(total, done + intervals * per_chunk)
        report("fleet", done, total)

    report("fleet", 0, total)
    fleet = run_fleet(shapes, plan, workers=workers, state_dir=meters_dir, progress=fleet_progress)
    report("fleet", total, total)
    seconds["fleet"] = time.perf_counter() - clock
    ends = shapes.interval_end.astype("datetime64[s]")
    step = int(shapes.interval_s)
    start = datetime.fromtimestamp(int(ends[0].astype(np.int64)) - step, UTC)
    end = datetime.fromtimestamp(int(ends[-1].astype(np.int64)), UTC)

    # 2. link, head-end, MDM
    clock = time.perf_counter()
    engine = open_operational(settings)
    _relax_durability(engine)
    store = open_interval_store(settings)
    _register_meters(engine, store, plan, step)
    link = _link_stage(
        engine,
        store,
        plan,
        meters_dir=meters_dir,
        data_dir=data_dir,
        live=live,
        report=report,
    )
    seconds["link"] = time.perf_counter() - clock

    # 3. VEE
    clock = time.perf_counter()
    report("vee", 0, 1)
    vee = run_vee(
        store,
        start,
        end,
        as_of=end,
        history_days=settings.mdm.vee_history_days,
        actor=ACTOR,
        progress=lambda done, total: report("vee", done, total),
    )
    seconds["vee"] = time.perf_counter() - clock

    # 4. bills and vends
    clock = time.perf_counter()
    prepaid = sorted(plan.habits)
    report("billing", 0, meters)
    billing = _bill_postpaid(
        engine, store, plan=plan, start=start, end=end, step=step, settings=settings
    )
    report("billing", meters - len(prepaid), meters)
    vending = _vend_prepaid(
        engine,
        plan=plan,
        settings=settings,
        issuer=issuer,
        report=report,
        offset=meters - len(prepaid),
    )
    report("billing", meters, meters)
    seconds["billing"] = time.perf_counter() - clock

    summary = SystemSummary(
        fleet=fleet,
        link=link,
        vee=vee,
        billing=billing,
        vending=vending,
        data_dir=data_dir,
        start=start,
        end=end,
        network=network,
        stage_seconds=seconds,
    )
    return summary, engine, store


# ---------------------------------------------------------------------- registration


def _relax_durability(engine: Engine) -> None:
    """The demo's SQLite database is rebuilt on every run: commit without an fsync each
    (WAL with ``synchronous=NORMAL`` stays consistent, it may only lose the last commits
    on a power cut)."""
    if engine.dialect.name != "sqlite":
        return

    @sqlalchemy_event.listens_for(engine, "connect")
    def _normal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # the pooled connections were opened before the listener


def _register_meters(engine: Engine, store: IntervalStore, plan: FleetPlan, step: int) -> None:
    registrations = [
        MeterRegistration(
            config.serial,
            step,
            config.timezone,
            config.export_expected,
            config.profile_capacity_days,
        )
        for config in plan.configs
    ]
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for reg in registrations:
            session.add(
                MeterRow(
                    id=reg.meter,
                    service="electricity",
                    interval_s=reg.interval_s,
                    timezone=reg.timezone,
                    has_generation=reg.has_generation,
                    profile_capacity_days=reg.profile_capacity_days,
                    status="active",
                    installed_at=now,
                )
            )
    store.register_meters(registrations)


# ---------------------------------------------------------------------- link


#: The column of a :class:`~meterstack.meter.ProfileEntry` that each link profile field
#: carries. The link sends integers (energy in Wh/varh, voltage in cV, demand in dW) and
#: the head-end stores them times ``PROFILE_CHANNELS``' scale, which is therefore also the
#: resolution a stored value has.
_ENTRY_COLUMN = {
    "a_plus_wh": 2,
    "a_minus_wh": 3,
    "r_plus_varh": 4,
    "r_minus_varh": 5,
    "average_voltage_cv": 6,
    "demand_dw": 7,
}


@dataclass
class _Expected:
    """The meters' own load profiles and events, to compare with the store.

    ``keys`` encode (meter, channel, interval end) as one integer; ``values`` hold the
    meter's value unquantised and ``tolerance`` half the link's resolution.
    """

    serials: list[str] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    tolerance: list[np.ndarray] = field(default_factory=list)
    events: set[tuple[str, str, int]] = field(default_factory=set)


def _key(meter: np.ndarray | int, channel: np.ndarray | int, end_s: np.ndarray) -> np.ndarray:
    return (np.int64(meter) * 8 + channel) * (1 << 34) + end_s.astype(np.int64)


def _profile_matrix(meter: Meter) -> np.ndarray:
    """(n, 9) float64: the meter's load-profile entries as rows."""
    entries = meter.load_profile.entries()
    return np.array(entries, dtype=np.float64).reshape(len(entries), 9)


def _expect(meter: Meter, expected: _Expected) -> None:
    index = len(expected.serials)
    serial = meter.config.serial
    expected.serials.append(serial)
    matrix = _profile_matrix(meter)
    ends = np.rint(matrix[:, 1])
    for channel, (_obis, attribute, scale) in enumerate(PROFILE_CHANNELS):
        column = _ENTRY_COLUMN[attribute]
        expected.keys.append(_key(index, channel, ends))
        expected.values.append(matrix[:, column])
        half = scale / 2 + 1e-9 if scale != 1.0 else 0.0
        expected.tolerance.append(np.full(len(ends), half))
    for kind, log in meter.event_logs.items():
        for event in log:
            expected.events.add((serial, kind.value, event.seq))


def _restored(meters_dir: Path, plan: FleetPlan) -> Iterable[Meter]:
    """Every meter of the fleet, rebuilt from its non-volatile image, in plan order."""
    configs = {config.serial: config for config in plan.configs}
    found: dict[str, Meter] = {}
    for path in sorted(meters_dir.glob("nv-*.db")):
        database = NonVolatileDatabase(path, synchronous="NORMAL")
        try:
            for serial in database.serials():
                if serial in configs:
                    meter = Meter.restore(configs[serial], database.store(serial))
                    if meter is not None:
                        found[serial] = meter
        finally:
            database.close()
    missing = [serial for serial in configs if serial not in found]
    if missing:
        raise StoreError(f"no non-volatile image for meters {', '.join(missing[:5])}")
    return [found[config.serial] for config in plan.configs]


def _with_alarm_queue(meter: Meter) -> Meter:
    """The meter with the alarms it raised in the month back in its queue.

    The simulated month ran without a link (the customers reacted to the alarms instead),
    so the alarms are queued again, oldest dropped past the queue's capacity as the meter
    itself would, for the communication module to send.
    """
    meter.requeue_alarms(
        MeterAlarm(event.at, int(event.code), event.detail)
        for log in meter.event_logs.values()
        for event in log
        if EVENTS[EventCode(event.code)].alarm
    )
    return meter


def _bulk_batches(meters: list[Meter]) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The meters' load profiles, events and register snapshots as the head-end's batches
    (the values quantised as the link's profile rows quantise them)."""
    serials: list[np.ndarray] = []
    channels: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    values: list[np.ndarray] = []
    statuses: list[np.ndarray] = []
    events: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    registers: dict[str, list[Any]] = {name: [] for name in REGISTER_SCHEMA.names}
    for meter in meters:
        serial = meter.config.serial
        matrix = _profile_matrix(meter)
        n = len(matrix)
        for obis, attribute, scale in PROFILE_CHANNELS:
            column = _ENTRY_COLUMN[attribute]
            serials.append(np.full(n, serial, dtype=object))
            channels.append(np.full(n, obis, dtype=object))
            ends.append(np.rint(matrix[:, 1]).astype(np.int64))
            values.append(np.rint(matrix[:, column] / scale) * scale)
            statuses.append(matrix[:, 8].astype(np.int32))
        for kind, log in meter.event_logs.items():
            for event in log:
                events["meter"].append(serial)
                events["log"].append(kind.value)
                events["seq"].append(event.seq)
                events["at"].append(round(event.at * 1000))
                events["code"].append(int(event.code))
                events["detail"].append(event.detail)
        read_at = round(meter.now.timestamp() * 1000)
        for code, value in sorted(meter.register_values().items()):
            registers["meter"].append(serial)
            registers["obis"].append(str(code))
            registers["read_at"].append(read_at)
            registers["value"].append(float(value))
    intervals = pa.table(
        {
            "meter": pa.array(np.concatenate(serials), pa.string()),
            "channel": pa.array(np.concatenate(channels), pa.string()),
            "interval_end": pa.array(np.concatenate(ends), pa.int64()).cast(
                pa.timestamp("s", tz="UTC")
            ),
            "value": pa.array(np.concatenate(values), pa.float64()),
            "status": pa.array(np.concatenate(statuses), pa.int32()),
        },
        schema=INTERVAL_SCHEMA,
    )
    return (
        intervals,
        pa.table(events, schema=EVENT_SCHEMA),
        pa.table(registers, schema=REGISTER_SCHEMA),
    )


def _link_stage(
    engine: Engine,
    store: IntervalStore,
    plan: FleetPlan,
    *,
    meters_dir: Path,
    data_dir: Path,
    live: int,
    report: StageProgress,
) -> LinkReport:
    total = len(plan.configs)
    report("link", 0, total)
    fleet = list(_restored(meters_dir, plan))
    picks = set(np.linspace(0, total - 1, live).round().astype(int).tolist()) if live else set()
    live_meters = [_with_alarm_queue(m) for i, m in enumerate(fleet) if i in picks]
    bulk_meters = [m for i, m in enumerate(fleet) if i not in picks]
    expected = _Expected()
    for meter in fleet:
        _expect(meter, expected)
    result = LinkReport(live_meters=len(live_meters), bulk_meters=len(bulk_meters))

    clock = time.perf_counter()
    if live_meters:
        asyncio.run(
            _send_live(
                engine,
                store,
                meters=live_meters,
                data_dir=data_dir,
                result=result,
                report=report,
                total=total,
            )
        )
    result.live_seconds = time.perf_counter() - clock

    clock = time.perf_counter()
    for first in range(0, len(bulk_meters), 25):
        chunk = bulk_meters[first : first + 25]
        intervals, events, registers = _bulk_batches(chunk)
        store.ingest_intervals(intervals)
        store.ingest_events(events)
        store.ingest_registers(registers)
        report("link", len(live_meters) + first + len(chunk), total)
    result.bulk_seconds = time.perf_counter() - clock
    _check_stores(store, expected, result)
    return result


async def _send_live(
    engine: Engine,
    store: IntervalStore,
    *,
    meters: list[Meter],
    data_dir: Path,
    result: LinkReport,
    report: StageProgress,
    total: int,
) -> None:
    headend_store = HeadEndStore(data_dir / "headend.db", os.urandom(16))
    database = LinkDatabase(data_dir / "link.db", synchronous="NORMAL")

    def alarm_to_operational(notice: AlarmNotice) -> None:
        with Session(engine) as session, session.begin():
            session.add(
                Alarm(
                    meter_id=notice.meter,
                    code=notice.code,
                    raised_at=datetime.fromtimestamp(notice.at_ms / 1000, UTC),
                    detail=notice.detail,
                )
            )

    async with EmbeddedBroker() as broker:
        modules: list[CommunicationModule] = []
        transports: list[MqttTransport] = []
        for meter in meters:
            serial = meter.config.serial
            credentials = provision(serial, SecuritySuite.AES_128_GCM)
            headend_store.register_meter(credentials)
            transport = MqttTransport(
                broker.host,
                broker.port,
                name="embedded",
                client_id=f"meter-{serial}",
                subscriptions=[downlink_filter(serial)],
                protocol=4,
                publish_timeout_s=10.0,
            )
            module = CommunicationModule(
                meter,
                credentials,
                store=database.for_meter(serial),
                transport=transport,
                clock=SystemClock(),
                outbox_policy=OutboxPolicy(
                    capacity_bytes=16 * 1024 * 1024, ack_timeout_s=10.0, backoff_base_s=0.5
                ),
                config=ModuleConfig(profile_rows_per_message=48, event_rows_per_message=64),
            )
            transport.on_message = module.receive
            modules.append(module)
            transports.append(transport)
        headend = HeadEnd(
            headend_store,
            store,
            [BrokerPath("embedded", broker.host, broker.port, protocol=4)],
            on_alarm=alarm_to_operational,
        )
        tasks: list[asyncio.Task[None]] = []
        async with headend:
            try:
                for module, transport in zip(modules, transports, strict=True):
                    transport.start()
                    if not await transport.wait_connected(10):
                        raise StoreError(f"meter {module.serial} could not reach the broker")
                    result.alarms_sent += module.meter.pending_alarms
                    module.collect()
                    tasks.append(asyncio.create_task(module.run()))
                deadline = time.monotonic() + 30 + 2 * len(modules)
                while time.monotonic() < deadline:
                    left = sum(1 for module in modules if len(module.outbox))
                    report("link", len(modules) - left, total)
                    if not left:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await cancel_all(tasks)
                for module, transport in zip(modules, transports, strict=True):
                    await module.stop()
                    await transport.stop()
        stats = [worker.stats for worker in headend.workers]
        result.frames_applied = sum(s.applied for s in stats)
        result.redeliveries_suppressed = sum(s.duplicates for s in stats)
        result.alarms_stored = len(headend_store.alarms())
    database.close()


def _indices(column: pa.ChunkedArray, index: dict[str, int], missing: int) -> np.ndarray:
    """The position in ``index`` of each string of ``column`` (``missing`` if absent)."""
    encoded = column.combine_chunks().dictionary_encode()
    lookup = np.array(
        [index.get(name, missing) for name in encoded.dictionary.to_pylist()], np.int64
    )
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return lookup[codes] if len(lookup) else np.zeros(len(codes), np.int64)


def _check_stores(store: IntervalStore, expected: _Expected, result: LinkReport) -> None:
    """Compare the interval store with the meters' own profiles: every interval of every
    channel stored once, energies exactly, voltage and demand to the link's resolution."""
    stored = store.read_intervals(*_EVER)
    meter_index = {serial: k for k, serial in enumerate(expected.serials)}
    channel_index = {obis: k for k, (obis, _a, _s) in enumerate(PROFILE_CHANNELS)}
    unknown = len(expected.serials)
    meters = _indices(stored.column("meter"), meter_index, unknown)
    channels = _indices(stored.column("channel"), channel_index, 7)
    got_keys = _key(meters, channels, stored.column("interval_end").cast(pa.int64()).to_numpy())
    got_values = stored.column("value").to_numpy(zero_copy_only=False)
    want_keys = np.concatenate(expected.keys) if expected.keys else np.zeros(0, np.int64)
    want_values = np.concatenate(expected.values) if expected.values else np.zeros(0)
    tolerance = np.concatenate(expected.tolerance) if expected.tolerance else np.zeros(0)
    result.intervals_expected = len(want_keys)
    result.intervals_stored = len(got_keys)
    result.revisions = int(np.count_nonzero(stored.column("revision").to_numpy()))
    # Sorting, not np.unique (whose hashing is slow on these keys).
    order = np.argsort(got_keys, kind="stable")
    got_sorted = got_keys[order]
    first = np.ones(len(got_sorted), dtype=bool)
    first[1:] = got_sorted[1:] != got_sorted[:-1]
    unique_got, unique_at = got_sorted[first], order[first]
    result.intervals_unexpected = len(got_sorted) - len(unique_got)  # duplicated rows
    position = np.searchsorted(unique_got, want_keys).clip(0, max(len(unique_got) - 1, 0))
    found = unique_got[position] == want_keys if len(unique_got) else np.zeros(len(want_keys), bool)
    result.intervals_lost = int(np.count_nonzero(~found))
    want_sorted = np.sort(want_keys)
    back = np.searchsorted(want_sorted, unique_got).clip(0, max(len(want_sorted) - 1, 0))
    known = want_sorted[back] == unique_got if len(want_sorted) else np.zeros(len(unique_got), bool)
    result.intervals_unexpected += int(np.count_nonzero(~known))
    difference = np.abs(want_values[found] - got_values[unique_at[position[found]]])
    result.values_differing = int(np.count_nonzero(difference > tolerance[found]))
    events = store.read_events(*_EVER)
    keys = list(
        zip(
            events.column("meter").to_pylist(),
            events.column("log").to_pylist(),
            events.column("seq").to_pylist(),
            strict=True,
        )
    )
    result.events_expected = len(expected.events)
    result.events_stored = len(keys)
    result.events_lost = len(expected.events - set(keys))
    result.events_unexpected = len(set(keys) - expected.events) + len(keys) - len(set(keys))
    result.registers_stored = store.read_registers(*_EVER).num_rows


# ---------------------------------------------------------------------- bills and vends


def _bill_postpaid(
    engine: Engine,
    store: IntervalStore,
    *,
    plan: FleetPlan,
    start: datetime,
    end: datetime,
    step: int,
    settings: Settings,
) -> BillingReport:
    tariff = load_template(POSTPAID_TARIFF)
    report = BillingReport(currency=tariff.currency)
    serials = [c.serial for i, c in enumerate(plan.configs) if i not in plan.habits]
    if not serials:
        return report
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    ends = np.arange(start_s + step, end_s + 1, step)
    index = {serial: k for k, serial in enumerate(serials)}
    matrices = {channel: np.zeros((len(serials), ends.size)) for channel in (A_PLUS, A_MINUS)}
    table = store.read_validated(start, end, serials, [A_PLUS, A_MINUS])
    rows = _indices(table.column("meter"), index, -1)
    slots = (table.column("interval_end").cast(pa.int64()).to_numpy() - ends[0]) // step
    values = np.nan_to_num(table.column("value").to_numpy(zero_copy_only=False).astype(float))
    channel_of = _indices(table.column("channel"), {A_PLUS: 0, A_MINUS: 1}, 2)
    for number, channel in enumerate((A_PLUS, A_MINUS)):
        chosen = channel_of == number
        np.add.at(matrices[channel], (rows[chosen], slots[chosen]), values[chosen] / 1000.0)
    result = rate(
        tariff,
        ends.astype("datetime64[s]"),
        matrices[A_PLUS],
        matrices[A_MINUS],
        compiled=False,  # a one-off rating: compiling the kernel would cost more than it saves
    )
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for k, serial in enumerate(serials):
            bills = bills_from_rating(result, meter=k)
            customer = Customer(name=f"Postpaid customer {serial}", created_at=now)
            session.add(customer)
            session.flush()
            account = Account(
                number=f"PO-{serial}",
                customer_id=customer.id,
                currency=tariff.currency,
                prepaid=False,
                opened_at=now,
            )
            session.add(account)
            session.flush()
            point = ServicePoint(code=serial, account_id=account.id, timezone=settings.timezone)
            session.add(point)
            session.flush()
            meter_row = session.get(MeterRow, serial)
            assert meter_row is not None
            meter_row.service_point_id = point.id
            kwh = float(matrices[A_PLUS][k].sum())
            total = sum((bill.total for bill in bills), Decimal(0))
            session.add(
                Bill(
                    account_id=account.id,
                    period_start=start,
                    period_end=end,
                    total=total,
                    currency=tariff.currency,
                    issued_at=now,
                    document={
                        "tariff": POSTPAID_TARIFF,
                        "meters": [serial],
                        "kwh": round(kwh, 3),
                        "lines": [line.document() for bill in bills for line in bill.lines],
                    },
                )
            )
            report.bills += 1
            report.accounts += 1
            report.kwh += kwh
            report.total += total
    return report


def _vend_prepaid(
    engine: Engine,
    *,
    plan: FleetPlan,
    settings: Settings,
    issuer: TokenIssuer,
    report: StageProgress,
    offset: int,
) -> VendingReport:
    currency = settings.currency
    result = VendingReport(currency=currency)
    prepaid = sorted(plan.habits)
    if not prepaid:
        return result
    clock = SystemClock()
    service = VendingService.from_settings(engine, clock, settings.vending, issuer=issuer)
    template = load_template(PREPAID_TEMPLATE)
    document = template.model_dump(mode="json", exclude_defaults=True)
    document.update(
        name=PREPAID_TARIFF,
        description=f"{template.description} (the demo's copy in {currency})",
        currency=currency,
        timezone=settings.timezone,
    )
    with Session(engine) as session, session.begin():
        save_tariff(session, document, ACTOR, clock.now())
    vendor = service.create_vendor("Demo vendor", currency, ACTOR)
    amounts = {m: round_money(plan.habits[m].top_up_amount, currency) for m in prepaid}
    result.float_deposited = round_money(sum(amounts.values(), Decimal(0)) * 2, currency)
    service.deposit(vendor, result.float_deposited, ACTOR, reference="demo float")
    first_request: VendRequest | None = None
    first_token: str | None = None
    for done, index in enumerate(prepaid, start=1):
        config = plan.configs[index]
        serial = config.serial
        customer = service.create_customer(config.customer_name or f"Customer {serial}", ACTOR)
        account = service.open_account(
            customer, number=f"PP-{serial}", mode="meter", tariff=PREPAID_TARIFF, actor=ACTOR
        )
        service.register_meter(
            serial,
            account,
            ACTOR,
            sts=_sts_parameters(index),
            timezone=config.timezone,
            interval_s=config.capture_period_s,
        )
        request = VendRequest(f"demo-{serial}-1", vendor, serial, amount=amounts[index])
        outcome = service.vend(request, ACTOR)
        vend = outcome.vend
        result.customers += 1
        result.vends += 1
        result.tokens += 1 if vend["token"] else 0
        result.amount += Decimal(vend["amount"])
        result.kwh += Decimal(vend["kwh"] or 0)
        if first_request is None:
            first_request, first_token = request, vend["token"]
        report("billing", offset + done, len(plan.configs))
    if first_request is not None:
        again = service.vend(first_request, ACTOR)  # the client retries: the same token
        result.replay_same_token = again.replayed and again.vend["token"] == first_token
    with Session(engine) as session:
        row = session.scalar(select(Vendor).where(Vendor.id == vendor))
        assert row is not None
        result.float_left = round_money(Decimal(row.float_balance), currency)
        balances = trial_balance(session)
    result.ledger_accounts = len(balances)
    result.ledger_sum = sum(balances.values(), Decimal(0))
    return result


def _sts_parameters(index: int) -> StsParameters:
    """The demo meters' STS data: IIN 600727 (the STS test IIN), a DRN from the index."""
    return StsParameters(
        iin="600727",
        drn=f"{10_000_000_000 + index:011d}"[-11:],
        supply_group_code="123456",
        tariff_index="01",
        key_revision_number=1,
    )
