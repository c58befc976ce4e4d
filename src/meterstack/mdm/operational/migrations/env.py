"""Alembic environment: migrations run on the connection :func:`migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from meterstack.mdm.operational.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - only misuse gets here
    raise RuntimeError("run the migrations through meterstack.mdm.operational.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
