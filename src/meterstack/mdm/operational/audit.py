"""Writing and reading the append-only audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterstack.core.time import ensure_utc
from meterstack.mdm.operational.models import AuditEntry


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    reason: str,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Add one audit entry to ``session`` (committed with the session's transaction)."""
    entry = AuditEntry(
        at=ensure_utc(at, "at"),
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        reason=reason,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def entries(session: Session, entity: str, entity_id: str | None = None) -> Sequence[AuditEntry]:
    """The audit entries about ``entity`` (and one id of it), oldest first."""
    query = select(AuditEntry).where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    return session.scalars(query.order_by(AuditEntry.id)).all()
