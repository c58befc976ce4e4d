"""Record VEE runs, and track each manual edit from its audit entry to its interval write.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vee_runs",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("received_since", _TIME),
        sa.Column("received_until", _TIME),
        sa.Column("window_start", _TIME),
        sa.Column("window_end", _TIME),
        sa.Column("meters", sa.Integer(), nullable=False),
        sa.Column("intervals", sa.Integer(), nullable=False),
        sa.Column("actual", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Integer(), nullable=False),
        sa.Column("nulls", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_vee_runs_status", "vee_runs", ["status", "received_until"])
    op.create_table(
        "interval_edits",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("audit_id", _BIGID, sa.ForeignKey("audit_log.id"), nullable=False),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("interval_end", _TIME, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("quality", sa.String(1), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", _TIME),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_interval_edits_status", "interval_edits", ["status", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_interval_edits_status", "interval_edits")
    op.drop_table("interval_edits")
    op.drop_index("ix_vee_runs_status", "vee_runs")
    op.drop_table("vee_runs")
