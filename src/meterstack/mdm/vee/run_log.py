"""VEE runs recorded in the operational database, and runs over what arrived since the last.

Every run is a row of ``vee_runs`` (start, end, the span of intervals it validated, its
counts, and ``succeeded`` or ``failed`` with the error). A run without dates
(:func:`run_vee_since_last`) takes in every raw reading the interval store received since
the last successful such run: readings received at ``received_at`` in
``[received_since, received_until)``, where ``received_until`` is the interval store's
clock when the run starts and ``received_since`` the previous run's ``received_until``
less :data:`RECEIVED_OVERLAP`. The overlap catches readings stamped before that clock
reading but committed after it (a stamp is taken when the writing transaction starts);
validating them twice changes nothing. The run validates the span of ``interval_end`` of
those readings, for every meter. A failed run moves no mark: the next one starts where
the last successful one ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.time import Clock
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.models import VeeRun
from meterstack.mdm.vee.run import VeeReport, run_vee
from meterstack.mdm.vee.validation import VeeConfig

#: How far back past the previous run's mark a run without dates looks again.
RECEIVED_OVERLAP = timedelta(minutes=15)
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class VeeRunRecord:
    """One row of ``vee_runs``."""

    id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    received_since: datetime | None
    received_until: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    meters: int
    intervals: int
    actual: int
    estimated: int
    nulls: int
    error: str | None

    def as_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "run": self.id,
            "status": self.status,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "received_since": iso(self.received_since),
            "received_until": iso(self.received_until),
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "meters": self.meters,
            "intervals": self.intervals,
            "actual": self.actual,
            "estimated": self.estimated,
            "null": self.nulls,
            "error": self.error,
        }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(run: VeeRun) -> VeeRunRecord:
    started = _utc(run.started_at)
    assert started is not None
    return VeeRunRecord(
        id=run.id,
        status=run.status,
        started_at=started,
        finished_at=_utc(run.finished_at),
        received_since=_utc(run.received_since),
        received_until=_utc(run.received_until),
        window_start=_utc(run.window_start),
        window_end=_utc(run.window_end),
        meters=run.meters,
        intervals=run.intervals,
        actual=run.actual,
        estimated=run.estimated,
        nulls=run.nulls,
        error=run.error,
    )


def vee_runs(operational: Engine, limit: int = 20) -> list[VeeRunRecord]:
    """The latest runs, newest first."""
    with Session(operational) as session:
        query = select(VeeRun).order_by(VeeRun.id.desc()).limit(limit)
        return [_record(run) for run in session.scalars(query)]


def last_successful_run(operational: Engine) -> VeeRunRecord | None:
    """The newest successful run that moved the received mark (a run without dates)."""
    with Session(operational) as session:
        query = (
            select(VeeRun)
            .where(VeeRun.status == "succeeded", VeeRun.received_until.is_not(None))
            .order_by(VeeRun.received_until.desc(), VeeRun.id.desc())
            .limit(1)
        )
        run = session.scalars(query).first()
        return None if run is None else _record(run)


def _start(
    operational: Engine,
    *,
    started_at: datetime,
    actor: str,
    received_since: datetime | None,
    received_until: datetime | None,
) -> int:
    with Session(operational) as session, session.begin():
        run = VeeRun(
            started_at=started_at,
            status="running",
            actor=actor,
            received_since=received_since,
            received_until=received_until,
            meters=0,
            intervals=0,
            actual=0,
            estimated=0,
            nulls=0,
        )
        session.add(run)
        session.flush()
        return run.id


def _finish(
    operational: Engine,
    run_id: int,
    *,
    finished_at: datetime,
    window: tuple[datetime, datetime] | None,
    report: VeeReport | None,
    error: str | None = None,
) -> VeeRunRecord:
    with Session(operational) as session, session.begin():
        run = session.get(VeeRun, run_id)
        assert run is not None
        run.finished_at = finished_at
        run.status = "failed" if error is not None else "succeeded"
        run.error = error
        if window is not None:
            run.window_start, run.window_end = window
        if report is not None:
            run.meters = report.meters
            run.intervals = report.intervals
            run.actual = report.actual
            run.estimated = report.estimated
            run.nulls = report.null
        session.flush()
        return _record(run)


def run_vee_recorded(
    store: IntervalStore,
    operational: Engine,
    start: datetime,
    end: datetime,
    *,
    clock: Clock,
    config: VeeConfig | None = None,
    history_days: int = 28,
    meters: Sequence[str] | None = None,
    actor: str = "vee",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[VeeRunRecord, VeeReport]:
    """:func:`~meterstack.mdm.vee.run.run_vee` over ``(start, end]`` as of ``clock.now()``,
    recorded as a run (it moves no received mark)."""
    now = clock.now()
    run_id = _start(
        operational, started_at=now, actor=actor, received_since=None, received_until=None
    )
    window = (start, min(end, now))
    try:
        report = run_vee(
            store, start, end, as_of=now, config=config, history_days=history_days,
            meters=meters, actor=actor, progress=progress,
        )  # fmt: skip
    except Exception as exc:
        _finish(operational, run_id, finished_at=clock.now(), window=window, report=None,
                error=str(exc))  # fmt: skip
        raise
    record = _finish(operational, run_id, finished_at=clock.now(), window=window, report=report)
    return record, report


def run_vee_since_last(
    store: IntervalStore,
    operational: Engine,
    *,
    clock: Clock,
    config: VeeConfig | None = None,
    history_days: int = 28,
    meters: Sequence[str] | None = None,
    actor: str = "vee",
    overlap: timedelta = RECEIVED_OVERLAP,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[VeeRunRecord, VeeReport | None]:
    """Validate everything received since the last successful run (see the module doc).

    With ``meters``, only those meters are validated and the received mark stays where it
    is (the other meters still wait for their run). Returns the run's record and the VEE
    report (None when nothing had arrived). Intervals are validated as of ``clock.now()``.
    """
    now = clock.now()
    until = store.database_now()
    last = last_successful_run(operational)
    since = None if last is None or last.received_until is None else last.received_until - overlap
    moves_mark = meters is None
    run_id = _start(
        operational,
        started_at=now,
        actor=actor,
        received_since=since if moves_mark else None,
        received_until=until if moves_mark else None,
    )
    try:
        span = store.received_between(since or _BEGINNING, until)
        window = None
        report = None
        if span is not None:
            # Intervals end at span[0] ... span[1]; run_vee takes (start, end].
            start, end = span[0] - timedelta(seconds=1), min(span[1], now)
            if end > start:
                window = (start, end)
                report = run_vee(
                    store, start, end, as_of=now, config=config, history_days=history_days,
                    meters=meters, actor=actor, progress=progress,
                )  # fmt: skip
    except Exception as exc:
        _finish(operational, run_id, finished_at=clock.now(), window=None, report=None,
                error=str(exc))  # fmt: skip
        raise
    record = _finish(operational, run_id, finished_at=clock.now(), window=window, report=report)
    return record, report
