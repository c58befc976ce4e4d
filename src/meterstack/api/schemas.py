"""Request and response bodies of the API (pydantic v2; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Role = Literal["admin", "operator", "vendor", "customer"]
Serial = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
MoneyIn = Annotated[Decimal, Field(gt=0, le=Decimal("1000000"), max_digits=12, decimal_places=2)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: A time in a request body: an RFC 3339 string with its UTC offset.
Instant = Annotated[AwareDatetime, Field(strict=True)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class PrincipalOut(BaseModel):
    kind: str
    id: int
    name: str
    role: Role
    customer_id: int | None
    vendor_id: int | None


class UserIn(_In):
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,128}$")]
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    role: Role
    customer_id: int | None = None
    vendor_id: int | None = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    customer_id: int | None
    vendor_id: int | None
    active: bool


class ApiKeyIn(_In):
    name: Name
    role: Role
    customer_id: int | None = None
    vendor_id: int | None = None


class ApiKeyOut(BaseModel):
    id: int
    prefix: str
    name: str
    role: Role
    customer_id: int | None
    vendor_id: int | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown once, kept only as a hash")


class WebhookIn(_In):
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,1990}$")]
    events: list[
        Literal[
            "*",
            "alarm.raised",
            "vend.completed",
            "vend.reversed",
            "account.low_credit",
            "account.disconnected",
            "account.reconnected",
        ]
    ] = Field(min_length=1)
    secret: Annotated[str, StringConstraints(min_length=16, max_length=128)] | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the HMAC-SHA256 signing secret: shown once")


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    attempts_log: list[dict[str, Any]]
    payload: dict[str, Any]


class CustomerIn(_In):
    name: Name
    email: Annotated[str, StringConstraints(max_length=320)] | None = None


class CustomerOut(BaseModel):
    id: int
    name: str
    email: str | None
    created_at: datetime


class AccountIn(_In):
    customer_id: int
    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    mode: Literal["meter", "account"]
    tariff: Name
    debt: Annotated[Decimal, Field(ge=0, le=Decimal("1000000"), decimal_places=2)] = Decimal(0)
    debt_recovery_pct: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)] = Decimal(0)
    low_credit_threshold: Annotated[Decimal, Field(ge=0, le=Decimal("1000000"))] | None = None


class AccountOut(BaseModel):
    id: int
    number: str
    customer_id: int
    currency: str
    mode: str | None
    tariff: str | None
    balance: str | None
    debt: str | None
    carry_over: str | None
    supply: str | None
    month_kwh_sold: str | None
    meters: list[str]


class StsIn(_In):
    iin: Annotated[str, StringConstraints(pattern=r"^(\d{6}|\d{4})$")] = "600727"
    drn: Annotated[str, StringConstraints(pattern=r"^(\d{11}|\d{13})$")]
    supply_group_code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
    tariff_index: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] = "01"
    key_revision_number: int = Field(default=1, ge=1, le=9)
    key_type: int = Field(default=2, ge=0, le=3)
    key_expiry_number: int = Field(default=255, ge=0, le=255)
    base_date: Literal[1993, 2014, 2035] = 2014
    ea: Literal["07", "09", "11"] = "07"
    dkga: Literal["02", "04"] = "02"


class MeterIn(_In):
    serial: Serial
    account_id: int
    timezone: str = "UTC"
    interval_s: Literal[900, 1800, 3600] = 1800
    sts: StsIn | None = None


class MeterOut(BaseModel):
    serial: str
    status: str
    timezone: str
    interval_s: int | None
    account_id: int | None
    customer_id: int | None
    prepaid_mode: str | None
    sts: bool


class IntervalPoint(BaseModel):
    interval_end: datetime
    value: float | None
    status: int | None = None
    quality: str | None = None


class IntervalsOut(BaseModel):
    meter: str
    channel: str
    validated: bool
    points: list[IntervalPoint]


class RegisterOut(BaseModel):
    obis: str
    read_at: datetime
    value: float


class EventOut(BaseModel):
    log: str
    seq: int
    at: datetime
    code: int
    detail: str


class ConsumptionOut(BaseModel):
    meter: str
    resolution: Literal["30min", "day", "month"]
    timezone: str
    unit: Literal["kWh"] = "kWh"
    series: list[dict[str, Any]]


class CreditOut(BaseModel):
    meter: str
    mode: str | None
    currency: str | None
    balance: str | None
    debt: str | None
    supply: str | None
    last_readback: dict[str, Any] | None
    recent_vends: list[dict[str, Any]]


class CommandIn(_In):
    name: Literal[
        "remote_disconnect", "remote_reconnect", "read_registers", "billing_reset", "diagnostics"
    ]
    args: dict[str, Any] = Field(default_factory=dict)


class CommandOut(BaseModel):
    id: int
    meter: str
    kind: str
    status: str
    requested_by: str
    requested_at: datetime
    payload: dict[str, Any]


class AlarmIn(_In):
    meter: Serial
    code: int = Field(ge=0, le=65535)
    raised_at: Instant | None = None
    detail: Annotated[str, StringConstraints(max_length=2000)] = ""


class AlarmOut(BaseModel):
    id: int
    meter: str
    code: int
    raised_at: datetime
    cleared_at: datetime | None
    detail: str
    acknowledged_by: str | None


class TariffSummary(BaseModel):
    name: str
    source: Literal["template", "saved"]
    currency: str
    description: str


class TariffOut(BaseModel):
    name: str
    source: Literal["template", "saved", "composed"]
    document: dict[str, Any]


class TariffBlockSpec(BaseModel):
    kind: str
    description: str
    params: dict[str, str]


class ComposeBlock(_In):
    kind: Literal[
        "flat_energy",
        "inclining_blocks",
        "time_of_use",
        "free_basic_electricity",
        "fixed_monthly",
        "fixed_daily",
        "percent_tax",
        "flat_demand",
    ]
    params: dict[str, Any] = Field(default_factory=dict)


class ComposeIn(_In):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    timezone: str = "UTC"
    blocks: list[ComposeBlock] = Field(min_length=1, max_length=20)
    save: bool = False


class BillRunIn(_In):
    month: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class BillOut(BaseModel):
    id: int
    account_id: int
    period_start: datetime
    period_end: datetime
    total: str
    currency: str
    issued_at: datetime
    document: dict[str, Any]


class VendorIn(_In):
    name: Name
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class VendorOut(BaseModel):
    id: int
    name: str
    currency: str
    float_balance: str
    active: bool


class DepositIn(_In):
    amount: MoneyIn
    reference: Annotated[str, StringConstraints(max_length=200)] = ""


class VendIn(_In):
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    meter: Serial
    amount: MoneyIn | None = None
    kwh: Annotated[Decimal, Field(gt=0, le=Decimal("100000"), decimal_places=1)] | None = None
    vendor_id: int | None = Field(default=None, description="staff only: the selling vendor")


class QuoteIn(_In):
    meter: Serial
    amount: MoneyIn | None = None
    kwh: Annotated[Decimal, Field(gt=0, le=Decimal("100000"), decimal_places=1)] | None = None


class VendOut(BaseModel):
    id: int
    reference: str
    request_id: str | None
    vendor_id: int | None
    account_id: int
    meter: str
    kind: str | None
    status: str | None
    amount: str
    currency: str
    kwh: str | None
    token: str | None
    tid: int | None
    vended_at: datetime
    vended_by: str | None
    token_used_at: datetime | None
    reversed_at: datetime | None
    reversed_by: str | None
    reversal_reason: str | None
    prints: int
    receipt: dict[str, Any] | None


class ReverseIn(_In):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ManagementTokenIn(_In):
    meter: Serial
    kind: Literal["clear_tamper", "clear_credit", "maximum_power_limit"]
    value: int | None = Field(default=None, ge=1, le=1_000_000)


class IssuedTokenOut(BaseModel):
    meter: str
    kind: str
    token: str
    display: str
    tid: int | None


class ReconcileIn(_In):
    vendor_id: int
    day: date


class ReconciliationOut(BaseModel):
    vendor_id: int
    day: str
    currency: str
    opening: str
    deposits: str
    sales: str
    reversals: str
    closing: str
    ledger_closing: str
    vend_count: int
    reversal_count: int
    balanced: bool


class TrialBalanceOut(BaseModel):
    accounts: dict[str, str]
    total: str
    balanced: bool


class SettlementOut(BaseModel):
    accounts: int
    charged: str
    notices: list[dict[str, Any]]
    commands: list[dict[str, Any]]


class InquiryIn(_In):
    serial: Serial
    cumulative_consumption_kwh: Decimal
    credit_unit: Literal["money", "kWh"] | None = None
    total_purchased: Decimal | None = None
    purchase_count: int = Field(default=0, ge=0)
    last_purchase_amount: Decimal | None = None
    last_purchase_at: Instant | None = None
    remaining_credit: Decimal | None = None
    debt: Decimal | None = None


class WriteBackIn(_In):
    inquiries: list[InquiryIn] = Field(default_factory=list, max_length=10_000)
    since: Instant | None = None


class WriteBackOut(BaseModel):
    readbacks: int
    tokens_used: int
    register_reads: int
    unknown_meters: list[str]


class SamplingOut(BaseModel):
    rank: int
    customer_id: int
    account_id: int
    meters: list[str]
    score: float
    evidence: dict[str, Any]
    reasons: list[str]


class NoticeOut(BaseModel):
    id: int
    account_id: int
    meter: str | None
    kind: str
    at: datetime
    balance: str
    detail: str
