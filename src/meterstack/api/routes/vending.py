"""Customers, prepaid accounts, vendors, vends, tokens, reconciliation, the ledger,
smart-prepay settlement, write-back and user sampling."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Select, func, select

from meterstack.api.context import ApiContext, Context, CurrentPrincipal, require_roles
from meterstack.api.pagination import Page, PageParams, page_params, paginate
from meterstack.api.problems import PROBLEM_RESPONSES, ProblemError
from meterstack.api.schemas import (
    AccountIn,
    AccountOut,
    CustomerIn,
    CustomerOut,
    DepositIn,
    IssuedTokenOut,
    ManagementTokenIn,
    NoticeOut,
    QuoteIn,
    ReconcileIn,
    ReconciliationOut,
    ReverseIn,
    SamplingOut,
    SettlementOut,
    TrialBalanceOut,
    VendIn,
    VendorIn,
    VendorOut,
    VendOut,
    WriteBackIn,
    WriteBackOut,
)
from meterstack.api.security import Principal
from meterstack.core.units import round_money
from meterstack.mdm.operational.models import (
    Account,
    Customer,
    PrepaidAccount,
    PrepaidNotice,
    Reconciliation,
    Vend,
    VendingMeter,
    Vendor,
)
from meterstack.meter.inquiry import CustomerInquiry
from meterstack.vending import (
    VendRequest,
    reconciliation_view,
    sampling_list,
    trial_balance,
    vend_view,
    write_back,
)

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Staff = Annotated[Principal, Depends(require_roles("admin", "operator"))]
Seller = Annotated[Principal, Depends(require_roles("admin", "operator", "vendor"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Pages = Annotated[PageParams, Depends(page_params)]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else str(round_money(Decimal(value), currency))


# ---------------------------------------------------------------- customers and accounts
@router.post("/customers", tags=["accounts"], status_code=201, response_model=CustomerOut)
def create_customer(ctx: Context, body: CustomerIn, principal: Staff) -> CustomerOut:
    customer_id = ctx.vending.create_customer(body.name, principal.actor, body.email)
    return get_customer(ctx, customer_id, principal)


@router.get("/customers/{customer_id}", tags=["accounts"], response_model=CustomerOut)
def get_customer(ctx: Context, customer_id: int, principal: CurrentPrincipal) -> CustomerOut:
    if principal.role == "customer" and principal.customer_id != customer_id:
        raise ProblemError(403, "a customer may read only their own record")
    if principal.role == "vendor":
        raise ProblemError(403, "role vendor may not read customers")
    with ctx.session() as session:
        row = session.get(Customer, customer_id)
        if row is None:
            raise ProblemError(404, f"no customer {customer_id}")
        return CustomerOut(
            id=row.id, name=row.name, email=row.email, created_at=_aware(row.created_at)
        )


def _account_out(ctx: ApiContext, account_id: int) -> AccountOut:
    with ctx.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ProblemError(404, f"no account {account_id}")
        prepaid = session.get(PrepaidAccount, account_id)
        meters = list(
            session.scalars(
                select(VendingMeter.meter_id)
                .where(VendingMeter.account_id == account_id)
                .order_by(VendingMeter.meter_id)
            )
        )
        cur = account.currency
        return AccountOut(
            id=account.id,
            number=account.number,
            customer_id=account.customer_id,
            currency=cur,
            mode=prepaid.mode if prepaid else None,
            tariff=prepaid.tariff if prepaid else None,
            balance=_money(prepaid.balance, cur) if prepaid else None,
            debt=_money(prepaid.debt, cur) if prepaid else None,
            carry_over=_money(prepaid.carry_over, cur) if prepaid else None,
            supply=prepaid.supply if prepaid else None,
            month_kwh_sold=f"{Decimal(prepaid.month_kwh).normalize():f}" if prepaid else None,
            meters=meters,
        )


@router.post("/accounts", tags=["accounts"], status_code=201, response_model=AccountOut)
def open_account(ctx: Context, body: AccountIn, principal: Staff) -> AccountOut:
    """Open a prepaid account: ``meter`` mode sells STS tokens, ``account`` mode keeps the
    balance here (smart prepay)."""
    threshold = (
        body.low_credit_threshold
        if body.low_credit_threshold is not None
        else ctx.settings.vending.low_credit_threshold
    )
    account_id = ctx.vending.open_account(
        body.customer_id,
        number=body.number,
        mode=body.mode,
        tariff=body.tariff,
        actor=principal.actor,
        debt=body.debt,
        debt_recovery_pct=body.debt_recovery_pct,
        low_credit_threshold=threshold,
    )
    return _account_out(ctx, account_id)


def _may_read_account(ctx: ApiContext, principal: Principal, account_id: int) -> None:
    if principal.role in ("admin", "operator"):
        return
    if principal.role == "customer":
        with ctx.session() as session:
            account = session.get(Account, account_id)
            if account is not None and account.customer_id == principal.customer_id:
                return
        raise ProblemError(403, f"account {account_id} is not yours")
    raise ProblemError(403, f"role {principal.role} may not read accounts")


@router.get("/accounts", tags=["accounts"], response_model=Page[AccountOut])
def list_accounts(
    ctx: Context,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    params: Pages,
    customer_id: Annotated[int | None, Query()] = None,
) -> Page[AccountOut]:
    if principal.role == "vendor":
        raise ProblemError(403, "role vendor may not list accounts")
    with ctx.session() as session:
        query = select(Account.id)
        if principal.role == "customer":
            query = query.where(Account.customer_id == (principal.customer_id or -1))
        elif customer_id is not None:
            query = query.where(Account.customer_id == customer_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ids = list(
            session.scalars(
                query.order_by(Account.id).offset(params.offset).limit(params.page_size)
            )
        )
    return paginate(request, response, params, [_account_out(ctx, i) for i in ids], total)


@router.get("/accounts/{account_id}", tags=["accounts"], response_model=AccountOut)
def get_account(ctx: Context, account_id: int, principal: CurrentPrincipal) -> AccountOut:
    _may_read_account(ctx, principal, account_id)
    return _account_out(ctx, account_id)


@router.get("/accounts/{account_id}/notices", tags=["accounts"], response_model=Page[NoticeOut])
def list_notices(
    ctx: Context,
    request: Request,
    response: Response,
    account_id: int,
    principal: CurrentPrincipal,
    params: Pages,
) -> Page[NoticeOut]:
    """Low-credit, disconnection and reconnection notices of a smart-prepay account."""
    _may_read_account(ctx, principal, account_id)
    with ctx.session() as session:
        query = select(PrepaidNotice).where(PrepaidNotice.account_id == account_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(PrepaidNotice.id.desc()).offset(params.offset).limit(params.page_size)
        ).all()
        items = [
            NoticeOut(
                id=r.id,
                account_id=r.account_id,
                meter=r.meter_id,
                kind=r.kind,
                at=_aware(r.at),
                balance=str(Decimal(r.balance).quantize(Decimal("0.01"))),
                detail=r.detail,
            )
            for r in rows
        ]
        return paginate(request, response, params, items, total)


# ---------------------------------------------------------------- vendors
def _vendor_out(row: Vendor) -> VendorOut:
    return VendorOut(
        id=row.id,
        name=row.name,
        currency=row.currency,
        float_balance=str(round_money(Decimal(row.float_balance), row.currency)),
        active=row.active,
    )


@router.post("/vendors", tags=["vending"], status_code=201, response_model=VendorOut)
def create_vendor(ctx: Context, body: VendorIn, principal: Staff) -> VendorOut:
    vendor_id = ctx.vending.create_vendor(body.name, body.currency, principal.actor)
    return get_vendor(ctx, vendor_id, principal)


@router.get("/vendors", tags=["vending"], response_model=Page[VendorOut])
def list_vendors(
    ctx: Context, request: Request, response: Response, principal: Seller, params: Pages
) -> Page[VendorOut]:
    with ctx.session() as session:
        query = select(Vendor)
        if principal.role == "vendor":
            query = query.where(Vendor.id == (principal.vendor_id or -1))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Vendor.id).offset(params.offset).limit(params.page_size)
        ).all()
        return paginate(request, response, params, [_vendor_out(r) for r in rows], total)


@router.get("/vendors/{vendor_id}", tags=["vending"], response_model=VendorOut)
def get_vendor(ctx: Context, vendor_id: int, principal: Seller) -> VendorOut:
    """A vendor and its float (a vendor sees only its own)."""
    if principal.role == "vendor" and principal.vendor_id != vendor_id:
        raise ProblemError(403, "a vendor may read only its own float")
    with ctx.session() as session:
        row = session.get(Vendor, vendor_id)
        if row is None:
            raise ProblemError(404, f"no vendor {vendor_id}")
        return _vendor_out(row)


@router.post("/vendors/{vendor_id}/deposits", tags=["vending"], response_model=VendorOut)
def deposit(ctx: Context, vendor_id: int, body: DepositIn, principal: Staff) -> VendorOut:
    """Money a vendor paid in: its float rises (ledger: bank to the vendor's float)."""
    ctx.vending.deposit(vendor_id, body.amount, principal.actor, body.reference)
    return get_vendor(ctx, vendor_id, principal)


# ---------------------------------------------------------------- vends
def _vend_out(view: dict[str, object]) -> VendOut:
    return VendOut.model_validate(view)


def _seller_vendor(principal: Principal, requested: int | None) -> int:
    if principal.role == "vendor":
        if principal.vendor_id is None:
            raise ProblemError(403, "this vendor login has no vendor")
        if requested is not None and requested != principal.vendor_id:
            raise ProblemError(403, "a vendor sells from its own float only")
        return principal.vendor_id
    if requested is None:
        raise ProblemError(422, "staff vends name the selling vendor_id", field="vendor_id")
    return requested


@router.post(
    "/vends",
    tags=["vending"],
    status_code=201,
    response_model=VendOut,
    responses={200: {"description": "a replay of an earlier vend with this request_id"}},
)
def create_vend(ctx: Context, body: VendIn, response: Response, principal: Seller) -> VendOut:
    """Sell money (``amount``) or energy (``kwh``) for a meter. ``request_id`` makes it
    idempotent: the same id again returns the same vend and token (200,
    ``Idempotent-Replayed: true``); with a different request it is refused (409)."""
    vendor_id = _seller_vendor(principal, body.vendor_id)
    if (body.amount is None) == (body.kwh is None):
        raise ProblemError(422, "give either amount or kwh", field="amount")
    outcome = ctx.vending.vend(
        VendRequest(body.request_id, vendor_id, body.meter, body.amount, body.kwh),
        principal.actor,
    )
    if outcome.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    else:
        ctx.dispatcher.wake()
        if outcome.vend["kind"] == "account":
            ctx.prepay.restore_supply(outcome.vend["account_id"], datetime.now(UTC))
    return _vend_out(outcome.vend)


@router.post("/vend-quotes", tags=["vending"], response_model=dict[str, object])
def quote_vend(ctx: Context, body: QuoteIn, _: Seller) -> dict[str, object]:
    """What a vend would give (the receipt's lines), without selling."""
    if (body.amount is None) == (body.kwh is None):
        raise ProblemError(422, "give either amount or kwh", field="amount")
    price = ctx.vending.quote(VendRequest("quote", 0, body.meter, body.amount, body.kwh))
    return price.as_json()


def _vend_scope(principal: Principal, query: Select[Vend]) -> Select[Vend]:
    if principal.role == "vendor":
        return query.where(Vend.vendor_id == (principal.vendor_id or -1))
    if principal.role == "customer":
        accounts = select(Account.id).where(Account.customer_id == (principal.customer_id or -1))
        return query.where(Vend.account_id.in_(accounts))
    return query


@router.get("/vends", tags=["vending"], response_model=Page[VendOut])
def list_vends(
    ctx: Context,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    params: Pages,
    meter: Annotated[str | None, Query(max_length=64)] = None,
    account_id: Annotated[int | None, Query()] = None,
) -> Page[VendOut]:
    """Vends, newest first: staff all, a vendor its own, a customer those of its accounts."""
    query = _vend_scope(principal, select(Vend))
    if meter:
        query = query.where(Vend.meter_id == meter)
    if account_id is not None:
        query = query.where(Vend.account_id == account_id)
    with ctx.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Vend.id.desc()).offset(params.offset).limit(params.page_size)
        ).all()
        items = [_vend_out(vend_view(r)) for r in rows]
    return paginate(request, response, params, items, total)


def _readable_vend(ctx: ApiContext, principal: Principal, vend_id: int) -> dict[str, object]:
    query = _vend_scope(principal, select(Vend).where(Vend.id == vend_id))
    with ctx.session() as session:
        row = session.scalar(query)
        if row is None:
            if session.get(Vend, vend_id) is not None:
                raise ProblemError(403, f"vend {vend_id} is not yours")
            raise ProblemError(404, f"no vend {vend_id}")
        return vend_view(row)


@router.get("/vends/{vend_id}", tags=["vending"], response_model=VendOut)
def get_vend(ctx: Context, vend_id: int, principal: CurrentPrincipal) -> VendOut:
    return _vend_out(_readable_vend(ctx, principal, vend_id))


@router.post("/vends/{vend_id}/reprint", tags=["vending"], response_model=VendOut)
def reprint(ctx: Context, vend_id: int, principal: Seller) -> VendOut:
    """The receipt and token again; counted and audited."""
    _readable_vend(ctx, principal, vend_id)
    return _vend_out(ctx.vending.reprint(vend_id, principal.actor))


@router.post("/vends/{vend_id}/reverse", tags=["vending"], response_model=VendOut)
def reverse(ctx: Context, vend_id: int, body: ReverseIn, principal: CurrentPrincipal) -> VendOut:
    """Reverse a vend: supervisors (admin, operator) only, while its token is unused."""
    if principal.role not in ("admin", "operator"):
        raise ProblemError(403, f"role {principal.role} may not reverse a vend: ask a supervisor")
    view = ctx.vending.reverse(vend_id, principal.actor, principal.role, body.reason)
    ctx.dispatcher.wake()
    return _vend_out(view)


@router.post("/tokens/management", tags=["vending"], status_code=201, response_model=IssuedTokenOut)
def management_token(ctx: Context, body: ManagementTokenIn, principal: Staff) -> IssuedTokenOut:
    """A class 2 management token: clear tamper, clear credit, maximum power limit [W]."""
    digits, display, tid = ctx.vending.management_token(
        body.meter, body.kind, principal.actor, body.value
    )
    return IssuedTokenOut(meter=body.meter, kind=body.kind, token=digits, display=display, tid=tid)


# ---------------------------------------------------------------- reconciliation and ledger
@router.post("/reconciliations", tags=["vending"], response_model=ReconciliationOut)
def reconcile(ctx: Context, body: ReconcileIn, principal: Staff) -> ReconciliationOut:
    """Reconcile a vendor's local day (the utility's time zone) against the ledger."""
    view = ctx.vending.reconcile(body.vendor_id, body.day, ctx.settings.timezone, principal.actor)
    return ReconciliationOut.model_validate(view)


@router.get("/reconciliations", tags=["vending"], response_model=Page[ReconciliationOut])
def list_reconciliations(
    ctx: Context,
    request: Request,
    response: Response,
    principal: Staff,
    params: Pages,
    vendor_id: Annotated[int | None, Query()] = None,
) -> Page[ReconciliationOut]:
    with ctx.session() as session:
        query = select(Reconciliation)
        if vendor_id is not None:
            query = query.where(Reconciliation.vendor_id == vendor_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Reconciliation.day.desc(), Reconciliation.vendor_id)
            .offset(params.offset)
            .limit(params.page_size)
        ).all()
        items = [ReconciliationOut.model_validate(reconciliation_view(r)) for r in rows]
        return paginate(request, response, params, items, total)


@router.get("/ledger/trial-balance", tags=["vending"], response_model=TrialBalanceOut)
def get_trial_balance(ctx: Context, _: Admin) -> TrialBalanceOut:
    """Every ledger account's balance; they sum to zero when the books balance."""
    with ctx.session() as session:
        balances = trial_balance(session)
    total = sum(balances.values(), Decimal(0))
    return TrialBalanceOut(
        accounts={k: f"{v.quantize(Decimal('0.01'))}" for k, v in sorted(balances.items())},
        total=f"{total.quantize(Decimal('0.01'))}",
        balanced=total == 0,
    )


# ------------------------------------------------ smart prepay, write-back, sampling
@router.post("/prepay/settle", tags=["vending"], response_model=SettlementOut)
def settle(ctx: Context, _: Staff) -> SettlementOut:
    """Charge smart-prepay balances for month-to-date use; cut or restore supply."""
    with ctx.intervals():
        report = ctx.prepay.settle(datetime.now(UTC))
    ctx.dispatcher.wake()
    return SettlementOut(
        accounts=report.accounts,
        charged=f"{report.charged:.2f}",
        notices=report.notices,
        commands=report.commands,
    )


@router.post("/writeback", tags=["vending"], response_model=WriteBackOut)
def post_writeback(ctx: Context, body: WriteBackIn, _: Staff) -> WriteBackOut:
    """Seed 002's write-back: meters' inquiry data, and from MDM their register reads and
    token-log events (tokens seen accepted can no longer be reversed)."""
    inquiries = [
        CustomerInquiry(
            serial=i.serial,
            customer_name="",
            customer_address="",
            meter_constant_imp_per_kwh=0,
            cumulative_consumption_kwh=i.cumulative_consumption_kwh,
            prepaid=i.credit_unit is not None,
            credit_unit=i.credit_unit,
            total_purchased=i.total_purchased,
            purchase_count=i.purchase_count,
            last_purchase_amount=i.last_purchase_amount,
            last_purchase_at=i.last_purchase_at,
            remaining_credit=i.remaining_credit,
            debt=i.debt,
        )
        for i in body.inquiries
    ]
    if body.since is not None and body.since.tzinfo is None:
        raise ProblemError(422, "since needs a UTC offset", field="since")
    with ctx.intervals() as store:
        report = write_back(
            ctx.engine, at=datetime.now(UTC), inquiries=inquiries, store=store, since=body.since
        )
    return WriteBackOut(
        readbacks=report.readbacks,
        tokens_used=report.tokens_used,
        register_reads=report.register_reads,
        unknown_meters=report.unknown_meters,
    )


@router.get("/sampling", tags=["vending"], response_model=list[SamplingOut])
def get_sampling(
    ctx: Context,
    _: Staff,
    recent_days: Annotated[int, Query(ge=1, le=180)] = 30,
    history_days: Annotated[int, Query(ge=1, le=730)] = 60,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[SamplingOut]:
    """Seed 002's user sampling: customers ranked for inspection, with the evidence."""
    with ctx.intervals() as store:
        ranked = sampling_list(
            ctx.engine,
            store,
            at=datetime.now(UTC),
            recent_days=recent_days,
            history_days=history_days,
            limit=limit,
        )
    return [
        SamplingOut(
            rank=c.rank,
            customer_id=c.customer_id,
            account_id=c.account_id,
            meters=c.meters,
            score=c.score,
            evidence=c.evidence,
            reasons=c.reasons,
        )
        for c in ranked
    ]
