"""Vends, reversals, re-prints, floats and reconciliation, on SQLite and on PostgreSQL; the
tokens are checked by a real meter's token gateway."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from meterstack.core.time import SimulatedClock
from meterstack.mdm.operational import (
    LedgerEntry,
    PrepaidAccount,
    Vend,
    Vendor,
    entries,
    head_revision,
    migrate,
    schema_revision,
)
from meterstack.mdm.operational.engine import MIGRATIONS
from meterstack.meter import Meter, MeterConfig, PrepaidConfig
from meterstack.meter.config import StsConfig
from meterstack.sts import seal_decoder_key
from meterstack.vending import (
    NotFoundError,
    PermissionRefusedError,
    RequestConflictError,
    VendRefusedError,
    VendRequest,
    trial_balance,
    vendor_day,
)

from .conftest import (
    START,
    drop_schema,
    issuer,
    make_service,
    postgres_engine,
    setup_meter_account,
    sqlite_engine,
    sts_parameters,
)

D = Decimal
KEK = bytes(range(1, 33))


def real_meter(serial: str = "PP0001", drn: str = "00000000001") -> Meter:
    record = sts_parameters(drn).record()
    keys = record.keys
    sealed = seal_decoder_key(issuer().decoder_key(record), keys, KEK, serial)
    config = MeterConfig(
        serial=serial,
        timezone="Africa/Johannesburg",
        prepaid=PrepaidConfig(mode="energy", initial_credit=D(1), low_credit_threshold=D(0)),
        sts=StsConfig(
            decoder_key=sealed,
            supply_group_code=keys.supply_group_code,
            tariff_index=keys.tariff_index,
            key_revision_number=keys.key_revision_number,
            key_type=keys.key_type,
            base_date=2014,
            timezone="Africa/Johannesburg",
        ),
    )
    return Meter(config, commissioned_at=START - timedelta(days=1), key_encryption_key=KEK)


def ledger_sum(engine: Engine) -> Decimal:
    with Session(engine) as session:
        return D(str(session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)))))


def test_a_vend_gives_a_token_the_meter_accepts(engine: Engine, clock: SimulatedClock) -> None:
    service = make_service(engine, clock)
    _, vendor = setup_meter_account(service)
    meter = real_meter()
    first = service.vend(VendRequest("r-1", vendor, "PP0001", amount=D(100)), "shop").vend
    assert first["kwh"] == "91.4"
    assert len(first["token"]) == 20
    result = meter.enter_token(first["token"], START + timedelta(minutes=5))
    assert result.accepted, result.reason
    assert meter.credit is not None
    assert meter.credit.credit == D("92.4")  # 1 kWh before + 91.4 kWh
    # a second vend in the same minute gets the next TID: the meter takes it too
    second = service.vend(VendRequest("r-2", vendor, "PP0001", kwh=D(10)), "shop").vend
    assert second["tid"] == first["tid"] + 1
    assert meter.enter_token(second["token"], START + timedelta(minutes=6)).accepted
    assert meter.credit.credit == D("102.4")
    # the same token again is refused by the meter
    assert meter.enter_token(second["token"], START + timedelta(minutes=7)).reason == "used"


def test_the_same_request_id_returns_the_same_vend(engine: Engine, clock: SimulatedClock) -> None:
    service = make_service(engine, clock)
    _, vendor = setup_meter_account(service)
    request = VendRequest("same", vendor, "PP0001", amount=D(50))
    first = service.vend(request, "shop")
    clock.advance(timedelta(minutes=3))
    again = service.vend(request, "shop")
    assert not first.replayed
    assert again.replayed
    assert again.vend["token"] == first.vend["token"]
    with pytest.raises(RequestConflictError, match="different vend"):
        service.vend(VendRequest("same", vendor, "PP0001", amount=D(60)), "shop")
    with Session(engine) as session:
        assert session.scalar(select(func.count(Vend.id))) == 1


def test_reversal_needs_a_supervisor_and_an_unused_token(
    engine: Engine, clock: SimulatedClock
) -> None:
    service = make_service(engine, clock)
    account, vendor = setup_meter_account(service, debt=D(40), debt_recovery_pct=D(10))
    vend = service.vend(VendRequest("r-1", vendor, "PP0001", amount=D(100)), "shop").vend
    with pytest.raises(PermissionRefusedError, match="vendor"):
        service.reverse(vend["id"], "shop", "vendor", "mistake")
    with Session(engine) as session, session.begin():
        assert service.mark_token_used(session, "PP0001", vend["tid"], START)
    with pytest.raises(VendRefusedError, match="used"):
        service.reverse(vend["id"], "sup", "operator", "mistake")
    other = service.vend(VendRequest("r-2", vendor, "PP0001", amount=D(100)), "shop").vend
    with Session(engine) as session:
        before = session.get(PrepaidAccount, account)
        assert before is not None
        debt_before, kwh_before = D(before.debt), D(before.month_kwh)
    reversed_view = service.reverse(other["id"], "sup", "operator", "customer changed mind")
    assert reversed_view["status"] == "reversed"
    with Session(engine) as session:
        after = session.get(PrepaidAccount, account)
        assert after is not None
        recovered = D(other["receipt"]["debt_recovered"])
        assert recovered > 0
        assert D(after.debt) == debt_before + recovered
        assert D(after.month_kwh) == kwh_before - D(other["kwh"])
        vendor_row = session.get(Vendor, vendor)
        assert vendor_row is not None
        # float: 100000 less the first vend only
        assert D(vendor_row.float_balance) == D(100000) - D(vend["amount"])
        assert [e.action for e in entries(session, "vend", str(other["id"]))] == [
            "vend",
            "reverse",
        ]
    with pytest.raises(VendRefusedError, match="reversed"):
        service.reverse(other["id"], "sup", "admin", "again")
    assert ledger_sum(engine) == 0


def test_reprint_counts_and_refusals(engine: Engine, clock: SimulatedClock) -> None:
    service = make_service(engine, clock)
    _, vendor = setup_meter_account(service, float_amount=D(60))
    vend = service.vend(VendRequest("r-1", vendor, "PP0001", amount=D(50)), "shop").vend
    again = service.reprint(vend["id"], "shop")
    assert again["prints"] == 2
    assert again["token"] == vend["token"]
    with pytest.raises(VendRefusedError, match="float"):
        service.vend(VendRequest("r-2", vendor, "PP0001", amount=D(50)), "shop")
    with pytest.raises(NotFoundError, match="meter"):
        service.vend(VendRequest("r-3", vendor, "NOPE", amount=D(5)), "shop")
    with pytest.raises(NotFoundError, match="vendor"):
        service.vend(VendRequest("r-4", 999, "PP0001", amount=D(5)), "shop")
    with pytest.raises(ValueError, match="either"):
        VendRequest("r-5", vendor, "PP0001")


def test_reconciliation_of_a_day(engine: Engine, clock: SimulatedClock) -> None:
    service = make_service(engine, clock)
    _, vendor = setup_meter_account(service, float_amount=D(1000))
    sold = []
    for index in range(5):
        clock.advance(timedelta(minutes=7))
        sold.append(
            service.vend(VendRequest(f"r-{index}", vendor, "PP0001", amount=D(20 + index)), "s")
        )
    service.reverse(sold[2].vend["id"], "sup", "operator", "wrong meter")
    service.deposit(vendor, D(500), "bank")
    day = START.astimezone(ZoneInfo("Africa/Johannesburg")).date()
    report = service.reconcile(vendor, day, "Africa/Johannesburg", "sup")
    assert report["balanced"]
    assert report["opening"] == "0.00"
    assert report["deposits"] == "1500.00"
    assert report["sales"] == "110.00"  # 20 + 21 + 22 + 23 + 24
    assert report["reversals"] == "22.00"
    assert report["closing"] == "1412.00"
    assert (report["vend_count"], report["reversal_count"]) == (5, 1)
    with Session(engine) as session:
        figures = vendor_day(session, vendor, day, "Africa/Johannesburg")
        assert figures.ledger_closing == D("1412")


def _concurrent_vends(engine: Engine, clock: SimulatedClock) -> None:
    service = make_service(engine, clock)
    account, vendor = setup_meter_account(service, debt=D(30), debt_recovery_pct=D(25))
    requests = [
        VendRequest(f"req-{i % 40}", vendor, "PP0001", amount=D(10 + i % 40)) for i in range(100)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda r: service.vend(r, "shop"), requests))
    tokens: dict[str, set[str]] = {}
    for request, outcome in zip(requests, outcomes, strict=True):
        tokens.setdefault(request.request_id, set()).add(outcome.vend["token"])
    assert len(tokens) == 40
    assert all(len(t) == 1 for t in tokens.values())
    with Session(engine) as session:
        vends = session.scalars(select(Vend)).all()
        assert len(vends) == 40
        assert len({v.tid for v in vends}) == 40
        sold = sum((D(v.amount) for v in vends), D(0))
        assert sold == sum((D(10 + i) for i in range(40)), D(0))
        balances = trial_balance(session)
        assert sum(balances.values(), D(0)) == 0
        assert balances[f"vendor:{vendor}:float"] == -(D(100000) - sold)
        vendor_row = session.get(Vendor, vendor)
        assert vendor_row is not None
        assert D(vendor_row.float_balance) == D(100000) - sold
        prepaid = session.get(PrepaidAccount, account)
        assert prepaid is not None
        assert D(prepaid.month_kwh) == sum((D(v.units) for v in vends), D(0))
        recovered = sum((D(v.receipt["debt_recovered"]) for v in vends), D(0))
        assert D(prepaid.debt) == D(30) - recovered
        assert balances.get(f"customer:{account}:debt", D(0)) == D(30) - recovered
        carry = D(prepaid.carry_over)
        assert balances.get(f"customer:{account}:carry", D(0)) == -carry


def test_hundred_parallel_vends_sqlite(tmp_path: Path, clock: SimulatedClock) -> None:
    engine = sqlite_engine(tmp_path / "op.db")
    try:
        _concurrent_vends(engine, clock)
    finally:
        engine.dispose()


def test_hundred_parallel_vends_postgresql(clock: SimulatedClock) -> None:
    engine, schema = postgres_engine()
    try:
        _concurrent_vends(engine, clock)
    finally:
        engine.dispose()
        drop_schema(schema)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_vending_migration_goes_up_and_down(dialect: str, tmp_path: Path) -> None:
    if dialect == "sqlite":
        engine = sqlite_engine(tmp_path / "m.db")
        schema = None
    else:
        engine, schema = postgres_engine()
    try:
        assert schema_revision(engine) == head_revision() == "0003"
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert schema_revision(engine) == "0002"
        with engine.connect() as conn:
            assert "request_id" not in {
                row[1] if dialect == "sqlite" else row[0]
                for row in conn.execute(
                    text("PRAGMA table_info(vends)")
                    if dialect == "sqlite"
                    else text(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'vends' AND table_schema = current_schema()"
                    )
                )
            }
        migrate(engine)
        assert schema_revision(engine) == "0003"
        clock = SimulatedClock(START)
        service = make_service(engine, clock)
        _, vendor = setup_meter_account(service)
        service.vend(VendRequest("m-1", vendor, "PP0001", amount=D(10)), "shop")
        with engine.begin() as conn, pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            conn.execute(
                text(
                    "INSERT INTO vends (reference, account_id, meter_id, amount, currency,"
                    " vended_at, request_id, vendor_id, prints) SELECT 'x', account_id,"
                    " meter_id, amount, currency, vended_at, request_id, vendor_id, 1 FROM vends"
                )
            )
    finally:
        engine.dispose()
        if schema is not None:
            drop_schema(schema)


def test_a_meter_account_needs_a_tariff_that_prices_tokens(
    engine: Engine, clock: SimulatedClock
) -> None:
    from meterstack.tariff.errors import TariffError
    from meterstack.vending import TariffNotVendableError

    service = make_service(engine, clock)
    customer = service.create_customer("Eve", "test")
    with pytest.raises(TariffNotVendableError, match="time-of-use"):
        service.open_account(
            customer, number="T-1", mode="meter", tariff="tou-3-period", actor="test"
        )
    with pytest.raises(TariffError, match="no saved tariff"):
        service.open_account(customer, number="T-2", mode="meter", tariff="nope", actor="test")
    # smart prepay rates intervals, so a time-of-use tariff is fine there
    service.open_account(customer, number="T-3", mode="account", tariff="tou-3-period", actor="t")
