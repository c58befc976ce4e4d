"""The vending service: accounts, meters, vendors, vends, reversals, re-prints, reconciliation.

Everything is persisted in the MDM operational store, one transaction per action, with its
ledger journal (:mod:`meterstack.vending.ledger`) and its audit entry.

**Idempotency.** A vend carries the client's request id, unique per vendor (a unique index
in the database). The vend transaction first takes the vendor's row lock (an ``UPDATE`` of
the vendor: a row lock on PostgreSQL, the database write lock on SQLite, where the first
statement of the transaction is that write, so the lock is taken before anything is read);
it then looks the request id up. A retry of a vend that committed finds it and gets the
same vend and token back (``replayed``); the same id with a different request is refused
(:class:`RequestConflictError`). Should two transactions still race past the lookup, the
unique index refuses the second insert and the vend is read back.

**TIDs.** A token's TID is the minute of issue; two tokens for one meter in one minute
would share it and the meter would refuse the second as used. The meter's row (locked)
holds the last TID issued, and a vend in the same minute takes the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from meterstack.core.config import VendingSettings
from meterstack.core.errors import InvalidInputError, StoreError
from meterstack.core.time import Clock, zone
from meterstack.core.units import round_money
from meterstack.mdm.operational.audit import record as audit
from meterstack.mdm.operational.models import (
    Account,
    Customer,
    LedgerEntry,
    Meter,
    PrepaidAccount,
    Reconciliation,
    ServicePoint,
    TariffAssignment,
    Vend,
    VendingMeter,
    Vendor,
)
from meterstack.sts import (
    BaseDate,
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    KeyParameters,
    MeterPan,
    MeterRecord,
    TokenIssuer,
    local_time_of_tid,
    tid_from_local,
)
from meterstack.tariff.model import Tariff
from meterstack.vending.errors import (
    NotFoundError,
    PermissionRefusedError,
    RequestConflictError,
    VendRefusedError,
)
from meterstack.vending.ledger import (
    JournalLine,
    float_account,
    post_journal,
    vendor_day,
)
from meterstack.vending.pricing import (
    VendPrice,
    days_in_month,
    price_account_topup,
    price_kwh_vend,
    price_money_vend,
    vend_blocks,
)
from meterstack.vending.tariffs import resolve_tariff

__all__ = [
    "EventSink",
    "StsParameters",
    "VendOutcome",
    "VendRequest",
    "VendingService",
    "vend_view",
]

_ZERO = Decimal(0)

#: Called inside a transaction with each event to publish (``vend.completed``...).
EventSink = Callable[[Session, str, dict[str, Any]], None]

SUPERVISOR_ROLES = frozenset({"admin", "operator"})


@dataclass(frozen=True)
class StsParameters:
    """A meter's PAN and decoder key parameters (IEC 62055-41)."""

    iin: str
    drn: str
    supply_group_code: str
    tariff_index: str
    key_revision_number: int
    key_type: int = 2
    key_expiry_number: int = 255
    base_date: int = 2014
    ea: str = "07"
    dkga: str = "02"

    def record(self) -> MeterRecord:
        return MeterRecord(
            MeterPan(self.iin, self.drn),
            KeyParameters(
                self.supply_group_code,
                self.tariff_index,
                self.key_revision_number,
                self.key_type,
                self.key_expiry_number,
                BaseDate(self.base_date),
                EncryptionAlgorithm(self.ea),
                DecoderKeyGenerationAlgorithm(self.dkga),
            ),
        )


@dataclass(frozen=True)
class VendRequest:
    """A sale: ``amount`` of money or ``kwh`` (exactly one) for ``meter``."""

    request_id: str
    vendor_id: int
    meter: str
    amount: Decimal | None = None
    kwh: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.request_id or len(self.request_id) > 128:
            raise InvalidInputError("request_id", self.request_id, "1-128 characters")
        if (self.amount is None) == (self.kwh is None):
            raise InvalidInputError("amount", self.amount, "give either amount or kwh")

    def digest(self) -> str:
        body = json.dumps(
            [self.vendor_id, self.meter, str(self.amount), str(self.kwh)], separators=(",", ":")
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class VendOutcome:
    """A vend as stored, and whether this call replayed an earlier one."""

    vend: dict[str, Any]
    replayed: bool


def vend_view(row: Vend) -> dict[str, Any]:
    """A vend as JSON-ready fields (the token digits included, never a key)."""
    return {
        "id": row.id,
        "reference": row.reference,
        "request_id": row.request_id,
        "vendor_id": row.vendor_id,
        "account_id": row.account_id,
        "meter": row.meter_id,
        "kind": row.kind,
        "status": row.status,
        "amount": str(round_money(row.amount, row.currency)),
        "currency": row.currency,
        "kwh": None if row.units is None else f"{Decimal(row.units).normalize():f}",
        "token": row.token,
        "tid": row.tid,
        "vended_at": _iso(row.vended_at),
        "vended_by": row.vended_by,
        "token_used_at": _iso(row.token_used_at),
        "reversed_at": _iso(row.reversed_at),
        "reversed_by": row.reversed_by,
        "reversal_reason": row.reversal_reason,
        "prints": row.prints,
        "receipt": row.receipt,
    }


def aware(value: datetime) -> datetime:
    """A time read back from the database as aware UTC (SQLite returns it naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else aware(value).isoformat()


class VendingService:
    """Prepaid vending on an operational database.

    Parameters
    ----------
    engine : Engine
        The MDM operational database (migrated).
    clock : Clock
        Time of every action.
    issuer : TokenIssuer, optional
        Makes STS tokens (holds the vending key); without it, STS vends are refused.
    fee : Decimal
        Fee per vend, gross [currency].
    event_sink : callable, optional
        Receives ``(session, event_type, payload)`` inside each transaction (webhooks).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        issuer: TokenIssuer | None = None,
        fee: Decimal = _ZERO,
        minimum_vend: Decimal = Decimal("0.01"),
        maximum_vend: Decimal = Decimal("100000"),
        event_sink: EventSink | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.issuer = issuer
        self.fee = fee
        self.minimum_vend = minimum_vend
        self.maximum_vend = maximum_vend
        self.event_sink = event_sink
        # SQLite has one writer; its busy handler polls with growing sleeps, so waiting
        # writers in this process queue on a lock instead (other processes still wait on
        # SQLite's busy timeout). PostgreSQL locks rows and needs none.
        self._writer: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        clock: Clock,
        settings: VendingSettings,
        *,
        issuer: TokenIssuer | None = None,
        event_sink: EventSink | None = None,
    ) -> VendingService:
        """The service with the fee and vend limits of the ``[vending]`` settings."""
        return cls(
            engine,
            clock,
            issuer=issuer,
            fee=Decimal(settings.vend_fee),
            minimum_vend=Decimal(settings.minimum_vend),
            maximum_vend=Decimal(settings.maximum_vend),
            event_sink=event_sink,
        )

    def _emit(self, session: Session, kind: str, payload: dict[str, Any]) -> None:
        if self.event_sink is not None:
            self.event_sink(session, kind, payload)

    # ------------------------------------------------------------------ set-up
    def create_customer(self, name: str, actor: str, email: str | None = None) -> int:
        if not name or len(name) > 200:
            raise InvalidInputError("name", name, "1-200 characters")
        with Session(self.engine) as session, session.begin():
            customer = Customer(name=name, email=email, created_at=self.clock.now())
            session.add(customer)
            session.flush()
            audit(
                session,
                at=self.clock.now(),
                actor=actor,
                action="create",
                entity="customer",
                entity_id=str(customer.id),
                reason="new customer",
                after={"name": name},
            )
            return customer.id

    def open_account(
        self,
        customer_id: int,
        *,
        number: str,
        mode: Literal["meter", "account"],
        tariff: str,
        actor: str,
        debt: Decimal = _ZERO,
        debt_recovery_pct: Decimal = _ZERO,
        low_credit_threshold: Decimal = Decimal(20),
    ) -> int:
        """Open a prepaid account on ``tariff`` (a saved tariff or a template name)."""
        if mode not in ("meter", "account"):
            raise InvalidInputError("mode", mode, "'meter' (STS tokens) or 'account' (smart)")
        if not (_ZERO <= debt_recovery_pct <= 100):
            raise InvalidInputError("debt_recovery_pct", debt_recovery_pct, "0 to 100")
        if debt < 0:
            raise InvalidInputError("debt", debt, "must be >= 0")
        now = self.clock.now()
        with Session(self.engine) as session, session.begin():
            if session.get(Customer, customer_id) is None:
                raise NotFoundError("customer_id", customer_id, "no such customer")
            if session.scalar(select(Account.id).where(Account.number == number)) is not None:
                raise VendRefusedError("open_account", f"account number {number} is taken")
            rates = resolve_tariff(session, tariff)
            if mode == "meter":
                vend_blocks(rates, 31)  # a token is priced in advance: refuse TOU now
            account = Account(
                number=number,
                customer_id=customer_id,
                currency=rates.currency,
                prepaid=True,
                opened_at=now,
            )
            session.add(account)
            session.flush()
            session.add(
                PrepaidAccount(
                    account_id=account.id,
                    mode=mode,
                    tariff=tariff,
                    balance=_ZERO,
                    debt=debt,
                    debt_recovery_pct=debt_recovery_pct,
                    carry_over=_ZERO,
                    low_credit_threshold=low_credit_threshold,
                    month_kwh=_ZERO,
                    month_charged={},
                    supply="on",
                    low_notified=False,
                    version=0,
                )
            )
            session.add(TariffAssignment(account_id=account.id, tariff=tariff, starts_at=now))
            if debt:
                post_journal(
                    session,
                    f"debt:{account.id}",
                    now,
                    rates.currency,
                    [
                        JournalLine(f"customer:{account.id}:debt", debt),
                        JournalLine("revenue:arrears", -debt),
                    ],
                )
            audit(
                session,
                at=now,
                actor=actor,
                action="open",
                entity="account",
                entity_id=str(account.id),
                reason=f"prepaid account ({mode})",
                after={"number": number, "tariff": tariff, "debt": str(debt)},
            )
            return account.id

    def register_meter(
        self,
        serial: str,
        account_id: int,
        actor: str,
        *,
        sts: StsParameters | None = None,
        timezone: str = "UTC",
        interval_s: int = 1800,
    ) -> None:
        """Attach a meter to a prepaid account (creating the MDM meter and service point).

        Meter-mode accounts need the meter's STS parameters; they are checked here (PAN,
        SGC, TI, KRN, key type, EA and DKGA), so a bad record never reaches a vend.
        """
        if sts is not None:
            sts.record()
        with Session(self.engine) as session, session.begin():
            prepaid = session.get(PrepaidAccount, account_id)
            if prepaid is None:
                raise NotFoundError("account_id", account_id, "no such prepaid account")
            if prepaid.mode == "meter" and sts is None:
                raise InvalidInputError("sts", None, "a meter-mode account's meter needs STS data")
            existing = session.get(VendingMeter, serial)
            if existing is not None and existing.account_id != account_id:
                raise VendRefusedError(
                    "register_meter", f"meter {serial} is on account {existing.account_id}"
                )
            point = session.scalar(select(ServicePoint).where(ServicePoint.code == serial))
            if point is None:
                point = ServicePoint(code=serial, account_id=account_id, timezone=timezone)
                session.add(point)
                session.flush()
            point.account_id = account_id
            meter = session.get(Meter, serial)
            if meter is None:
                meter = Meter(
                    id=serial,
                    service="electricity",
                    interval_s=interval_s,
                    timezone=timezone,
                    has_generation=False,
                    profile_capacity_days=60,
                    status="active",
                    installed_at=self.clock.now(),
                )
                session.add(meter)
            meter.service_point_id = point.id
            row = existing or VendingMeter(meter_id=serial, account_id=account_id)
            row.account_id = account_id
            if sts is not None:
                row.iin, row.drn = sts.iin, sts.drn
                row.supply_group_code, row.tariff_index = sts.supply_group_code, sts.tariff_index
                row.key_revision_number, row.key_type = sts.key_revision_number, sts.key_type
                row.key_expiry_number, row.base_date = sts.key_expiry_number, sts.base_date
                row.ea, row.dkga = sts.ea, sts.dkga
            session.add(row)
            audit(
                session,
                at=self.clock.now(),
                actor=actor,
                action="register",
                entity="vending_meter",
                entity_id=serial,
                reason=f"meter on account {account_id}",
                after={"account_id": account_id, "sts": sts is not None},
            )

    def create_vendor(self, name: str, currency: str, actor: str) -> int:
        round_money(Decimal(0), currency)  # checks the code
        with Session(self.engine) as session, session.begin():
            if session.scalar(select(Vendor.id).where(Vendor.name == name)) is not None:
                raise VendRefusedError("create_vendor", f"a vendor is called {name!r}")
            vendor = Vendor(
                name=name,
                currency=currency,
                float_balance=_ZERO,
                active=True,
                created_at=self.clock.now(),
            )
            session.add(vendor)
            session.flush()
            audit(
                session,
                at=self.clock.now(),
                actor=actor,
                action="create",
                entity="vendor",
                entity_id=str(vendor.id),
                reason="new vendor",
                after={"name": name, "currency": currency},
            )
            return vendor.id

    def deposit(self, vendor_id: int, amount: Decimal, actor: str, reference: str = "") -> Decimal:
        """Money a vendor paid in: its float rises. Returns the new float."""
        now = self.clock.now()
        with self._writer, Session(self.engine) as session, session.begin():
            session.execute(
                update(Vendor)
                .where(Vendor.id == vendor_id)
                .values(float_balance=Vendor.float_balance)
            )
            vendor = session.get(Vendor, vendor_id)
            if vendor is None:
                raise NotFoundError("vendor_id", vendor_id, "no such vendor")
            if (
                not isinstance(amount, Decimal)
                or amount <= 0
                or amount != round_money(amount, vendor.currency)
            ):
                raise InvalidInputError("amount", amount, "a positive amount in minor units")
            vendor.float_balance = Decimal(vendor.float_balance) + amount
            journal = f"deposit:{vendor_id}:{uuid.uuid4().hex[:16]}"
            post_journal(
                session,
                journal,
                now,
                vendor.currency,
                [JournalLine("bank", amount), JournalLine(float_account(vendor_id), -amount)],
                vendor_id=vendor_id,
            )
            audit(
                session,
                at=now,
                actor=actor,
                action="deposit",
                entity="vendor",
                entity_id=str(vendor_id),
                reason=reference or "float deposit",
                after={"amount": str(amount), "float": str(vendor.float_balance)},
            )
            return Decimal(vendor.float_balance)

    # ------------------------------------------------------------------ vending
    def quote(self, request: VendRequest) -> VendPrice:
        """What a vend would give, without selling anything."""
        with Session(self.engine) as session:
            meter = session.get(VendingMeter, request.meter)
            if meter is None:
                raise NotFoundError("meter", request.meter, "not a prepaid meter")
            prepaid = session.get(PrepaidAccount, meter.account_id)
            assert prepaid is not None
            tariff = resolve_tariff(session, prepaid.tariff)
            return self._price(request, prepaid, tariff, self.clock.now())[0]

    def _month(self, tariff: Tariff, at: datetime) -> str:
        local = at.astimezone(zone(tariff.timezone))
        return f"{local.year:04d}-{local.month:02d}"

    def _price(
        self, request: VendRequest, prepaid: PrepaidAccount, tariff: Tariff, at: datetime
    ) -> tuple[VendPrice, str]:
        month = self._month(tariff, at)
        if prepaid.mode == "account":
            if request.amount is None:
                raise InvalidInputError("kwh", request.kwh, "a smart-prepay account buys money")
            price = price_account_topup(
                request.amount,
                tariff.currency,
                fee=self.fee,
                debt=Decimal(prepaid.debt),
                debt_recovery_pct=Decimal(prepaid.debt_recovery_pct),
            )
            return price, month
        month_kwh = Decimal(prepaid.month_kwh) if prepaid.month == month else _ZERO
        kwargs: dict[str, Any] = {
            "month_kwh": month_kwh,
            "month_days": days_in_month(month),
            "collect_fixed": bool(tariff.fixed) and prepaid.fixed_paid_month != month,
            "fee": self.fee,
            "debt": Decimal(prepaid.debt),
            "debt_recovery_pct": Decimal(prepaid.debt_recovery_pct),
            "carry_in": round_money(Decimal(prepaid.carry_over), tariff.currency),
        }
        if request.amount is not None:
            return price_money_vend(tariff, request.amount, **kwargs), month
        assert request.kwh is not None
        return price_kwh_vend(tariff, request.kwh, **kwargs), month

    def vend(self, request: VendRequest, actor: str) -> VendOutcome:
        """Sell; idempotent on ``(vendor_id, request_id)`` (see the module doc)."""
        last: Exception | None = None
        for _ in range(3):
            try:
                with self._writer:
                    return self._vend_once(request, actor)
            except IntegrityError as exc:
                last = exc  # another transaction stored this request id first: read it
            except OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                last = exc  # SQLite's busy timeout ran out: try again
        if isinstance(last, OperationalError):
            raise StoreError(
                f"the operational database stayed busy; request {request.request_id} was not "
                "sold (retry it with the same request id)"
            )
        raise VendRefusedError("vend", f"request {request.request_id} could not be settled")

    def _existing(self, session: Session, request: VendRequest) -> VendOutcome | None:
        row = session.scalar(
            select(Vend).where(
                Vend.vendor_id == request.vendor_id, Vend.request_id == request.request_id
            )
        )
        if row is None:
            return None
        if row.request_hash != request.digest():
            raise RequestConflictError(
                "vend", f"request id {request.request_id} was used for a different vend"
            )
        return VendOutcome(vend_view(row), replayed=True)

    def _vend_once(self, request: VendRequest, actor: str) -> VendOutcome:
        now = self.clock.now()
        with Session(self.engine) as session, session.begin():
            # The vendor's lock first: it serialises this vendor's vends and their float.
            locked = session.execute(
                update(Vendor)
                .where(Vendor.id == request.vendor_id)
                .values(float_balance=Vendor.float_balance)
            )
            if locked.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFoundError("vendor_id", request.vendor_id, "no such vendor")
            existing = self._existing(session, request)
            if existing is not None:
                return existing
            vendor = session.get(Vendor, request.vendor_id)
            assert vendor is not None
            if not vendor.active:
                raise VendRefusedError("vend", f"vendor {vendor.name} is suspended")
            meter = session.scalar(
                select(VendingMeter).where(VendingMeter.meter_id == request.meter).with_for_update()
            )
            if meter is None:
                raise NotFoundError("meter", request.meter, "not a prepaid meter")
            prepaid = session.scalar(
                select(PrepaidAccount)
                .where(PrepaidAccount.account_id == meter.account_id)
                .with_for_update()
            )
            assert prepaid is not None
            tariff = resolve_tariff(session, prepaid.tariff)
            if tariff.currency != vendor.currency:
                raise VendRefusedError(
                    "vend", f"vendor sells {vendor.currency}, the tariff is in {tariff.currency}"
                )
            if request.amount is not None and not (
                self.minimum_vend <= request.amount <= self.maximum_vend
            ):
                raise InvalidInputError(
                    "amount",
                    request.amount,
                    f"a vend is {self.minimum_vend} to {self.maximum_vend} {tariff.currency}",
                )
            price, month = self._price(request, prepaid, tariff, now)
            if Decimal(vendor.float_balance) < price.tendered:
                raise VendRefusedError(
                    "vend",
                    f"vendor float {vendor.float_balance} {vendor.currency} is below "
                    f"{price.tendered}: deposit first",
                )
            token_digits = None
            tid = None
            if prepaid.mode == "meter":
                token_digits, tid = self._issue(meter, price.kwh, now)
            vend = Vend(
                reference=f"V{int(now.timestamp() * 1000):013d}-{request.vendor_id}-"
                f"{hashlib.sha256(request.request_id.encode()).hexdigest()[:8]}",
                account_id=prepaid.account_id,
                meter_id=request.meter,
                amount=price.tendered,
                currency=tariff.currency,
                units=price.kwh if prepaid.mode == "meter" else None,
                token=token_digits,
                vended_at=now,
                request_id=request.request_id,
                vendor_id=request.vendor_id,
                kind="sts" if prepaid.mode == "meter" else "account",
                status="completed",
                tid=tid,
                request_hash=request.digest(),
                receipt={
                    **price.as_json(),
                    "tariff": prepaid.tariff,
                    "month": month,
                    "fixed_month_before": prepaid.fixed_paid_month,
                    "month_kwh_before": str(
                        Decimal(prepaid.month_kwh) if prepaid.month == month else _ZERO
                    ),
                },
                vended_by=actor,
                prints=1,
            )
            session.add(vend)
            session.flush()
            # account state
            prepaid.debt = Decimal(prepaid.debt) - price.debt_recovered
            if prepaid.mode == "meter":
                if prepaid.month != month:
                    prepaid.month, prepaid.month_kwh = month, _ZERO
                prepaid.month_kwh = Decimal(prepaid.month_kwh) + price.kwh
                prepaid.carry_over = price.carry_out
                if price.fixed_collected:
                    prepaid.fixed_paid_month = month
            else:
                prepaid.balance = Decimal(prepaid.balance) + price.credit
                if Decimal(prepaid.balance) >= Decimal(prepaid.low_credit_threshold):
                    prepaid.low_notified = False
            prepaid.version = prepaid.version + 1
            vendor.float_balance = Decimal(vendor.float_balance) - price.tendered
            post_journal(
                session,
                f"vend:{vend.id}",
                now,
                tariff.currency,
                vend_journal(price, vendor_id=request.vendor_id, account_id=prepaid.account_id),
                vend_id=vend.id,
                vendor_id=request.vendor_id,
            )
            audit(
                session,
                at=now,
                actor=actor,
                action="vend",
                entity="vend",
                entity_id=str(vend.id),
                reason=f"request {request.request_id}",
                after={
                    "meter": request.meter,
                    "amount": str(price.tendered),
                    "kwh": str(price.kwh),
                    "tid": tid,
                },
            )
            view = vend_view(vend)
            self._emit(session, "vend.completed", _public(view))
            return VendOutcome(view, replayed=False)

    def _issue(self, meter: VendingMeter, kwh: Decimal, at: datetime) -> tuple[str, int]:
        if self.issuer is None:
            raise VendRefusedError(
                "vend", "no vending key is configured: STS tokens cannot be made"
            )
        record = _sts_of(meter).record()
        base = record.keys.base_date
        tid = tid_from_local(self.issuer.local_time(at), base)
        if meter.last_tid is not None and tid <= meter.last_tid:
            tid = meter.last_tid + 1
        token = self.issuer.credit(record, kwh, local_time_of_tid(tid, base))
        meter.last_tid = tid
        return token.digits, tid

    def management_token(
        self, serial: str, kind: str, actor: str, value: int | None = None
    ) -> tuple[str, str, int]:
        """A class 2 token for ``serial``: ``clear_tamper``, ``clear_credit`` or
        ``maximum_power_limit`` (``value`` in W). Returns digits, display form and TID."""
        if self.issuer is None:
            raise VendRefusedError(kind, "no vending key is configured: tokens cannot be made")
        now = self.clock.now()
        with Session(self.engine) as session, session.begin():
            meter = session.scalar(
                select(VendingMeter).where(VendingMeter.meter_id == serial).with_for_update()
            )
            if meter is None:
                raise NotFoundError("meter", serial, "not a prepaid meter")
            record = _sts_of(meter).record()
            base = record.keys.base_date
            tid = tid_from_local(self.issuer.local_time(now), base)
            if meter.last_tid is not None and tid <= meter.last_tid:
                tid = meter.last_tid + 1
            local = local_time_of_tid(tid, base)
            if kind == "clear_tamper":
                token = self.issuer.clear_tamper(record, local)
            elif kind == "clear_credit":
                token = self.issuer.clear_credit(record, local)
            elif kind == "maximum_power_limit":
                if value is None:
                    raise InvalidInputError("value", value, "a maximum power limit in W")
                token = self.issuer.maximum_power_limit(record, value, local)
            else:
                raise InvalidInputError("kind", kind, "clear_tamper, clear_credit or max power")
            meter.last_tid = tid
            audit(
                session,
                at=now,
                actor=actor,
                action=f"token:{kind}",
                entity="meter",
                entity_id=serial,
                reason="management token",
                after={"tid": tid, "value": value},
            )
            return token.digits, token.display, tid

    # ------------------------------------------------------------------ after the sale
    def get(self, vend_id: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            row = session.get(Vend, vend_id)
            if row is None:
                raise NotFoundError("vend_id", vend_id, "no such vend")
            return vend_view(row)

    def reprint(self, vend_id: int, actor: str) -> dict[str, Any]:
        """The receipt again (the same token); the count of prints goes up and is audited."""
        with Session(self.engine) as session, session.begin():
            row = session.get(Vend, vend_id)
            if row is None:
                raise NotFoundError("vend_id", vend_id, "no such vend")
            row.prints = (row.prints or 1) + 1
            audit(
                session,
                at=self.clock.now(),
                actor=actor,
                action="reprint",
                entity="vend",
                entity_id=str(vend_id),
                reason="receipt printed again",
                after={"prints": row.prints},
            )
            return vend_view(row)

    def reverse(self, vend_id: int, actor: str, role: str, reason: str) -> dict[str, Any]:
        """Undo a vend: a supervisor only, and only while its token is unused."""
        if role not in SUPERVISOR_ROLES:
            raise PermissionRefusedError("reverse", f"role {role} cannot reverse a vend")
        if not reason or not reason.strip():
            raise InvalidInputError("reason", reason, "say why the vend is reversed")
        now = self.clock.now()
        with self._writer, Session(self.engine) as session, session.begin():
            row = session.get(Vend, vend_id)
            if row is None:
                raise NotFoundError("vend_id", vend_id, "no such vend")
            session.execute(
                update(Vendor)
                .where(Vendor.id == row.vendor_id)
                .values(float_balance=Vendor.float_balance)
            )
            session.refresh(row)
            if row.status != "completed":
                raise VendRefusedError("reverse", f"vend {vend_id} is {row.status}")
            if row.token_used_at is not None:
                raise VendRefusedError(
                    "reverse", f"the token of vend {vend_id} was used on {row.token_used_at}"
                )
            prepaid = session.scalar(
                select(PrepaidAccount)
                .where(PrepaidAccount.account_id == row.account_id)
                .with_for_update()
            )
            assert prepaid is not None
            assert row.receipt is not None
            receipt = row.receipt
            credit = Decimal(receipt["credit"])
            if prepaid.mode == "account" and Decimal(prepaid.balance) < credit:
                raise VendRefusedError(
                    "reverse", f"the balance {prepaid.balance} no longer holds the credit {credit}"
                )
            prepaid.debt = Decimal(prepaid.debt) + Decimal(receipt["debt_recovered"])
            if prepaid.mode == "meter":
                if prepaid.month == receipt["month"]:
                    prepaid.month_kwh = max(
                        _ZERO, Decimal(prepaid.month_kwh) - Decimal(row.units or 0)
                    )
                    if receipt["fixed_collected"]:
                        prepaid.fixed_paid_month = receipt["fixed_month_before"]
                prepaid.carry_over = (
                    Decimal(prepaid.carry_over)
                    + Decimal(receipt["carry_in"])
                    - Decimal(receipt["carry_out"])
                )
            else:
                prepaid.balance = Decimal(prepaid.balance) - credit
            prepaid.version = prepaid.version + 1
            vendor = session.get(Vendor, row.vendor_id)
            assert vendor is not None
            vendor.float_balance = Decimal(vendor.float_balance) + Decimal(row.amount)
            row.status = "reversed"
            row.reversed_at = now
            row.reversed_by = actor
            row.reversal_reason = reason
            original = [
                JournalLine(entry_account, -Decimal(amount))
                for entry_account, amount in _journal_lines(session, f"vend:{vend_id}")
            ]
            post_journal(
                session,
                f"reversal:{vend_id}",
                now,
                row.currency,
                original,
                vend_id=vend_id,
                vendor_id=row.vendor_id,
            )
            audit(
                session,
                at=now,
                actor=actor,
                action="reverse",
                entity="vend",
                entity_id=str(vend_id),
                reason=reason,
                before={"status": "completed"},
                after={"status": "reversed"},
            )
            view = vend_view(row)
            self._emit(session, "vend.reversed", _public(view))
            return view

    def mark_token_used(self, session: Session, meter: str, tid: int, at: datetime) -> bool:
        """Record that ``meter`` accepted the token with ``tid`` (from its token log)."""
        row = session.scalar(select(Vend).where(Vend.meter_id == meter, Vend.tid == tid))
        if row is None or row.token_used_at is not None:
            return False
        row.token_used_at = at
        return True

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, vendor_id: int, day: date, timezone: str, actor: str) -> dict[str, Any]:
        """Reconcile a vendor's local day and keep the result (one per vendor and day)."""
        with Session(self.engine) as session, session.begin():
            vendor = session.get(Vendor, vendor_id)
            if vendor is None:
                raise NotFoundError("vendor_id", vendor_id, "no such vendor")
            figures = vendor_day(session, vendor_id, day, timezone)
            row = session.scalar(
                select(Reconciliation).where(
                    Reconciliation.vendor_id == vendor_id,
                    Reconciliation.day == day.isoformat(),
                )
            )
            if row is None:
                row = Reconciliation(vendor_id=vendor_id, day=day.isoformat())
                session.add(row)
            row.currency = vendor.currency
            row.opening, row.deposits = figures.opening, figures.deposits
            row.sales, row.reversals = figures.sales, figures.reversals
            row.closing, row.ledger_closing = figures.closing, figures.ledger_closing
            row.vend_count, row.reversal_count = figures.vend_count, figures.reversal_count
            row.balanced = figures.balanced
            row.created_at = self.clock.now()
            row.created_by = actor
            audit(
                session,
                at=self.clock.now(),
                actor=actor,
                action="reconcile",
                entity="vendor",
                entity_id=str(vendor_id),
                reason=f"day {day.isoformat()}",
                after={"balanced": figures.balanced, "closing": str(figures.closing)},
            )
            return reconciliation_view(row)


def reconciliation_view(row: Reconciliation) -> dict[str, Any]:
    return {
        "vendor_id": row.vendor_id,
        "day": row.day,
        "currency": row.currency,
        **{
            name: str(round_money(Decimal(getattr(row, name)), row.currency))
            for name in ("opening", "deposits", "sales", "reversals", "closing", "ledger_closing")
        },
        "vend_count": row.vend_count,
        "reversal_count": row.reversal_count,
        "balanced": row.balanced,
    }


def _public(view: dict[str, Any]) -> dict[str, Any]:
    """A vend for a webhook: no token digits (the ERP needs the sale, not the credit)."""
    return {k: v for k, v in view.items() if k not in ("token", "receipt")}


def _journal_lines(session: Session, journal: str) -> list[tuple[str, Decimal]]:
    rows = session.execute(
        select(LedgerEntry.ledger_account, LedgerEntry.amount)
        .where(LedgerEntry.journal == journal)
        .order_by(LedgerEntry.id)
    ).all()
    return [(account, Decimal(str(amount))) for account, amount in rows]


def vend_journal(price: VendPrice, *, vendor_id: int, account_id: int) -> list[JournalLine]:
    """The ledger lines of a vend (see :mod:`meterstack.vending.ledger`)."""
    lines = [
        JournalLine(float_account(vendor_id), price.tendered),
        JournalLine("revenue:fees", -price.fee),
        JournalLine(f"customer:{account_id}:debt", -price.debt_recovered),
        JournalLine(f"customer:{account_id}:carry", price.carry_in - price.carry_out),
        JournalLine(f"customer:{account_id}:balance", -price.credit),
    ]
    for line in price.lines:
        if line.component == "fixed":
            lines.append(JournalLine("revenue:fixed", -line.amount))
        elif line.component == "energy":
            lines.append(JournalLine("revenue:energy", -line.amount))
        elif line.component == "tax":
            lines.append(JournalLine(f"tax:{line.description}", -line.amount))
    return lines


def _sts_of(meter: VendingMeter) -> StsParameters:
    if meter.iin is None or meter.drn is None or meter.supply_group_code is None:
        raise VendRefusedError("vend", f"meter {meter.meter_id} has no STS record")
    return StsParameters(
        iin=meter.iin,
        drn=meter.drn,
        supply_group_code=meter.supply_group_code,
        tariff_index=meter.tariff_index or "01",
        key_revision_number=meter.key_revision_number or 1,
        key_type=meter.key_type if meter.key_type is not None else 2,
        key_expiry_number=meter.key_expiry_number if meter.key_expiry_number is not None else 255,
        base_date=meter.base_date or 2014,
        ea=meter.ea or "07",
        dkga=meter.dkga or "02",
    )
