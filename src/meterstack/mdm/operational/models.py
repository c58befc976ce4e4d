"""The operational tables: who is supplied where, through which meter, on which tariff, and
what happened to them (commands, alarms, vends, bills), with an append-only audit log.

The schema is created and changed only by the Alembic migrations shipped beside this
module (:func:`meterstack.mdm.operational.migrate`); these classes describe it for queries.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UtcTime = DateTime(timezone=True)
Money = Numeric(18, 6)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    prepaid: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(UtcTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcTime)


class ServicePoint(Base):
    __tablename__ = "service_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    address: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    service: Mapped[str] = mapped_column(String(16), default="electricity")


class Meter(Base):
    """A meter. ``id`` is its serial number, the name readings carry."""

    __tablename__ = "meters"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"))
    service: Mapped[str] = mapped_column(String(16), default="electricity")
    interval_s: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    has_generation: Mapped[bool] = mapped_column(Boolean, default=False)
    profile_capacity_days: Mapped[int] = mapped_column(Integer, default=60)
    status: Mapped[str] = mapped_column(String(16), default="active")
    installed_at: Mapped[datetime | None] = mapped_column(UtcTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcTime)


class TariffAssignment(Base):
    __tablename__ = "tariff_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    tariff: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UtcTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcTime)


class Command(Base):
    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("meters.id"))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UtcTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcTime)
    result: Mapped[str | None] = mapped_column(Text)


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("meters.id"))
    code: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UtcTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcTime)
    detail: Mapped[str] = mapped_column(Text, default="")
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))


class Vend(Base):
    """A sale: an STS token or a credit to a smart-prepay balance.

    ``request_id`` is the client's idempotency key (unique per vendor); ``receipt`` the
    priced breakdown; ``status`` ``completed`` or ``reversed``; ``token_used_at`` is set
    when the meter reports the token accepted (a used token cannot be reversed).
    """

    __tablename__ = "vends"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[str] = mapped_column(ForeignKey("meters.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    units: Mapped[Decimal | None] = mapped_column(Money)
    token: Mapped[str | None] = mapped_column(String(32))
    vended_at: Mapped[datetime] = mapped_column(UtcTime)
    request_id: Mapped[str | None] = mapped_column(String(128))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    kind: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    tid: Mapped[int | None] = mapped_column(Integer)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    vended_by: Mapped[str | None] = mapped_column(String(128))
    token_used_at: Mapped[datetime | None] = mapped_column(UtcTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcTime)
    reversed_by: Mapped[str | None] = mapped_column(String(128))
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    prints: Mapped[int] = mapped_column(Integer, default=1)


class Bill(Base):
    __tablename__ = "bills"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    period_start: Mapped[datetime] = mapped_column(UtcTime)
    period_end: Mapped[datetime] = mapped_column(UtcTime)
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UtcTime)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEntry(Base):
    """One line of the audit log: who did what, when, why, and the values before and after.

    The table is append-only: the migrations install triggers that refuse UPDATE and
    DELETE on it, on SQLite and on PostgreSQL.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class VeeRun(Base):
    """One VEE run: when, what it covered and what it did.

    ``received_since`` / ``received_until`` bound the ``received_at`` of the raw readings
    an automatic run took in (``received_until`` is where the next one starts); both are
    null for a run over dates given by hand, which moves no such mark. ``status`` is
    ``running``, ``succeeded`` or ``failed`` (with ``error``).
    """

    __tablename__ = "vee_runs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcTime)
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    received_since: Mapped[datetime | None] = mapped_column(UtcTime)
    received_until: Mapped[datetime | None] = mapped_column(UtcTime)
    window_start: Mapped[datetime | None] = mapped_column(UtcTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcTime)
    meters: Mapped[int] = mapped_column(Integer, default=0)
    intervals: Mapped[int] = mapped_column(Integer, default=0)
    actual: Mapped[int] = mapped_column(Integer, default=0)
    estimated: Mapped[int] = mapped_column(Integer, default=0)
    nulls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class IntervalEdit(Base):
    """A manual edit of one validated interval, from its audit entry to its interval write.

    The audit entry (``audit_id``) is committed first with the edit ``pending``; the
    interval is written to the interval store; the edit is then marked ``applied``. A write
    that fails marks it ``failed``; a crash in between leaves it ``pending`` until
    :func:`meterstack.mdm.vee.editing.reconcile_edits` looks at the interval store and
    settles it. ``base_version`` is the validated version the edit replaced.
    """

    __tablename__ = "interval_edits"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_log.id"))
    meter: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    interval_end: Mapped[datetime] = mapped_column(UtcTime)
    value: Mapped[float] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(String(1))
    base_version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UtcTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    resolved_at: Mapped[datetime | None] = mapped_column(UtcTime)
    note: Mapped[str | None] = mapped_column(Text)


# -- prepaid vending (migration 0003) ---------------------------------------------------


class PrepaidAccount(Base):
    """The prepaid side of an account.

    ``mode`` is ``meter`` (credit held on the meter, bought as STS tokens) or ``account``
    (smart prepay: the balance is kept here and decremented from interval data).
    ``month`` / ``month_kwh`` count the kWh sold (meter mode) in the local month, which
    places a vend in the tariff's monthly blocks; ``fixed_paid_month`` is the last local
    month (``YYYY-MM``) whose fixed charges were collected. ``month_charged`` holds the
    month-to-date charges already taken from an account-mode balance, by component.
    ``supply`` is what the back office last asked of the meter's relay (``on``/``off``).
    """

    __tablename__ = "prepaid_accounts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    tariff: Mapped[str] = mapped_column(String(200))
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    debt: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    debt_recovery_pct: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    carry_over: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    low_credit_threshold: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    month: Mapped[str | None] = mapped_column(String(7))
    month_kwh: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    fixed_paid_month: Mapped[str | None] = mapped_column(String(7))
    month_charged: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    settled_until: Mapped[datetime | None] = mapped_column(UtcTime)
    supply: Mapped[str] = mapped_column(String(16), default="on")
    low_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)


class VendingMeter(Base):
    """What the vending side knows of a meter: its account and, for STS meters, its PAN
    and decoder key parameters (never the key: it is derived from the vending key when a
    token is made). ``last_tid`` is the newest TID issued to it: every token gets a new
    one."""

    __tablename__ = "vending_meters"

    meter_id: Mapped[str] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    iin: Mapped[str | None] = mapped_column(String(6))
    drn: Mapped[str | None] = mapped_column(String(13))
    supply_group_code: Mapped[str | None] = mapped_column(String(6))
    tariff_index: Mapped[str | None] = mapped_column(String(2))
    key_revision_number: Mapped[int | None] = mapped_column(Integer)
    key_type: Mapped[int | None] = mapped_column(Integer)
    key_expiry_number: Mapped[int | None] = mapped_column(Integer)
    base_date: Mapped[int | None] = mapped_column(Integer)
    ea: Mapped[str | None] = mapped_column(String(2))
    dkga: Mapped[str | None] = mapped_column(String(2))
    last_tid: Mapped[int | None] = mapped_column(Integer)


class Vendor(Base):
    """A point of sale with a float: money it has paid in, drawn down by its vends."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    float_balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class LedgerEntry(Base):
    """One line of a journal; the lines of a journal sum to zero (debits positive)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    journal: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcTime)
    ledger_account: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    vend_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    vendor_id: Mapped[int | None] = mapped_column(Integer)


class Reconciliation(Base):
    """A vendor's day: opening float, deposits, sales, reversals, closing, and whether the
    closing balance equals the ledger's."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    day: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    opening: Mapped[Decimal] = mapped_column(Money)
    deposits: Mapped[Decimal] = mapped_column(Money)
    sales: Mapped[Decimal] = mapped_column(Money)
    reversals: Mapped[Decimal] = mapped_column(Money)
    closing: Mapped[Decimal] = mapped_column(Money)
    ledger_closing: Mapped[Decimal] = mapped_column(Money)
    vend_count: Mapped[int] = mapped_column(Integer)
    reversal_count: Mapped[int] = mapped_column(Integer)
    balanced: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    created_by: Mapped[str] = mapped_column(String(128))


class PrepaidNotice(Base):
    """A notice to a prepaid customer: low credit, disconnected, reconnected."""

    __tablename__ = "prepaid_notices"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcTime)
    balance: Mapped[Decimal] = mapped_column(Money)
    detail: Mapped[str] = mapped_column(Text, default="")


class MeterReadback(Base):
    """What a meter reported of its prepaid state (seed 002's write-back)."""

    __tablename__ = "meter_readbacks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("meters.id"))
    read_at: Mapped[datetime] = mapped_column(UtcTime)
    source: Mapped[str] = mapped_column(String(32))
    total_purchased: Mapped[Decimal | None] = mapped_column(Money)
    purchase_count: Mapped[int | None] = mapped_column(Integer)
    last_purchase_amount: Mapped[Decimal | None] = mapped_column(Money)
    remaining_credit: Mapped[Decimal | None] = mapped_column(Money)
    cumulative_consumption_kwh: Mapped[Decimal | None] = mapped_column(Money)
    debt: Mapped[Decimal | None] = mapped_column(Money)
    credit_unit: Mapped[str | None] = mapped_column(String(8))


class TariffDocument(Base):
    """A tariff saved through the API (composed from template blocks, or uploaded)."""

    __tablename__ = "tariff_documents"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    created_by: Mapped[str] = mapped_column(String(128))


class ApiUser(Base):
    """Someone who logs in to the API: a password (scrypt hash) and a role."""

    __tablename__ = "api_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class ApiKey(Base):
    """An API key for machines (ERP, BMS): kept as its SHA-256, shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcTime)


class Webhook(Base):
    """A subscriber to events (``alarm.raised``, ``vend.completed``, ``vend.reversed``...)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    created_by: Mapped[str] = mapped_column(String(128))


class WebhookDelivery(Base):
    """One event for one webhook and every attempt to deliver it (``attempts_log``)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcTime)
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


# The indexes the migrations make, declared here too so that the models and the migrated
# schema agree (tests/mdm/test_migrations.py compares them).
Index("ix_audit_log_entity", AuditEntry.entity, AuditEntry.entity_id)
Index("ix_alarms_meter_id", Alarm.meter_id, Alarm.raised_at)
Index("ix_alarms_raised_at", Alarm.raised_at)
Index("ix_commands_meter_id", Command.meter_id, Command.requested_at)
Index("ix_vee_runs_status", VeeRun.status, VeeRun.received_until)
Index("ix_interval_edits_status", IntervalEdit.status, IntervalEdit.requested_at)
Index("ix_vends_request", Vend.vendor_id, Vend.request_id, unique=True)
Index("ix_vends_meter_tid", Vend.meter_id, Vend.tid, unique=True)
Index("ix_vends_account", Vend.account_id, Vend.vended_at)
Index("ix_vends_vended_at", Vend.vended_at)
Index("ix_vending_meters_account", VendingMeter.account_id)
Index("ix_ledger_account", LedgerEntry.ledger_account, LedgerEntry.at)
Index("ix_ledger_journal", LedgerEntry.journal)
Index("ix_reconciliations_vendor_day", Reconciliation.vendor_id, Reconciliation.day, unique=True)
Index("ix_meter_readbacks_meter", MeterReadback.meter_id, MeterReadback.read_at)
Index("ix_webhook_deliveries_due", WebhookDelivery.status, WebhookDelivery.next_attempt_at)
