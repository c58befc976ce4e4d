"""Meters, their readings, events, credit, habits, power quality, commands; alarms; the
fleet at a glance."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select

from meterstack.api import analysis
from meterstack.api.context import (
    ApiContext,
    Context,
    CurrentPrincipal,
    owned_meters,
    require_meter_access,
    require_roles,
)
from meterstack.api.pagination import Page, PageParams, page_params, paginate
from meterstack.api.problems import PROBLEM_RESPONSES, ProblemError
from meterstack.api.schemas import (
    AlarmIn,
    AlarmOut,
    CommandIn,
    CommandOut,
    ConsumptionOut,
    CreditOut,
    EventOut,
    IntervalPoint,
    IntervalsOut,
    MeterIn,
    MeterOut,
    RegisterOut,
)
from meterstack.api.security import Principal
from meterstack.api.webhooks import enqueue_event
from meterstack.mdm.intervals.base import MeterRegistration
from meterstack.mdm.operational.audit import record as audit
from meterstack.mdm.operational.models import (
    Account,
    Alarm,
    Command,
    Meter,
    MeterReadback,
    PrepaidAccount,
    ServicePoint,
    Vend,
    VendingMeter,
)
from meterstack.vending import StsParameters, vend_view

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Staff = Annotated[Principal, Depends(require_roles("admin", "operator"))]
Pages = Annotated[PageParams, Depends(page_params)]
Start = Annotated[datetime | None, Query(description="exclusive start, ISO 8601 with offset")]
End = Annotated[datetime | None, Query(description="inclusive end, ISO 8601 with offset")]
MAX_SPAN = timedelta(days=400)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window(
    start: datetime | None, end: datetime | None, default_days: int, now: datetime
) -> tuple[datetime, datetime]:
    """``(start, end]`` in UTC; the last ``default_days`` days before ``now`` when not given."""
    if (start is not None and start.tzinfo is None) or (end is not None and end.tzinfo is None):
        raise ProblemError(422, "times need a UTC offset (2024-01-01T00:00:00Z)", field="start")
    stop = _aware(end) if end is not None else now
    begin = _aware(start) if start is not None else stop - timedelta(days=default_days)
    if begin >= stop:
        raise ProblemError(422, "start must be before end", field="start")
    if stop - begin > MAX_SPAN:
        raise ProblemError(422, f"at most {MAX_SPAN.days} days at once", field="end")
    return begin, stop


def _meter_out(session: Any, meter: Meter) -> MeterOut:
    account_id = customer_id = None
    mode = None
    if meter.service_point_id is not None:
        point = session.get(ServicePoint, meter.service_point_id)
        account_id = point.account_id if point is not None else None
    if account_id is not None:
        account = session.get(Account, account_id)
        customer_id = account.customer_id if account is not None else None
        prepaid = session.get(PrepaidAccount, account_id)
        mode = prepaid.mode if prepaid is not None else None
    vending = session.get(VendingMeter, meter.id)
    return MeterOut(
        serial=meter.id,
        status=meter.status,
        timezone=meter.timezone,
        interval_s=meter.interval_s,
        account_id=account_id,
        customer_id=customer_id,
        prepaid_mode=mode,
        sts=vending is not None and vending.iin is not None,
    )


@router.get("/meters", tags=["meters"], response_model=Page[MeterOut])
def list_meters(
    ctx: Context,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    params: Pages,
    status: Annotated[str | None, Query(max_length=16)] = None,
    prefix: Annotated[str | None, Query(max_length=64, description="serial starts with")] = None,
) -> Page[MeterOut]:
    """Meters: all of them for staff, a customer's own for a customer."""
    if principal.role not in ("admin", "operator", "customer"):
        raise ProblemError(403, f"role {principal.role} may not list meters")
    with ctx.session() as session:
        query = select(Meter)
        if principal.role == "customer":
            query = query.where(Meter.id.in_(owned_meters(session, principal.customer_id or -1)))
        if status:
            query = query.where(Meter.status == status)
        if prefix:
            query = query.where(Meter.id.startswith(prefix, autoescape=True))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Meter.id).offset(params.offset).limit(params.page_size)
        ).all()
        items = [_meter_out(session, m) for m in rows]
    return paginate(request, response, params, items, total)


@router.post("/meters", tags=["meters"], status_code=201, response_model=MeterOut)
def register_meter(ctx: Context, body: MeterIn, principal: Staff) -> MeterOut:
    """Put a meter on a prepaid account (with its STS record for a meter-mode account)."""
    sts = StsParameters(**body.sts.model_dump()) if body.sts is not None else None
    ctx.vending.register_meter(
        body.serial,
        body.account_id,
        principal.actor,
        sts=sts,
        timezone=body.timezone,
        interval_s=body.interval_s,
    )
    with ctx.intervals() as store:
        store.register_meters([MeterRegistration(body.serial, body.interval_s, body.timezone)])
    with ctx.session() as session:
        meter = session.get(Meter, body.serial)
        assert meter is not None
        return _meter_out(session, meter)


@router.get("/meters/{serial}", tags=["meters"], response_model=MeterOut)
def get_meter(ctx: Context, serial: str, principal: CurrentPrincipal) -> MeterOut:
    require_meter_access(ctx, principal, serial)
    with ctx.session() as session:
        meter = session.get(Meter, serial)
        assert meter is not None
        return _meter_out(session, meter)


@router.get("/meters/{serial}/intervals", tags=["readings"], response_model=IntervalsOut)
def get_intervals(
    ctx: Context,
    serial: str,
    principal: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    channel: Annotated[str, Query(pattern=r"^\d+\.\d+\.\d+\.\d+\.\d+\.\d+$")] = analysis.A_PLUS,
    validated: bool = False,
) -> IntervalsOut:
    """Interval readings (raw, or validated by VEE) in ``(start, end]`` (default: 2 days)."""
    require_meter_access(ctx, principal, serial)
    begin, stop = window(start, end, 2, ctx.clock.now())
    with ctx.intervals() as store:
        if validated:
            table = store.read_validated(begin, stop, [serial], [channel])
        else:
            table = store.read_intervals(begin, stop, [serial], [channel])
    ends = table.column("interval_end").to_pylist()
    values = table.column("value").to_pylist()
    if validated:
        quality = table.column("quality").to_pylist()
        points = [
            IntervalPoint(interval_end=e, value=v, quality=q)
            for e, v, q in zip(ends, values, quality, strict=True)
        ]
    else:
        status = table.column("status").to_pylist()
        points = [
            IntervalPoint(interval_end=e, value=v, status=s)
            for e, v, s in zip(ends, values, status, strict=True)
        ]
    return IntervalsOut(meter=serial, channel=channel, validated=validated, points=points)


@router.get("/meters/{serial}/registers", tags=["readings"], response_model=list[RegisterOut])
def get_registers(
    ctx: Context,
    serial: str,
    principal: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    obis: Annotated[str | None, Query(pattern=r"^\d+\.\d+\.\d+\.\d+\.\d+\.\d+$")] = None,
) -> list[RegisterOut]:
    """Register reads in ``[start, end]`` (default: 7 days)."""
    require_meter_access(ctx, principal, serial)
    begin, stop = window(start, end, 7, ctx.clock.now())
    with ctx.intervals() as store:
        table = store.read_registers(begin, stop, [serial], [obis] if obis else None)
    return [
        RegisterOut(obis=r["obis"], read_at=r["read_at"], value=r["value"])
        for r in table.to_pylist()
    ]


def _events(
    ctx: ApiContext, serial: str, begin: datetime, stop: datetime, code: int | None
) -> pa.Table:
    with ctx.intervals() as store:
        return store.read_events(begin, stop, [serial], [code] if code is not None else None)


@router.get("/meters/{serial}/events", tags=["readings"], response_model=Page[EventOut])
def get_events(
    ctx: Context,
    request: Request,
    response: Response,
    serial: str,
    principal: CurrentPrincipal,
    params: Pages,
    start: Start = None,
    end: End = None,
    code: Annotated[int | None, Query(ge=0, le=65535)] = None,
) -> Page[EventOut]:
    """Event-log entries, newest first (default: 30 days)."""
    require_meter_access(ctx, principal, serial)
    begin, stop = window(start, end, 30, ctx.clock.now())
    rows = _events(ctx, serial, begin, stop, code).to_pylist()
    rows.reverse()
    items = [
        EventOut(log=r["log"], seq=r["seq"], at=r["at"], code=r["code"], detail=r["detail"])
        for r in rows[params.offset : params.offset + params.page_size]
    ]
    return paginate(request, response, params, items, len(rows))


@router.get("/meters/{serial}/consumption", tags=["readings"], response_model=ConsumptionOut)
def get_consumption(
    ctx: Context,
    serial: str,
    principal: CurrentPrincipal,
    resolution: Literal["30min", "day", "month"] = "day",
    start: Start = None,
    end: End = None,
) -> ConsumptionOut:
    """Consumption series for charts: every interval, or per local day or month (kWh)."""
    meter = require_meter_access(ctx, principal, serial)
    begin, stop = window(
        start, end, {"30min": 2, "day": 31, "month": 366}[resolution], ctx.clock.now()
    )
    with ctx.intervals() as store:
        series = analysis.consumption_series(
            store, serial, begin, stop, resolution, meter.timezone, meter.interval_s or 1800
        )
    return ConsumptionOut(
        meter=serial, resolution=resolution, timezone=meter.timezone, series=series
    )


@router.get("/meters/{serial}/credit", tags=["vending"], response_model=CreditOut)
def get_credit(ctx: Context, serial: str, principal: CurrentPrincipal) -> CreditOut:
    """Prepaid state: the account's balance (smart prepay) or the meter's last write-back
    (STS), and the latest vends."""
    require_meter_access(ctx, principal, serial)
    with ctx.session() as session:
        vending = session.get(VendingMeter, serial)
        prepaid = session.get(PrepaidAccount, vending.account_id) if vending else None
        account = session.get(Account, vending.account_id) if vending else None
        readback = session.scalar(
            select(MeterReadback)
            .where(MeterReadback.meter_id == serial)
            .order_by(MeterReadback.read_at.desc(), MeterReadback.id.desc())
            .limit(1)
        )
        vends = session.scalars(
            select(Vend).where(Vend.meter_id == serial).order_by(Vend.id.desc()).limit(10)
        ).all()
        last = None
        if readback is not None:
            last = {
                "read_at": _aware(readback.read_at).isoformat(),
                "source": readback.source,
                "remaining_credit": _text(readback.remaining_credit),
                "credit_unit": readback.credit_unit,
                "total_purchased": _text(readback.total_purchased),
                "purchase_count": readback.purchase_count,
                "cumulative_consumption_kwh": _text(readback.cumulative_consumption_kwh),
                "debt": _text(readback.debt),
            }
        return CreditOut(
            meter=serial,
            mode=prepaid.mode if prepaid else None,
            currency=account.currency if account else None,
            balance=_text(prepaid.balance) if prepaid else None,
            debt=_text(prepaid.debt) if prepaid else None,
            supply=prepaid.supply if prepaid else None,
            last_readback=last,
            recent_vends=[{k: v for k, v in vend_view(v).items() if k != "receipt"} for v in vends],
        )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).normalize():f}"


@router.get("/meters/{serial}/habits", tags=["readings"], response_model=dict[str, Any])
def get_habits(
    ctx: Context,
    serial: str,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    end: End = None,
) -> dict[str, Any]:
    """The customer's habits: kWh by hour of day and by weekday, against similar homes
    (the other meters on the same tariff, or the whole fleet, at most 200)."""
    meter = require_meter_access(ctx, principal, serial)
    begin, stop = window(
        None if end is None else end - timedelta(days=days), end, days, ctx.clock.now()
    )
    with ctx.session() as session:
        vending = session.get(VendingMeter, serial)
        peers: list[str] = []
        if vending is not None:
            prepaid = session.get(PrepaidAccount, vending.account_id)
            if prepaid is not None:
                same = select(PrepaidAccount.account_id).where(
                    PrepaidAccount.tariff == prepaid.tariff
                )
                peers = list(
                    session.scalars(
                        select(VendingMeter.meter_id).where(VendingMeter.account_id.in_(same))
                    )
                )
        if len(peers) < 2:
            peers = list(session.scalars(select(Meter.id).order_by(Meter.id)))
    peers = sorted(p for p in peers if p != serial)
    if len(peers) > 200:
        step = len(peers) / 200
        peers = [peers[int(i * step)] for i in range(200)]
    with ctx.intervals() as store:
        known = {r.meter for r in store.meters()}
        return analysis.habits(
            store,
            serial,
            begin,
            stop,
            meter.timezone,
            [p for p in peers if p in known],
            meter.interval_s or 1800,
        )


@router.get("/meters/{serial}/power-quality", tags=["readings"], response_model=dict[str, Any])
def get_power_quality(
    ctx: Context, serial: str, principal: CurrentPrincipal, start: Start = None, end: End = None
) -> dict[str, Any]:
    """Average voltage per interval and power-quality events (default: 7 days)."""
    require_meter_access(ctx, principal, serial)
    begin, stop = window(start, end, 7, ctx.clock.now())
    with ctx.intervals() as store:
        return analysis.power_quality(store, serial, begin, stop)


def _command_out(row: Command) -> CommandOut:
    return CommandOut(
        id=row.id,
        meter=row.meter_id,
        kind=row.kind,
        status=row.status,
        requested_by=row.requested_by,
        requested_at=_aware(row.requested_at),
        payload=dict(row.payload),
    )


@router.post(
    "/meters/{serial}/commands", tags=["commands"], status_code=202, response_model=CommandOut
)
def send_command(ctx: Context, serial: str, body: CommandIn, principal: Staff) -> CommandOut:
    """Relay control and reads through the head-end (202: queued, not yet done)."""
    require_meter_access(ctx, principal, serial)
    headend_id = None
    if ctx.command_port is not None:
        headend_id = ctx.command_port.submit(serial, body.name, dict(body.args) or None)
    now = datetime.now(UTC)
    with ctx.session() as session, session.begin():
        row = Command(
            meter_id=serial,
            kind=body.name,
            payload={"args": body.args, "headend_command": headend_id},
            status="queued" if headend_id is not None else "not_sent",
            requested_by=principal.actor,
            requested_at=now,
        )
        session.add(row)
        session.flush()
        audit(
            session,
            at=now,
            actor=principal.actor,
            action=body.name,
            entity="meter",
            entity_id=serial,
            reason="command from the API",
            after={"headend_command": headend_id},
        )
        return _command_out(row)


@router.get("/meters/{serial}/commands", tags=["commands"], response_model=Page[CommandOut])
def list_commands(
    ctx: Context,
    request: Request,
    response: Response,
    serial: str,
    principal: Staff,
    params: Pages,
) -> Page[CommandOut]:
    require_meter_access(ctx, principal, serial)
    with ctx.session() as session:
        query = select(Command).where(Command.meter_id == serial)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Command.id.desc()).offset(params.offset).limit(params.page_size)
        ).all()
        return paginate(request, response, params, [_command_out(r) for r in rows], total)


def _alarm_out(row: Alarm) -> AlarmOut:
    return AlarmOut(
        id=row.id,
        meter=row.meter_id,
        code=row.code,
        raised_at=_aware(row.raised_at),
        cleared_at=None if row.cleared_at is None else _aware(row.cleared_at),
        detail=row.detail,
        acknowledged_by=row.acknowledged_by,
    )


@router.get("/alarms", tags=["alarms"], response_model=Page[AlarmOut])
def list_alarms(
    ctx: Context,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    params: Pages,
    meter: Annotated[str | None, Query(max_length=64)] = None,
    code: Annotated[int | None, Query(ge=0, le=65535)] = None,
    open_only: bool = False,
) -> Page[AlarmOut]:
    """Alarms, newest first (a customer sees those of their own meters)."""
    if principal.role not in ("admin", "operator", "customer"):
        raise ProblemError(403, f"role {principal.role} may not read alarms")
    with ctx.session() as session:
        query = select(Alarm)
        if principal.role == "customer":
            query = query.where(
                Alarm.meter_id.in_(owned_meters(session, principal.customer_id or -1))
            )
        if meter:
            query = query.where(Alarm.meter_id == meter)
        if code is not None:
            query = query.where(Alarm.code == code)
        if open_only:
            query = query.where(Alarm.acknowledged_by.is_(None))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Alarm.id.desc()).offset(params.offset).limit(params.page_size)
        ).all()
        return paginate(request, response, params, [_alarm_out(r) for r in rows], total)


def record_alarm(
    ctx: ApiContext, meter: str, code: int, raised_at: datetime, detail: str
) -> AlarmOut:
    """Store an alarm and publish ``alarm.raised`` (the head-end's alarm handler and
    ``POST /alarms`` both come here)."""
    with ctx.session() as session, session.begin():
        if session.get(Meter, meter) is None:
            raise ProblemError(404, f"no meter {meter}")
        row = Alarm(meter_id=meter, code=code, raised_at=raised_at, detail=detail)
        session.add(row)
        session.flush()
        out = _alarm_out(row)
        enqueue_event(session, "alarm.raised", out.model_dump(mode="json"), datetime.now(UTC))
        return out


@router.post("/alarms", tags=["alarms"], status_code=201, response_model=AlarmOut)
def raise_alarm(ctx: Context, body: AlarmIn, principal: Staff) -> AlarmOut:
    """Record an alarm from outside the head-end (a BMS, a field crew, a test)."""
    if body.raised_at is not None and body.raised_at.tzinfo is None:
        raise ProblemError(422, "raised_at needs a UTC offset", field="raised_at")
    at = _aware(body.raised_at) if body.raised_at else datetime.now(UTC)
    out = record_alarm(ctx, body.meter, body.code, at, body.detail)
    ctx.dispatcher.wake()
    return out


@router.post("/alarms/{alarm_id}/acknowledge", tags=["alarms"], response_model=AlarmOut)
def acknowledge_alarm(ctx: Context, alarm_id: int, principal: Staff) -> AlarmOut:
    with ctx.session() as session, session.begin():
        row = session.get(Alarm, alarm_id)
        if row is None:
            raise ProblemError(404, f"no alarm {alarm_id}")
        if row.acknowledged_by is None:
            row.acknowledged_by = principal.actor
            row.cleared_at = datetime.now(UTC)
            audit(
                session,
                at=datetime.now(UTC),
                actor=principal.actor,
                action="acknowledge",
                entity="alarm",
                entity_id=str(alarm_id),
                reason="acknowledged",
            )
        return _alarm_out(row)


@router.get("/fleet/overview", tags=["fleet"], response_model=dict[str, Any])
def fleet_overview(
    ctx: Context, _: Staff, hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24
) -> dict[str, Any]:
    """The fleet at a glance: meters by status, supply state of prepaid accounts, alarms
    and their codes, commands by state, vends and energy of the last ``hours``."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    with ctx.session() as session:
        meters = dict(
            session.execute(select(Meter.status, func.count()).group_by(Meter.status)).all()
        )
        supply = dict(
            session.execute(
                select(PrepaidAccount.supply, func.count()).group_by(PrepaidAccount.supply)
            ).all()
        )
        open_alarms = session.scalar(
            select(func.count(Alarm.id)).where(Alarm.acknowledged_by.is_(None))
        )
        recent = session.execute(
            select(Alarm.code, func.count()).where(Alarm.raised_at >= since).group_by(Alarm.code)
        ).all()
        commands = dict(
            session.execute(select(Command.status, func.count()).group_by(Command.status)).all()
        )
        vend_rows = session.execute(
            select(Vend.currency, func.count(), func.sum(Vend.amount))
            .where(Vend.vended_at >= since, Vend.status == "completed")
            .group_by(Vend.currency)
        ).all()
        serials = list(session.scalars(select(Meter.id)))
    with ctx.intervals() as store:
        known = {r.meter for r in store.meters()}
        use = analysis.daily_kwh(store, [s for s in serials if s in known], since, now)
    energy = sum(use.values()) * hours / 24
    return {
        "at": now.isoformat(),
        "hours": hours,
        "meters": {"total": sum(meters.values()), "by_status": meters},
        "prepaid_supply": supply,
        "alarms": {
            "open": open_alarms or 0,
            "recent_by_code": {str(code): n for code, n in recent},
        },
        "commands": commands,
        "vends": {
            cur: {"count": n, "amount": f"{Decimal(total or 0):.2f}"} for cur, n, total in vend_rows
        },
        "energy_kwh": round(energy, 3),
        "reporting_meters": sum(1 for v in use.values() if v > 0),
        "top_consumers": [
            {"meter": m, "kwh_per_day": round(v, 3)}
            for m, v in Counter(use).most_common(10)
            if v > 0
        ],
    }
