"""Tariffs (templates, saved, composed from template blocks) and bills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select

from meterstack.api.context import Context, CurrentPrincipal, require_roles
from meterstack.api.pagination import Page, PageParams, page_params, paginate
from meterstack.api.problems import PROBLEM_RESPONSES, ProblemError
from meterstack.api.schemas import (
    BillOut,
    BillRunIn,
    ComposeIn,
    TariffBlockSpec,
    TariffOut,
    TariffSummary,
)
from meterstack.api.security import Principal
from meterstack.billing import bills_from_rating
from meterstack.core.time import zone
from meterstack.mdm.operational.audit import record as audit
from meterstack.mdm.operational.models import (
    Account,
    Bill,
    PrepaidAccount,
    TariffAssignment,
    TariffDocument,
    VendingMeter,
)
from meterstack.tariff import rate
from meterstack.tariff.errors import TariffError
from meterstack.tariff.yaml_format import list_templates, load_template, parse_tariff
from meterstack.vending import resolve_tariff, save_tariff

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Staff = Annotated[Principal, Depends(require_roles("admin", "operator"))]
Pages = Annotated[PageParams, Depends(page_params)]

#: The template blocks a tariff can be composed of, and their parameters.
BLOCKS: dict[str, tuple[str, dict[str, str]]] = {
    "flat_energy": ("one price for every kWh", {"rate": "currency/kWh"}),
    "inclining_blocks": (
        "monthly blocks, each with its price",
        {"limits": "list of upper limits [kWh], one fewer than rates", "rates": "currency/kWh"},
    ),
    "time_of_use": (
        "periods by hour of day, every day",
        {
            "periods": "name -> {rate: currency/kWh, hours: ['16-21', ...]}",
            "default": "period of the hours not named",
        },
    ),
    "free_basic_electricity": ("free kWh each month (prepaid)", {"kwh": "kWh per month"}),
    "fixed_monthly": ("a fixed charge per month", {"amount": "currency", "name": "label"}),
    "fixed_daily": ("a fixed charge per day", {"amount": "currency", "name": "label"}),
    "percent_tax": ("a tax on the bill", {"percent": "%", "name": "label"}),
    "flat_demand": ("a monthly peak demand charge", {"rate": "currency/kW", "window_min": "min"}),
}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/tariffs", tags=["tariffs"], response_model=Page[TariffSummary])
def list_tariffs(
    ctx: Context, request: Request, response: Response, _: CurrentPrincipal, params: Pages
) -> Page[TariffSummary]:
    """The shipped templates and the tariffs saved here."""
    items: list[TariffSummary] = []
    with ctx.session() as session:
        for row in session.scalars(select(TariffDocument).order_by(TariffDocument.name)):
            items.append(
                TariffSummary(
                    name=row.name,
                    source="saved",
                    currency=str(row.document.get("currency", "USD")),
                    description=str(row.document.get("description", "")),
                )
            )
    for name in list_templates():
        tariff = load_template(name)
        items.append(
            TariffSummary(
                name=name,
                source="template",
                currency=tariff.currency,
                description=tariff.description,
            )
        )
    page = items[params.offset : params.offset + params.page_size]
    return paginate(request, response, params, page, len(items))


@router.get("/tariff-blocks", tags=["tariffs"], response_model=list[TariffBlockSpec])
def list_blocks(_: CurrentPrincipal) -> list[TariffBlockSpec]:
    """The template blocks ``POST /tariff-compositions`` builds a tariff from."""
    return [
        TariffBlockSpec(kind=kind, description=text, params=params)
        for kind, (text, params) in BLOCKS.items()
    ]


@router.get("/tariffs/{name}", tags=["tariffs"], response_model=TariffOut)
def get_tariff(ctx: Context, name: str, _: CurrentPrincipal) -> TariffOut:
    with ctx.session() as session:
        saved = session.get(TariffDocument, name)
        if saved is not None:
            return TariffOut(name=name, source="saved", document=dict(saved.document))
    if name not in list_templates():
        raise ProblemError(404, f"no tariff {name}")
    document = load_template(name).model_dump(mode="json", exclude_defaults=True)
    document["name"] = name
    return TariffOut(name=name, source="template", document=document)


@router.post("/tariffs", tags=["tariffs"], status_code=201, response_model=TariffOut)
def create_tariff(ctx: Context, document: dict[str, Any], principal: Staff) -> TariffOut:
    """Save a tariff given in the YAML format's fields (see docs/tariff.md)."""
    with ctx.session() as session, session.begin():
        tariff = save_tariff(session, document, principal.actor, datetime.now(UTC))
        audit(
            session,
            at=datetime.now(UTC),
            actor=principal.actor,
            action="save",
            entity="tariff",
            entity_id=tariff.name,
            reason="tariff saved",
        )
    body = tariff.model_dump(mode="json", exclude_defaults=True)
    body["name"] = tariff.name
    return TariffOut(name=tariff.name, source="saved", document=body)


def _number(params: dict[str, Any], key: str, where: str) -> float:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(422, f"{where}.{key} must be a number", field=f"{where}.{key}")
    return float(value)


def compose_document(body: ComposeIn) -> dict[str, Any]:
    """The tariff document the blocks make (validated by the tariff model afterwards)."""
    doc: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "currency": body.currency,
        "timezone": body.timezone,
        "fixed": [],
        "taxes": [],
    }
    energy: dict[str, Any] | None = None
    for index, block in enumerate(body.blocks):
        where = f"blocks[{index}].params"
        p = block.params
        if block.kind in ("flat_energy", "inclining_blocks", "time_of_use") and energy is not None:
            raise ProblemError(422, "only one energy block", field=f"blocks[{index}]")
        if block.kind == "flat_energy":
            energy = {"periods": [{"name": "all", "tiers": [{"rate": _number(p, "rate", where)}]}]}
        elif block.kind == "inclining_blocks":
            limits, rates = p.get("limits"), p.get("rates")
            if not isinstance(limits, list) or not isinstance(rates, list):
                raise ProblemError(422, "limits and rates are lists", field=where)
            if len(rates) != len(limits) + 1:
                raise ProblemError(422, "one more rate than limits", field=where)
            tiers = [
                {"max": m, "unit": "kWh", "rate": r} for m, r in zip(limits, rates, strict=False)
            ]
            tiers.append({"rate": rates[-1]})
            energy = {"periods": [{"name": "all", "tiers": tiers}]}
        elif block.kind == "time_of_use":
            periods = p.get("periods")
            default = p.get("default")
            if not isinstance(periods, dict) or not periods or default not in periods:
                raise ProblemError(
                    422, "periods is a mapping that includes the default", field=where
                )
            ranges = {
                name: list(spec.get("hours", []))
                for name, spec in periods.items()
                if isinstance(spec, dict) and name != default
            }
            energy = {
                "periods": [
                    {"name": name, "tiers": [{"rate": (spec or {}).get("rate")}]}
                    for name, spec in periods.items()
                ],
                "schedule": {
                    "seasons": [
                        {
                            "name": "all year",
                            "months": list(range(1, 13)),
                            "weekday": ranges,
                            "weekend": ranges,
                            "default": default,
                        }
                    ]
                },
            }
        elif block.kind == "free_basic_electricity":
            doc["prepaid"] = {"free_basic_kwh": _number(p, "kwh", where)}
        elif block.kind in ("fixed_monthly", "fixed_daily"):
            doc["fixed"].append(
                {
                    "name": str(p.get("name", "fixed charge")),
                    "amount": _number(p, "amount", where),
                    "per": "month" if block.kind == "fixed_monthly" else "day",
                }
            )
        elif block.kind == "percent_tax":
            doc["taxes"].append(
                {"name": str(p.get("name", "tax")), "percent": _number(p, "percent", where)}
            )
        elif block.kind == "flat_demand":
            doc["demand"] = {
                "window_min": int(p.get("window_min", 30)),
                "flat": [{"name": "monthly", "tiers": [{"rate": _number(p, "rate", where)}]}],
            }
    if energy is None:
        raise ProblemError(422, "a tariff needs an energy block", field="blocks")
    doc["energy"] = energy
    return doc


@router.post("/tariff-compositions", tags=["tariffs"], response_model=TariffOut)
def compose(ctx: Context, body: ComposeIn, principal: Staff) -> TariffOut:
    """Build a tariff from template blocks (``GET /tariff-blocks``); ``save`` keeps it."""
    document = compose_document(body)
    try:
        tariff = parse_tariff(document, "composed")
    except TariffError as exc:
        raise ProblemError(422, str(exc), field=exc.field) from exc
    if body.save:
        with ctx.session() as session, session.begin():
            save_tariff(session, document, principal.actor, datetime.now(UTC))
    out = tariff.model_dump(mode="json", exclude_defaults=True)
    out["name"] = tariff.name
    return TariffOut(name=tariff.name, source="saved" if body.save else "composed", document=out)


# ---------------------------------------------------------------- bills
def _bill_out(row: Bill) -> BillOut:
    return BillOut(
        id=row.id,
        account_id=row.account_id,
        period_start=_aware(row.period_start),
        period_end=_aware(row.period_end),
        total=f"{Decimal(row.total):.2f}",
        currency=row.currency,
        issued_at=_aware(row.issued_at),
        document=dict(row.document),
    )


@router.get("/bills", tags=["bills"], response_model=Page[BillOut])
def list_bills(
    ctx: Context,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    params: Pages,
    account_id: int | None = None,
) -> Page[BillOut]:
    """Bills, newest first (a customer sees those of its own accounts)."""
    if principal.role == "vendor":
        raise ProblemError(403, "role vendor may not read bills")
    with ctx.session() as session:
        query = select(Bill)
        if principal.role == "customer":
            mine = select(Account.id).where(Account.customer_id == (principal.customer_id or -1))
            query = query.where(Bill.account_id.in_(mine))
        if account_id is not None:
            query = query.where(Bill.account_id == account_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Bill.id.desc()).offset(params.offset).limit(params.page_size)
        ).all()
        return paginate(request, response, params, [_bill_out(r) for r in rows], total)


@router.get("/bills/{bill_id}", tags=["bills"], response_model=BillOut)
def get_bill(ctx: Context, bill_id: int, principal: CurrentPrincipal) -> BillOut:
    if principal.role == "vendor":
        raise ProblemError(403, "role vendor may not read bills")
    with ctx.session() as session:
        row = session.get(Bill, bill_id)
        if row is None:
            raise ProblemError(404, f"no bill {bill_id}")
        if principal.role == "customer":
            account = session.get(Account, row.account_id)
            if account is None or account.customer_id != principal.customer_id:
                raise ProblemError(403, f"bill {bill_id} is not yours")
        return _bill_out(row)


@router.post(
    "/accounts/{account_id}/bills", tags=["bills"], status_code=201, response_model=BillOut
)
def run_bill(ctx: Context, account_id: int, body: BillRunIn, principal: Staff) -> BillOut:
    """Bill an account's meters for a local month from their intervals (A+), on the
    account's tariff; the bill document's lines are Decimal money as text."""
    with ctx.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ProblemError(404, f"no account {account_id}")
        prepaid = session.get(PrepaidAccount, account_id)
        assignment = session.scalar(
            select(TariffAssignment.tariff)
            .where(TariffAssignment.account_id == account_id)
            .order_by(TariffAssignment.starts_at.desc())
            .limit(1)
        )
        name = prepaid.tariff if prepaid is not None else assignment
        if name is None:
            raise ProblemError(409, f"account {account_id} has no tariff")
        tariff = resolve_tariff(session, name)
        meters = list(
            session.scalars(
                select(VendingMeter.meter_id).where(VendingMeter.account_id == account_id)
            )
        )
    if not meters:
        raise ProblemError(409, f"account {account_id} has no meters")
    year, month = (int(x) for x in body.month.split("-"))
    tz = zone(tariff.timezone)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    step = 1800
    ends = np.arange(int(start.timestamp()) + step, int(end.timestamp()) + 1, step)
    with ctx.intervals() as store:
        known = {r.meter for r in store.meters()}
        table = store.read_intervals(
            start, end, [m for m in meters if m in known], ["1.0.1.8.0.255"]
        )
    kwh = np.zeros(ends.size)
    if table.num_rows:
        end_s = table.column("interval_end").cast("int64").to_numpy()
        values = table.column("value").to_numpy(zero_copy_only=False)
        slot = (end_s - ends[0]) // step
        ok = (slot >= 0) & (slot < ends.size) & ((end_s - ends[0]) % step == 0)
        np.add.at(kwh, slot[ok], values[ok] / 1000.0)
    result = rate(tariff, ends.astype("datetime64[s]"), kwh[None, :])
    bills = bills_from_rating(result)
    lines = [line.document() for bill in bills for line in bill.lines]
    total = sum((bill.total for bill in bills), Decimal(0))
    now = datetime.now(UTC)
    with ctx.session() as session, session.begin():
        row = Bill(
            account_id=account_id,
            period_start=start.astimezone(UTC),
            period_end=(end - timedelta(seconds=0)).astimezone(UTC),
            total=total,
            currency=tariff.currency,
            issued_at=now,
            document={
                "tariff": name,
                "month": body.month,
                "meters": meters,
                "kwh": round(float(kwh.sum()), 3),
                "lines": lines,
            },
        )
        session.add(row)
        session.flush()
        audit(
            session,
            at=now,
            actor=principal.actor,
            action="bill",
            entity="account",
            entity_id=str(account_id),
            reason=f"bill for {body.month}",
            after={"total": str(total)},
        )
        return _bill_out(row)
