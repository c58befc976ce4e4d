"""Create the operational tables and make the audit log append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_MONEY = sa.Numeric(18, 6)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(64), nullable=False, unique=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("prepaid", sa.Boolean(), nullable=False),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("closed_at", _TIME),
    )
    op.create_table(
        "service_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id")),
        sa.Column("address", sa.Text()),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
    )
    op.create_table(
        "meters",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("service_point_id", sa.Integer(), sa.ForeignKey("service_points.id")),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("interval_s", sa.Integer()),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("has_generation", sa.Boolean(), nullable=False),
        sa.Column("profile_capacity_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("installed_at", _TIME),
        sa.Column("removed_at", _TIME),
    )
    op.create_table(
        "tariff_assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("tariff", sa.String(200), nullable=False),
        sa.Column("starts_at", _TIME, nullable=False),
        sa.Column("ends_at", _TIME),
    )
    op.create_table(
        "commands",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("meter_id", sa.String(64), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("completed_at", _TIME),
        sa.Column("result", sa.Text()),
    )
    op.create_table(
        "alarms",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("meter_id", sa.String(64), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("raised_at", _TIME, nullable=False),
        sa.Column("cleared_at", _TIME),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("acknowledged_by", sa.String(128)),
    )
    op.create_table(
        "vends",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("reference", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("meter_id", sa.String(64), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("units", _MONEY),
        sa.Column("token", sa.String(32)),
        sa.Column("vended_at", _TIME, nullable=False),
    )
    op.create_table(
        "bills",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("period_start", _TIME, nullable=False),
        sa.Column("period_end", _TIME, nullable=False),
        sa.Column("total", _MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_at", _TIME, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON()),
        sa.Column("after", sa.JSON()),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])
    op.create_index("ix_alarms_meter_id", "alarms", ["meter_id", "raised_at"])
    op.create_index("ix_commands_meter_id", "commands", ["meter_id", "requested_at"])
    _append_only("audit_log")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` in the database itself."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in (
        "audit_log", "bills", "vends", "alarms", "commands", "tariff_assignments", "meters",
        "service_points", "accounts", "customers",
    ):  # fmt: skip
        op.drop_table(table)
