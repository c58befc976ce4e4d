"""Account-based smart prepay: the balance from interval data and the tariff, notices, and
remote disconnect and reconnect through a real head-end and Mosquitto."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterstack.headend import BrokerPath, HeadEnd, HeadEndStore
from meterstack.link import LinkDatabase
from meterstack.mdm.ingest import INTERVAL_SCHEMA
from meterstack.mdm.intervals import DuckDBIntervalStore, MeterRegistration
from meterstack.mdm.operational import Command, PrepaidAccount, PrepaidNotice
from meterstack.meter import ControlState
from meterstack.vending import SmartPrepay, VendRequest, trial_balance
from tests.link.support import RecordingSink, make_meter, meter_transport, wait_until

from .conftest import START, make_service, sqlite_engine

D = Decimal


def load(meter: str, first_end: int, count: int, wh: float) -> pa.Table:
    ends = first_end + 1800 * np.arange(count)
    return pa.table(
        {
            "meter": [meter] * count,
            "channel": ["1.0.1.8.0.255"] * count,
            "interval_end": pa.array(ends).cast(pa.timestamp("s", tz="UTC")),
            "value": pa.array(np.full(count, wh)),
            "status": pa.array(np.zeros(count, np.int32)),
        },
        schema=INTERVAL_SCHEMA,
    )


class RecordingPort:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def submit(self, meter: str, name: str, args: dict[str, object] | None = None) -> int:
        self.sent.append((meter, name))
        return len(self.sent)


def setup(tmp_path: Path, port: Any) -> tuple[Any, Any, SmartPrepay, int, int, Any]:
    from meterstack.core.time import SimulatedClock

    engine = sqlite_engine(tmp_path / "op.db")
    clock = SimulatedClock(START)
    service = make_service(engine, clock)
    customer = service.create_customer("Carol", "test")
    account = service.open_account(
        customer,
        number="SP-1",
        mode="account",
        tariff="prepaid-ibt-2-block",  # 2.30 per kWh up to 600 kWh a month, no tax
        actor="test",
        low_credit_threshold=D(60),
    )
    service.register_meter("SP0001", account, "test")
    store = DuckDBIntervalStore()
    store.register_meters([MeterRegistration("SP0001")])
    vendor = service.create_vendor("kiosk", "ZAR", "test")
    service.deposit(vendor, D(1000), "test")
    prepay = SmartPrepay(engine, store, port=port)
    return engine, service, prepay, account, vendor, store


def test_balance_follows_the_month_to_date_charges(tmp_path: Path) -> None:
    port = RecordingPort()
    engine, service, prepay, account, vendor, store = setup(tmp_path, port)
    service.vend(VendRequest("t-1", vendor, "SP0001", amount=D(100)), "kiosk")
    # 40 half hours at 500 Wh = 20 kWh before 08:00 UTC on 10 March: 20 * 2.30 = 46.00
    first = int(START.timestamp()) - 40 * 1800 + 1800
    store.ingest_intervals(load("SP0001", first, 40, 500.0))
    report = prepay.settle(START)
    assert report.charged == D("46.00")
    assert [n["kind"] for n in report.notices] == ["low_credit"]
    assert port.sent == []
    # settling again with nothing new charges nothing
    assert prepay.settle(START).charged == 0
    # 30 kWh more: month to date 50 kWh = 115.00; 69.00 more; balance 54 - 69 = -15
    store.ingest_intervals(load("SP0001", int(START.timestamp()) + 1800, 60, 500.0))
    later = START + timedelta(hours=30)
    report = prepay.settle(later)
    assert report.charged == D("69.00")
    assert port.sent == [("SP0001", "remote_disconnect")]
    with Session(engine) as session:
        row = session.get(PrepaidAccount, account)
        assert row is not None
        assert D(row.balance) == D("-15")
        assert row.supply == "off"
        kinds = list(session.scalars(select(PrepaidNotice.kind).order_by(PrepaidNotice.id)))
        assert kinds == ["low_credit", "disconnected"]
        assert sum(trial_balance(session).values(), D(0)) == 0
    # a top-up brings it back above zero: reconnect
    service.vend(VendRequest("t-2", vendor, "SP0001", amount=D(50)), "kiosk")
    prepay.restore_supply(account, later)
    assert port.sent[-1] == ("SP0001", "remote_reconnect")
    store.close()


async def test_disconnect_and_reconnect_through_the_head_end(
    tmp_path: Path, mosquitto: Any
) -> None:
    headend_store = HeadEndStore(tmp_path / "headend.db", os.urandom(16))
    database = LinkDatabase(tmp_path / "link.db", synchronous="NORMAL")
    transport = meter_transport(mosquitto, "SP0001")
    sim = make_meter("SP0001", database=database, transport=transport)
    transport.on_message = sim.module.receive
    headend_store.register_meter(sim.credentials)
    headend = HeadEnd(
        headend_store, RecordingSink(), [BrokerPath("primary", "127.0.0.1", mosquitto.port)]
    )
    engine, service, prepay, account, vendor, store = setup(tmp_path, headend)
    async with headend:
        transport.start()
        await transport.wait_connected(5)
        task = asyncio.create_task(sim.module.run())
        try:
            service.vend(VendRequest("t-1", vendor, "SP0001", amount=D(20)), "kiosk")
            first = int(START.timestamp()) - 40 * 1800 + 1800
            store.ingest_intervals(load("SP0001", first, 40, 500.0))  # 46.00 > 20.00
            report = prepay.settle(START)
            assert [c["name"] for c in report.commands] == ["remote_disconnect"]
            assert await wait_until(lambda: sim.meter.relay.state is ControlState.DISCONNECTED, 15)
            service.vend(VendRequest("t-2", vendor, "SP0001", amount=D(100)), "kiosk")
            prepay.restore_supply(account, START)
            # control mode 5: the remote reconnect arms the relay for the customer
            assert await wait_until(
                lambda: sim.meter.relay.state is ControlState.READY_FOR_RECONNECTION, 15
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sim.module.stop()
            await transport.stop()
    with Session(engine) as session:
        commands = session.scalars(select(Command).order_by(Command.id)).all()
        assert [c.kind for c in commands] == ["remote_disconnect", "remote_reconnect"]
        assert all(c.payload["headend_command"] is not None for c in commands)
    store.close()
