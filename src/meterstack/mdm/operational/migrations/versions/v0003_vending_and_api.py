"""Prepaid vending (accounts, meters, vendors, ledger, reconciliation, notices, write-back)
and the API's users, keys, tariffs and webhooks.

Vends gain the client's request id, unique per vendor, so a vend retried under the same
id is found rather than sold twice, and a TID unique per meter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_MONEY = sa.Numeric(18, 6)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _vend_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("request_id", sa.String(128)),
        sa.Column("vendor_id", sa.Integer()),
        sa.Column("kind", sa.String(16)),
        sa.Column("status", sa.String(16)),
        sa.Column("tid", sa.Integer()),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("receipt", sa.JSON()),
        sa.Column("vended_by", sa.String(128)),
        sa.Column("token_used_at", _TIME),
        sa.Column("reversed_at", _TIME),
        sa.Column("reversed_by", sa.String(128)),
        sa.Column("reversal_reason", sa.Text()),
        sa.Column("prints", sa.Integer(), nullable=False, server_default="1"),
    )


def upgrade() -> None:
    op.create_table(
        "vendors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("float_balance", _MONEY, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    with op.batch_alter_table("vends") as batch:
        for column in _vend_columns():
            batch.add_column(column)
        batch.create_foreign_key("fk_vends_vendor_id_vendors", "vendors", ["vendor_id"], ["id"])
    op.create_index("ix_vends_request", "vends", ["vendor_id", "request_id"], unique=True)
    op.create_index("ix_vends_meter_tid", "vends", ["meter_id", "tid"], unique=True)
    op.create_index("ix_vends_account", "vends", ["account_id", "vended_at"])
    op.create_index("ix_vends_vended_at", "vends", ["vended_at"])
    op.create_table(
        "prepaid_accounts",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("tariff", sa.String(200), nullable=False),
        sa.Column("balance", _MONEY, nullable=False),
        sa.Column("debt", _MONEY, nullable=False),
        sa.Column("debt_recovery_pct", _MONEY, nullable=False),
        sa.Column("carry_over", _MONEY, nullable=False),
        sa.Column("low_credit_threshold", _MONEY, nullable=False),
        sa.Column("month", sa.String(7)),
        sa.Column("month_kwh", _MONEY, nullable=False),
        sa.Column("fixed_paid_month", sa.String(7)),
        sa.Column("month_charged", sa.JSON(), nullable=False),
        sa.Column("settled_until", _TIME),
        sa.Column("supply", sa.String(16), nullable=False),
        sa.Column("low_notified", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "vending_meters",
        sa.Column("meter_id", sa.String(64), sa.ForeignKey("meters.id"), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("iin", sa.String(6)),
        sa.Column("drn", sa.String(13)),
        sa.Column("supply_group_code", sa.String(6)),
        sa.Column("tariff_index", sa.String(2)),
        sa.Column("key_revision_number", sa.Integer()),
        sa.Column("key_type", sa.Integer()),
        sa.Column("key_expiry_number", sa.Integer()),
        sa.Column("base_date", sa.Integer()),
        sa.Column("ea", sa.String(2)),
        sa.Column("dkga", sa.String(2)),
        sa.Column("last_tid", sa.Integer()),
    )
    op.create_index("ix_vending_meters_account", "vending_meters", ["account_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("journal", sa.String(64), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("ledger_account", sa.String(128), nullable=False),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("vend_id", _BIGID),
        sa.Column("vendor_id", sa.Integer()),
    )
    op.create_index("ix_ledger_account", "ledger_entries", ["ledger_account", "at"])
    op.create_index("ix_ledger_journal", "ledger_entries", ["journal"])
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        *(
            sa.Column(name, _MONEY, nullable=False)
            for name in ("opening", "deposits", "sales", "reversals", "closing", "ledger_closing")
        ),
        sa.Column("vend_count", sa.Integer(), nullable=False),
        sa.Column("reversal_count", sa.Integer(), nullable=False),
        sa.Column("balanced", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index(
        "ix_reconciliations_vendor_day", "reconciliations", ["vendor_id", "day"], unique=True
    )
    op.create_table(
        "prepaid_notices",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("meter_id", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("balance", _MONEY, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "meter_readbacks",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("meter_id", sa.String(64), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("read_at", _TIME, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("total_purchased", _MONEY),
        sa.Column("purchase_count", sa.Integer()),
        sa.Column("last_purchase_amount", _MONEY),
        sa.Column("remaining_credit", _MONEY),
        sa.Column("cumulative_consumption_kwh", _MONEY),
        sa.Column("debt", _MONEY),
        sa.Column("credit_unit", sa.String(8)),
    )
    op.create_index("ix_meter_readbacks_meter", "meter_readbacks", ["meter_id", "read_at"])
    op.create_table(
        "tariff_documents",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "api_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id")),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id")),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id")),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id")),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("attempts_log", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_alarms_raised_at", "alarms", ["raised_at"])


def downgrade() -> None:
    op.drop_index("ix_alarms_raised_at", "alarms")
    op.drop_index("ix_webhook_deliveries_due", "webhook_deliveries")
    for table in (
        "webhook_deliveries", "webhooks", "api_keys", "api_users", "tariff_documents",
        "meter_readbacks", "prepaid_notices",
    ):  # fmt: skip
        op.drop_table(table)
    op.drop_index("ix_reconciliations_vendor_day", "reconciliations")
    op.drop_table("reconciliations")
    op.drop_index("ix_ledger_journal", "ledger_entries")
    op.drop_index("ix_ledger_account", "ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_vending_meters_account", "vending_meters")
    op.drop_table("vending_meters")
    op.drop_table("prepaid_accounts")
    for name in (
        "ix_vends_vended_at",
        "ix_vends_account",
        "ix_vends_meter_tid",
        "ix_vends_request",
    ):
        op.drop_index(name, "vends")
    with op.batch_alter_table("vends") as batch:
        batch.drop_constraint("fk_vends_vendor_id_vendors", type_="foreignkey")
        for column in _vend_columns():
            batch.drop_column(column.name)
    op.drop_table("vendors")
