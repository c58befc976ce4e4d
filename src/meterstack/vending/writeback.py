"""Write-back (seed 002): what meters report of their prepaid state, into the vending records.

"The power card can write the user's accumulated power consumption, remaining power,
zero-crossing power back to the power sales system for the statistical management of the
management department." Three sources feed it:

* customer inquiries (:meth:`meterstack.meter.Meter.inquiry`): total purchased, number of
  purchases, last purchase, remaining credit, debt, cumulative consumption;
* register reads in the MDM interval store (``1.0.1.8.0.255``, Wh): cumulative
  consumption;
* token-log events in the MDM store (code 230, detail ``"<amount> STS TID <tid>"``): the
  vend whose token the meter accepted is marked used, so it can no longer be reversed.

Each inquiry becomes a :class:`~meterstack.mdm.operational.MeterReadback` row. The credit
gap of an energy-mode meter is its reported total purchased kWh less the kWh sold to it
and not reversed: above zero, the meter holds credit that was never sold here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from meterstack.core.time import ensure_utc
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.models import MeterReadback, Vend, VendingMeter
from meterstack.meter.inquiry import CustomerInquiry

__all__ = ["WriteBackReport", "credit_gap_kwh", "write_back"]

_TID = re.compile(r"STS TID (\d+)")
_CREDIT_TOKEN_ACCEPTED = 230
_IMPORT = "1.0.1.8.0.255"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class WriteBackReport:
    """What a write-back stored: readbacks, tokens marked used, and the meters skipped."""

    readbacks: int = 0
    tokens_used: int = 0
    register_reads: int = 0
    unknown_meters: list[str] = field(default_factory=list)


def write_back(
    engine: Engine,
    *,
    at: datetime,
    inquiries: Iterable[CustomerInquiry] = (),
    store: IntervalStore | None = None,
    since: datetime | None = None,
) -> WriteBackReport:
    """Store inquiries and, from ``store``, register reads and token-log events since
    ``since`` (up to ``at``), for the meters vending knows."""
    at = ensure_utc(at, "at")
    report = WriteBackReport()
    with Session(engine) as session, session.begin():
        known = set(session.scalars(select(VendingMeter.meter_id)))
        for inquiry in inquiries:
            if inquiry.serial not in known:
                report.unknown_meters.append(inquiry.serial)
                continue
            session.add(
                MeterReadback(
                    meter_id=inquiry.serial,
                    read_at=at,
                    source="inquiry",
                    total_purchased=inquiry.total_purchased,
                    purchase_count=inquiry.purchase_count,
                    last_purchase_amount=inquiry.last_purchase_amount,
                    remaining_credit=inquiry.remaining_credit,
                    cumulative_consumption_kwh=inquiry.cumulative_consumption_kwh,
                    debt=inquiry.debt,
                    credit_unit=inquiry.credit_unit,
                )
            )
            report.readbacks += 1
        if store is not None and known:
            start = ensure_utc(since, "since") if since is not None else _EPOCH
            meters = sorted(known & {r.meter for r in store.meters()})
            if meters:
                events = store.read_events(start, at, meters, [_CREDIT_TOKEN_ACCEPTED])
                for meter, when, detail in zip(
                    events.column("meter").to_pylist(),
                    events.column("at").to_pylist(),
                    events.column("detail").to_pylist(),
                    strict=True,
                ):
                    match = _TID.search(detail or "")
                    if match is None:
                        continue
                    row = session.scalar(
                        select(Vend).where(Vend.meter_id == meter, Vend.tid == int(match[1]))
                    )
                    if row is not None and row.token_used_at is None:
                        row.token_used_at = ensure_utc(when, "at")
                        report.tokens_used += 1
                registers = store.read_registers(start, at, meters, [_IMPORT])
                latest: dict[str, tuple[datetime, float]] = {}
                for meter, when, value in zip(
                    registers.column("meter").to_pylist(),
                    registers.column("read_at").to_pylist(),
                    registers.column("value").to_pylist(),
                    strict=True,
                ):
                    if meter not in latest or when > latest[meter][0]:
                        latest[meter] = (when, value)
                for meter, (when, value) in latest.items():
                    session.add(
                        MeterReadback(
                            meter_id=meter,
                            read_at=ensure_utc(when, "read_at"),
                            source="register",
                            cumulative_consumption_kwh=Decimal(repr(float(value))) / Decimal(1000),
                        )
                    )
                    report.register_reads += 1
    return report


def credit_gap_kwh(session: Session, meter: str) -> Decimal | None:
    """Reported purchased kWh less kWh sold (not reversed), from the newest inquiry of an
    energy-mode meter; None without one."""
    readback = session.scalar(
        select(MeterReadback)
        .where(
            MeterReadback.meter_id == meter,
            MeterReadback.source == "inquiry",
            MeterReadback.credit_unit == "kWh",
        )
        .order_by(MeterReadback.read_at.desc(), MeterReadback.id.desc())
        .limit(1)
    )
    if readback is None or readback.total_purchased is None:
        return None
    sold = session.scalar(
        select(func.coalesce(func.sum(Vend.units), 0)).where(
            Vend.meter_id == meter, Vend.status == "completed", Vend.kind == "sts"
        )
    )
    return Decimal(str(readback.total_purchased)) - Decimal(str(sold or 0))
