"""Fixtures of the API tests: an app on a SQLite operational store and a DuckDB interval
store, with one login per role and a small prepaid fleet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from meterstack.api import create_app, create_user
from meterstack.core.config import load_settings
from meterstack.mdm.ingest import INTERVAL_SCHEMA
from meterstack.mdm.intervals import DuckDBIntervalStore, MeterRegistration
from meterstack.mdm.operational import create_operational_engine, migrate
from meterstack.vending import StsParameters

VENDING_KEY = "abababababababab"
PASSWORD = "correct horse battery"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
_STARTED = datetime.now(UTC)


class AnchoredClock:
    """The app's clock: real time passing, but starting one minute after ``NOW``, so the
    API's default windows ("the last 2 days") line up with the seeded data whatever the
    wall-clock minute the tests run at."""

    def now(self) -> datetime:
        return NOW + timedelta(minutes=1) + (datetime.now(UTC) - _STARTED)


def settings_for(tmp_path: Path, **api: Any) -> Any:
    return load_settings(
        tmp_path / "none.toml" if False else None,
        data_dir=tmp_path / "data",
        timezone="Africa/Johannesburg",
        currency="ZAR",
        vending={"vending_key": VENDING_KEY},
        api={"jwt_secret": "x" * 32, "rate_limit_per_s": 1000, "rate_limit_burst": 1000, **api},
    )


def hourly_load(meter: str, days: int, kw: float, end: datetime = NOW) -> pa.Table:
    """Half-hour A+ intervals at a constant ``kw`` for ``days`` before ``end``."""
    n = days * 48
    ends = int(end.timestamp()) - 1800 * np.arange(n)[::-1]
    return pa.table(
        {
            "meter": [meter] * n,
            "channel": ["1.0.1.8.0.255"] * n,
            "interval_end": pa.array(ends).cast(pa.timestamp("s", tz="UTC")),
            "value": pa.array(np.full(n, kw * 500.0)),
            "status": pa.array(np.zeros(n, np.int32)),
        },
        schema=INTERVAL_SCHEMA,
    )


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    engine: Engine
    store: DuckDBIntervalStore
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return self.headers[who]


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def build_api(
    tmp_path: Path, template: Api | None = None, *, run_webhooks: bool = True, **api_settings: Any
) -> Api:
    """An app with the fleet and logins; from a copy of ``template``'s database if given
    (scrypt makes logins slow on purpose: they are made once per session)."""
    settings = settings_for(tmp_path, **api_settings)
    if template is not None:
        source = Path(str(template.engine.url.database))
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copy(f"{source}{suffix}", tmp_path / f"op.db{suffix}")
    engine = create_operational_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(engine)
    store = DuckDBIntervalStore()
    app = create_app(
        settings, engine=engine, store=store, clock=AnchoredClock(), run_webhooks=run_webhooks
    )
    client = TestClient(app)
    api = Api(app, client, engine, store)
    store.register_meters([MeterRegistration("MA1"), MeterRegistration("MB1")])
    store.ingest_intervals(hourly_load("MA1", 3, 1.0))
    store.ingest_intervals(hourly_load("MB1", 3, 2.0))
    if template is not None:
        api.headers, api.ids = dict(template.headers), dict(template.ids)
        return api
    service = app.state.context.vending
    cust_a = service.create_customer("Alice", "test")
    cust_b = service.create_customer("Bob", "test")
    acc_a = service.open_account(
        cust_a, number="ACC-A", mode="meter", tariff="prepaid-fbe-50", actor="test"
    )
    acc_b = service.open_account(
        cust_b, number="ACC-B", mode="account", tariff="prepaid-ibt-2-block", actor="test"
    )
    sts = StsParameters("600727", "00000000001", "123456", "01", 1)
    service.register_meter("MA1", acc_a, "test", sts=sts)
    service.register_meter("MB1", acc_b, "test")
    vendor = service.create_vendor("Corner shop", "ZAR", "test")
    other_vendor = service.create_vendor("Other shop", "ZAR", "test")
    service.deposit(vendor, Decimal("10000"), "test")
    create_user(engine, "admin", PASSWORD, "admin")
    create_user(engine, "operator", PASSWORD, "operator")
    create_user(engine, "vendor", PASSWORD, "vendor", vendor_id=vendor)
    create_user(engine, "alice", PASSWORD, "customer", customer_id=cust_a)
    create_user(engine, "bob", PASSWORD, "customer", customer_id=cust_b)
    for who in ("admin", "operator", "vendor", "alice", "bob"):
        api.headers[who] = login(client, who)
    api.ids = {
        "alice": cust_a,
        "bob": cust_b,
        "acc_a": acc_a,
        "acc_b": acc_b,
        "vendor": vendor,
        "other_vendor": other_vendor,
    }
    return api


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    built = build_api(tmp_path_factory.mktemp("api-template"))
    built.engine.dispose()
    yield built
    built.store.close()


@pytest.fixture
def api(tmp_path: Path, template: Api) -> Iterator[Api]:
    built = build_api(tmp_path, template)
    with built.client:
        yield built
    built.store.close()
    built.engine.dispose()


def since(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat()
