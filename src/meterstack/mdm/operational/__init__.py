"""The operational store: SQLAlchemy models and the Alembic migrations that build them.

SQLite (WAL) is the embedded default; PostgreSQL 15 is the production database. The same
migrations run on both.
"""

from meterstack.mdm.operational.audit import entries, record
from meterstack.mdm.operational.engine import (
    create_operational_engine,
    head_revision,
    migrate,
    schema_revision,
)
from meterstack.mdm.operational.models import (
    Account,
    Alarm,
    ApiKey,
    ApiUser,
    AuditEntry,
    Base,
    Bill,
    Command,
    Customer,
    IntervalEdit,
    LedgerEntry,
    Meter,
    MeterReadback,
    PrepaidAccount,
    PrepaidNotice,
    Reconciliation,
    ServicePoint,
    TariffAssignment,
    TariffDocument,
    VeeRun,
    Vend,
    VendingMeter,
    Vendor,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "Account",
    "Alarm",
    "ApiKey",
    "ApiUser",
    "AuditEntry",
    "Base",
    "Bill",
    "Command",
    "Customer",
    "IntervalEdit",
    "LedgerEntry",
    "Meter",
    "MeterReadback",
    "PrepaidAccount",
    "PrepaidNotice",
    "Reconciliation",
    "ServicePoint",
    "TariffAssignment",
    "TariffDocument",
    "VeeRun",
    "Vend",
    "VendingMeter",
    "Vendor",
    "Webhook",
    "WebhookDelivery",
    "create_operational_engine",
    "entries",
    "head_revision",
    "migrate",
    "record",
    "schema_revision",
]
