"""Fixtures of the vending tests: the operational store on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from meterstack.core.time import SimulatedClock
from meterstack.mdm.operational import create_operational_engine, migrate
from meterstack.sts import TokenIssuer, VendingKey
from meterstack.vending import StsParameters, VendingService
from tests.conftest import require_service

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
VENDING_KEY = "abababababababab"
START = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def sqlite_engine(path: Path) -> Engine:
    engine = create_operational_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine


def postgres_engine() -> tuple[Engine, str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = f"vend_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    engine = create_operational_engine(
        PG_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=20, max_overflow=20
    )
    migrate(engine)
    return engine, schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        e = sqlite_engine(tmp_path / "op.db")
        yield e
        e.dispose()
        return
    e, schema = postgres_engine()
    yield e
    e.dispose()
    drop_schema(schema)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


def issuer() -> TokenIssuer:
    return TokenIssuer(VendingKey.from_hex(VENDING_KEY), timezone="Africa/Johannesburg")


def sts_parameters(drn: str = "00000000001") -> StsParameters:
    return StsParameters(
        iin="600727",
        drn=drn,
        supply_group_code="123456",
        tariff_index="01",
        key_revision_number=1,
        key_type=2,
        base_date=2014,
    )


def make_service(engine: Engine, clock: SimulatedClock, **kw: object) -> VendingService:
    return VendingService(engine, clock, issuer=issuer(), **kw)  # type: ignore[arg-type]


def setup_meter_account(
    service: VendingService,
    serial: str = "PP0001",
    tariff: str = "prepaid-fbe-50",
    *,
    mode: str = "meter",
    debt: Decimal = Decimal(0),
    debt_recovery_pct: Decimal = Decimal(0),
    drn: str = "00000000001",
    float_amount: Decimal = Decimal("100000"),
) -> tuple[int, int]:
    """A customer, a prepaid account with one meter, and a vendor with a float."""
    customer = service.create_customer(f"customer of {serial}", "test")
    account = service.open_account(
        customer,
        number=f"A-{serial}",
        mode=mode,  # type: ignore[arg-type]
        tariff=tariff,
        actor="test",
        debt=debt,
        debt_recovery_pct=debt_recovery_pct,
    )
    service.register_meter(
        serial, account, "test", sts=sts_parameters(drn) if mode == "meter" else None
    )
    vendor = service.create_vendor(f"shop for {serial}", "ZAR", "test")
    service.deposit(vendor, float_amount, "test")
    return account, vendor


from tests.link.support import mosquitto  # noqa: E402  (the fixture, for the head-end test)

__all__ = ["mosquitto"]
