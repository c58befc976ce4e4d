"""Seed 002's write-back and user sampling, with answers worked out by hand."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterstack.core.time import SimulatedClock
from meterstack.mdm.ingest import EVENT_SCHEMA, INTERVAL_SCHEMA, REGISTER_SCHEMA
from meterstack.mdm.intervals import DuckDBIntervalStore, MeterRegistration
from meterstack.mdm.operational import MeterReadback
from meterstack.meter.inquiry import CustomerInquiry
from meterstack.vending import (
    VendRefusedError,
    VendRequest,
    credit_gap_kwh,
    sampling_list,
    write_back,
)

from .conftest import START, make_service, setup_meter_account, sqlite_engine
from .test_service import real_meter

D = Decimal


def constant_load(meter: str, start_s: int, days: int, kw: float) -> pa.Table:
    n = days * 48
    ends = start_s + 1800 * (np.arange(n) + 1)
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


def events(meter: str, codes: list[int], at_s: int, details: list[str] | None = None) -> pa.Table:
    n = len(codes)
    return pa.table(
        {
            "meter": [meter] * n,
            "log": ["fraud"] * n,
            "seq": pa.array(np.arange(n, dtype=np.int64) + 1),
            "at": pa.array((at_s + 60 * np.arange(n)) * 1000).cast(pa.timestamp("ms", tz="UTC")),
            "code": pa.array(codes, pa.int32()),
            "detail": details or [""] * n,
        },
        schema=EVENT_SCHEMA,
    )


def test_write_back_marks_used_tokens_and_keeps_inquiries(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "op.db")
    clock = SimulatedClock(START)
    service = make_service(engine, clock)
    _, vendor = setup_meter_account(service)
    meter = real_meter()
    vend = service.vend(VendRequest("w-1", vendor, "PP0001", amount=D(100)), "shop").vend
    at = START + timedelta(minutes=10)
    assert meter.enter_token(vend["token"], at).accepted
    store = DuckDBIntervalStore()
    store.register_meters([MeterRegistration("PP0001")])
    token_events = [e for e in meter.event_logs.values() for e in e if e.code == 230]
    store.ingest_events(
        events(
            "PP0001",
            [230 for _ in token_events],
            int(at.timestamp()),
            [e.detail for e in token_events],
        )
    )
    store.ingest_registers(
        pa.table(
            {
                "meter": ["PP0001"],
                "obis": ["1.0.1.8.0.255"],
                "read_at": pa.array([int(at.timestamp() * 1000)]).cast(
                    pa.timestamp("ms", tz="UTC")
                ),
                "value": [123456.0],
            },
            schema=REGISTER_SCHEMA,
        )
    )
    inquiry = meter.inquiry()
    stranger = dataclasses.replace(inquiry, serial="NOT-OURS")
    report = write_back(engine, at=at, inquiries=[inquiry, stranger], store=store)
    assert (report.readbacks, report.tokens_used, report.register_reads) == (1, 1, 1)
    assert report.unknown_meters == ["NOT-OURS"]
    with pytest.raises(VendRefusedError, match="used"):
        service.reverse(vend["id"], "sup", "admin", "too late")
    with Session(engine) as session:
        rows = session.scalars(select(MeterReadback).order_by(MeterReadback.id)).all()
        assert [(r.source, r.credit_unit) for r in rows] == [("inquiry", "kWh"), ("register", None)]
        assert D(str(rows[0].total_purchased)) == D("91.4")
        assert D(str(rows[1].cumulative_consumption_kwh)) == D("123.456")
        # all the meter's purchased kWh were sold here: no gap
        assert credit_gap_kwh(session, "PP0001") == 0
    store.close()


def test_sampling_ranks_with_evidence(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "op.db")
    clock = SimulatedClock(START)
    service = make_service(engine, clock)
    store = DuckDBIntervalStore()
    recent_kw = {"S1": 1.0, "S2": 0.5, "S3": 1.0, "S4": 0.25}
    tamper = {"S3": 3, "S4": 6}
    accounts = {}
    history_start = int((START - timedelta(days=90)).timestamp())
    recent_start = int((START - timedelta(days=30)).timestamp())
    for index, (serial, kw) in enumerate(recent_kw.items()):
        accounts[serial], _ = setup_meter_account(service, serial, drn=f"0000000000{index}")
        store.register_meters([MeterRegistration(serial)])
        store.ingest_intervals(constant_load(serial, history_start, 60, 1.0))
        store.ingest_intervals(constant_load(serial, recent_start, 30, kw))
        if serial in tamper:
            store.ingest_events(events(serial, [40] * tamper[serial], recent_start + 86400))
    # S4's meter reports 150 kWh purchased that were never sold
    write_back(
        engine,
        at=START,
        inquiries=[
            CustomerInquiry(
                "S4", "", "", 1000, D(0), True, "kWh", D(150), 1, D(150), START, D(10), D(0)
            )
        ],
    )
    ranked = sampling_list(engine, store, at=START, recent_days=30, history_days=60)
    assert [c.meters for c in ranked] == [["S4"], ["S2"], ["S3"]]
    # by hand: median of the recent daily use (24, 12, 24, 6 kWh) is 18 kWh
    s4, s2, s3 = ranked
    assert s4.score == pytest.approx(0.35 * 0.75 + 0.25 * (1 - 6 / 18) + 0.30 * 1 + 0.10, abs=1e-6)
    assert s2.score == pytest.approx(0.35 * 0.5 + 0.25 * (1 - 12 / 18), abs=1e-6)
    assert s3.score == pytest.approx(0.30 * 3 / 5, abs=1e-6)
    assert s4.evidence["tamper_events"] == 6
    assert s4.evidence["credit_gap_kwh"] == "150"
    assert s2.evidence["drop_vs_history"] == pytest.approx(0.5)
    assert s2.evidence["recent_kwh_per_day"] == pytest.approx(12.0)
    assert s4.account_id == accounts["S4"]
    assert [c.rank for c in ranked] == [1, 2, 3]
    assert any("tamper" in reason for reason in s3.reasons)
    store.close()
