"""Manual edits of validated intervals: who, when, why, before and after, audited.

An edit lives in two stores that share no transaction: its audit entry in the operational
database and its value in the interval store. The order makes sure no edit is ever
applied without its audit entry:

1. the audit entry and an :class:`~meterstack.mdm.operational.IntervalEdit` marked
   ``pending`` are committed together;
2. the validated value (method ``EDIT``) is written to the interval store, in one
   transaction;
3. the edit is marked ``applied``.

If step 2 fails, the edit is marked ``failed`` and a second audit entry
(``edit-failed``) says why. If the process dies between the steps, the edit stays
``pending``: :func:`reconcile_edits` (run by every ``vee run`` and ``vee edit``) looks
in the interval store's validated history for the version the edit wrote. Found, the
edit is marked ``applied``; not found, it is marked ``failed`` with an
``edit-abandoned`` audit entry: an edit whose command never finished is not applied
behind its author's back. The audit log itself is append-only; the state of an edit lives
in ``interval_edits``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.errors import InvalidInputError
from meterstack.core.obis import ObisCode
from meterstack.core.time import ensure_utc
from meterstack.mdm.errors import NothingToEditError
from meterstack.mdm.intervals.base import IntervalStore, ValidatedWrite
from meterstack.mdm.operational.audit import record
from meterstack.mdm.operational.models import IntervalEdit
from meterstack.mdm.quality import Method, Quality

#: A pending edit younger than this may still be on its way to the interval store.
EDIT_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the edits' ids, the values before them and the interval write."""

    edit_ids: tuple[int, ...]
    before: tuple[dict[str, Any], ...]
    written: ValidatedWrite


@dataclass
class ReconcileReport:
    """Pending edits settled by :func:`reconcile_edits`."""

    applied: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _utc(value: datetime) -> datetime:
    """Datetimes read back from SQLite have lost their zone; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def edit_intervals(
    store: IntervalStore,
    operational: Engine,
    *,
    meter: str,
    channel: str,
    interval_ends: Sequence[datetime],
    values: Sequence[float],
    actor: str,
    reason: str,
    at: datetime,
    final: bool = False,
) -> EditResult:
    """Set validated values by hand, each change audited first (see the module doc).

    Raises
    ------
    InvalidInputError
        No actor or reason, mismatched lengths, a value that is not finite, a channel
        that is not an OBIS code, or an interval with no validated value to edit (run
        VEE first).
    StoreError
        The interval store refused the write: the edit is marked failed, with its reason
        in the audit log, and nothing was changed.
    """
    if not actor.strip():
        raise InvalidInputError("actor", actor, "an edit needs the name of who made it")
    if not reason.strip():
        raise InvalidInputError("reason", reason, "an edit needs the reason for it")
    if len(interval_ends) != len(values) or not values:
        raise InvalidInputError("values", len(values), "one value per interval_end, at least one")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise InvalidInputError("values", list(values), "every value must be finite")
    try:
        channel = str(ObisCode.parse(channel))
    except InvalidInputError:
        raise InvalidInputError(
            "channel", channel, "not an OBIS code (like 1.0.1.8.0.255)"
        ) from None
    at = ensure_utc(at, "at")
    ends = [ensure_utc(e, "interval_ends") for e in interval_ends]
    before: list[dict[str, Any]] = []
    versions: list[int] = []
    for end in ends:
        history = store.validated_history(meter, channel, end)
        if not history:
            raise NothingToEditError(
                "interval_ends", end.isoformat(), f"{meter} {channel} has no validated value there"
            )
        current = history[-1]
        versions.append(current.version)
        before.append(
            {
                "value": current.value,
                "quality": current.quality.value,
                "method": current.method.name,
                "version": current.version,
            }
        )
    quality = Quality.FINAL_SUBSTITUTE if final else Quality.SUBSTITUTED
    edit_ids = _record_pending(
        operational,
        meter=meter, channel=channel, ends=ends, values=array.tolist(), before=before,
        versions=versions, actor=actor, reason=reason, at=at, quality=quality,
    )  # fmt: skip
    table = pa.table(
        {
            "meter": [meter] * len(ends),
            "channel": [channel] * len(ends),
            "interval_end": pa.array(ends, pa.timestamp("s", tz="UTC")),
            "value": pa.array(array),
            "quality": [quality.value] * len(ends),
            "method": pa.array([int(Method.EDIT)] * len(ends), pa.int8()),
            "checks": pa.array([0] * len(ends), pa.int32()),
        }
    )
    try:
        written = store.write_validated(table, actor)
    except Exception as exc:
        # The interval store did not take it: say so. Should this fail too, the edits
        # stay pending and the next reconciliation settles them.
        _settle(
            operational, edit_ids, at,
            status="failed", note=f"the interval write failed: {exc}", action="edit-failed",
        )  # fmt: skip
        raise
    _settle(operational, edit_ids, at, status="applied")
    return EditResult(tuple(edit_ids), tuple(before), written)


def _record_pending(
    operational: Engine,
    *,
    meter: str,
    channel: str,
    ends: list[datetime],
    values: list[float],
    before: list[dict[str, Any]],
    versions: list[int],
    actor: str,
    reason: str,
    at: datetime,
    quality: Quality,
) -> list[int]:
    """Commit the audit entries and the pending edits, together."""
    with Session(operational) as session, session.begin():
        edits = []
        for end, old, new, version in zip(ends, before, values, versions, strict=True):
            entry = record(
                session,
                at=at,
                actor=actor,
                action="edit",
                entity="interval",
                entity_id=f"{meter}/{channel}/{end.isoformat()}",
                reason=reason,
                before=old,
                after={"value": new, "quality": quality.value, "method": Method.EDIT.name},
            )
            session.flush()
            edit = IntervalEdit(
                audit_id=entry.id,
                meter=meter,
                channel=channel,
                interval_end=end,
                value=new,
                quality=quality.value,
                base_version=version,
                actor=actor,
                requested_at=at,
                status="pending",
            )
            session.add(edit)
            edits.append(edit)
        session.flush()
        return [edit.id for edit in edits]


def _settle(
    operational: Engine,
    edit_ids: Sequence[int],
    at: datetime,
    *,
    status: str,
    note: str | None = None,
    action: str = "edit-abandoned",
) -> None:
    """Mark edits ``applied`` or ``failed``; a failure is also written to the audit log
    (as ``action``)."""
    with Session(operational) as session, session.begin():
        for edit in session.scalars(select(IntervalEdit).where(IntervalEdit.id.in_(edit_ids))):
            edit.status = status
            edit.resolved_at = at
            edit.note = note
            if status == "failed":
                record(
                    session,
                    at=at,
                    actor=edit.actor,
                    action=action,
                    entity="interval",
                    entity_id=f"{edit.meter}/{edit.channel}/{_utc(edit.interval_end).isoformat()}",
                    reason=note or "",
                    before={"edit": edit.id, "audit": edit.audit_id},
                    after=None,
                )


def pending_edits(operational: Engine) -> list[IntervalEdit]:
    """Edits still pending, oldest first."""
    with Session(operational) as session:
        query = select(IntervalEdit).where(IntervalEdit.status == "pending")
        return list(session.scalars(query.order_by(IntervalEdit.id)).all())


def reconcile_edits(
    store: IntervalStore, operational: Engine, *, at: datetime, grace: timedelta = EDIT_GRACE
) -> ReconcileReport:
    """Settle edits left pending by a process that died (see the module doc).

    Only edits requested at least ``grace`` before ``at`` are looked at: a younger one may
    still be on its way to the interval store.
    """
    at = ensure_utc(at, "at")
    report = ReconcileReport()
    for edit in pending_edits(operational):
        if _utc(edit.requested_at) > at - grace:
            continue
        history = store.validated_history(edit.meter, edit.channel, _utc(edit.interval_end))
        written = any(
            version.version > edit.base_version
            and version.method == Method.EDIT
            and version.actor == edit.actor
            and version.value == edit.value
            for version in history
        )
        if written:
            _settle(operational, [edit.id], at, status="applied", note="settled by reconciliation")
            report.applied.append(edit.id)
        else:
            _settle(
                operational,
                [edit.id],
                at,
                status="failed",
                note="the interval write never happened (the edit's process stopped before"
                " it); not applied",
            )
            report.failed.append(edit.id)
    return report
