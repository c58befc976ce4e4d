"""Recorded VEE runs (what arrived since the last one) and audited edits across two stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.core.errors import InvalidInputError, StoreError
from meterstack.core.time import SimulatedClock
from meterstack.mdm.intervals import DuckDBIntervalStore, IntervalStore, MeterRegistration
from meterstack.mdm.operational import IntervalEdit, entries, migrate
from meterstack.mdm.quality import Method
from meterstack.mdm.vee import (
    edit_intervals,
    editing,
    pending_edits,
    reconcile_edits,
    run_log,
    run_vee,
    run_vee_since_last,
    vee_runs,
)
from tests.conftest import REPO_ROOT

from .conftest import intervals, t

A = "1.0.1.8.0.255"
HOUR = 3600


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    e = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(e)
    return e


def hours(first_day: int, days: int) -> np.ndarray:
    return int(t(first_day).timestamp()) + HOUR * np.arange(1, 24 * days + 1)


def load(store: IntervalStore, first_day: int, days: int) -> np.ndarray:
    ends = hours(first_day, days)
    store.ingest_intervals(intervals("M1", ends, 100 + (np.arange(ends.size) % 24) * 10.0))
    return ends


# -- runs ----------------------------------------------------------------------------------


def test_a_run_without_dates_takes_what_arrived_since_the_last(
    store: IntervalStore, engine: Engine
) -> None:
    store.register_meters([MeterRegistration("M1", HOUR)])
    load(store, 1, 3)
    clock = SimulatedClock(t(20))
    first, report = run_vee_since_last(
        store, engine, clock=clock, history_days=7, overlap=timedelta(0)
    )
    assert first.status == "succeeded"
    assert first.received_since is None  # the first run takes everything
    assert (first.window_start, first.window_end) == (t(1, 1) - timedelta(seconds=1), t(4))
    assert report is not None
    assert report.intervals == first.intervals == 72
    # Nothing new: the run is recorded and starts where the first one ended.
    second, report = run_vee_since_last(
        store, engine, clock=clock, history_days=7, overlap=timedelta(0)
    )
    assert report is None
    assert second.received_since == first.received_until
    assert (second.intervals, second.window_start) == (0, None)
    # Readings of day 10 arrive: only they are validated, not days 1-3 again.
    load(store, 10, 1)
    third, report = run_vee_since_last(
        store, engine, clock=clock, history_days=7, overlap=timedelta(0)
    )
    assert report is not None
    assert third.intervals == 24
    assert (third.window_start.date(), third.window_end) == (t(10).date(), t(11))  # type: ignore[union-attr]
    assert [r.id for r in vee_runs(engine)] == [third.id, second.id, first.id]


def test_the_overlap_takes_recent_readings_again_harmlessly(
    store: IntervalStore, engine: Engine
) -> None:
    store.register_meters([MeterRegistration("M1", HOUR)])
    load(store, 1, 2)
    clock = SimulatedClock(t(20))
    run_vee_since_last(store, engine, clock=clock, history_days=7)
    again, report = run_vee_since_last(store, engine, clock=clock, history_days=7)
    assert report is not None  # received a moment ago: within the overlap
    assert (report.written.inserted, report.written.changed) == (0, 0)
    assert again.intervals == 48


def test_a_failed_run_moves_no_mark(
    store: IntervalStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.register_meters([MeterRegistration("M1", HOUR)])
    load(store, 1, 2)
    clock = SimulatedClock(t(20))
    first, _ = run_vee_since_last(store, engine, clock=clock, history_days=7, overlap=timedelta(0))
    load(store, 10, 1)

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("the interval store went away")

    monkeypatch.setattr(run_log, "run_vee", broken)
    with pytest.raises(StoreError):
        run_vee_since_last(store, engine, clock=clock, history_days=7, overlap=timedelta(0))
    failed = vee_runs(engine)[0]
    assert failed.status == "failed"
    assert "went away" in (failed.error or "")
    monkeypatch.setattr(run_log, "run_vee", run_vee)
    retry, _ = run_vee_since_last(store, engine, clock=clock, history_days=7, overlap=timedelta(0))
    assert retry.received_since == first.received_until
    assert retry.intervals == 24


def test_vee_run_command_without_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["mdm", "add-meter", "M1", "--interval", "3600"]).exit_code == 0
    csv = tmp_path / "reads.csv"
    rows = [
        f"M1,{A},{datetime.fromtimestamp(int(e), UTC).isoformat()},{100 + k % 24}"
        for k, e in enumerate(hours(1, 2))
    ]
    csv.write_text("meter,channel,interval_end,value\n" + "\n".join(rows) + "\n")
    assert runner.invoke(app, ["import", "csv", str(csv)]).exit_code == 0
    result = runner.invoke(app, ["vee", "run"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert (first["status"], first["intervals"], first["report"]["intervals"]) == (
        "succeeded",
        48,
        48,
    )
    result = runner.invoke(app, ["vee", "run", "--from", "2024-01-01"])
    assert isinstance(result.exception, InvalidInputError)
    assert "--to" in str(result.exception)


# -- edits ---------------------------------------------------------------------------------


def validated(store: IntervalStore) -> tuple[np.ndarray, datetime]:
    store.register_meters([MeterRegistration("M1", HOUR)])
    ends = load(store, 1, 10)
    run_vee(store, t(9), t(10), as_of=t(11), history_days=7)
    return ends, datetime.fromtimestamp(int(ends[24 * 8 + 5]), UTC)


def edit(store: IntervalStore, engine: Engine, when: datetime, value: float = 42.0) -> None:
    edit_intervals(store, engine, meter="M1", channel=A, interval_ends=[when], values=[value],
                   actor="alice", reason="customer read", at=t(12))  # fmt: skip


def test_an_edit_is_audited_then_applied(store: IntervalStore, engine: Engine) -> None:
    _, when = validated(store)
    edit(store, engine, when)
    assert store.validated_history("M1", A, when)[-1].value == 42.0
    with Session(engine) as session:
        (entry,) = entries(session, "interval")
        (state,) = session.scalars(select(IntervalEdit)).all()
    assert (entry.actor, entry.reason, entry.after["value"]) == ("alice", "customer read", 42.0)
    assert entry.before["value"] == 150.0  # 05:00-06:00 is the 6th hour: 100 + 5 * 10
    assert (state.status, state.audit_id) == ("applied", entry.id)


def test_a_refused_interval_write_leaves_the_edit_failed_and_audited(
    store: IntervalStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, when = validated(store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "write_validated", refuse)
    with pytest.raises(StoreError, match="disk full"):
        edit(store, engine, when)
    assert store.validated_history("M1", A, when)[-1].value == 150.0
    with Session(engine) as session:
        actions = [(e.action, e.reason) for e in entries(session, "interval")]
        (state,) = session.scalars(select(IntervalEdit)).all()
    assert actions[0] == ("edit", "customer read")
    assert actions[1][0] == "edit-failed"
    assert "disk full" in actions[1][1]
    assert state.status == "failed"


class Crash(BaseException):
    """The process dies here: nothing after it runs, no handler catches it."""


def test_a_crash_before_the_interval_write_is_settled_as_not_applied(
    store: IntervalStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, when = validated(store)

    def die(*args: object, **kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(store, "write_validated", die)
    with pytest.raises(Crash):
        edit(store, engine, when)
    monkeypatch.undo()
    (pending,) = pending_edits(engine)
    # Within the grace period the edit may still be on its way: left alone.
    assert reconcile_edits(store, engine, at=t(12) + timedelta(minutes=1)).failed == []
    settled = reconcile_edits(store, engine, at=t(12) + timedelta(hours=1))
    assert (settled.applied, settled.failed) == ([], [pending.id])
    assert store.validated_history("M1", A, when)[-1].value == 150.0
    with Session(engine) as session:
        assert [e.action for e in entries(session, "interval")] == ["edit", "edit-abandoned"]
    assert pending_edits(engine) == []


def test_a_crash_after_the_interval_write_is_settled_as_applied(
    store: IntervalStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, when = validated(store)
    settle = editing._settle

    def die_before_marking(*args: object, **kwargs: object) -> None:
        if kwargs.get("status") == "applied":
            raise Crash
        settle(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(editing, "_settle", die_before_marking)
    with pytest.raises(Crash):
        edit(store, engine, when)
    monkeypatch.undo()
    (pending,) = pending_edits(engine)
    assert store.validated_history("M1", A, when)[-1].value == 42.0  # written, not yet marked
    settled = reconcile_edits(store, engine, at=t(13))
    assert settled.applied == [pending.id]
    with Session(engine) as session:
        assert [e.action for e in entries(session, "interval")] == ["edit"]
        (state,) = session.scalars(select(IntervalEdit)).all()
    assert state.status == "applied"


def test_a_killed_edit_process_is_reconciled(tmp_path: Path, engine: Engine) -> None:
    """A real process writes the interval and dies before marking the edit applied."""
    path = tmp_path / "intervals.duckdb"
    store = DuckDBIntervalStore(path)
    _, when = validated(store)
    store.close()
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime, timezone
        from sqlalchemy import create_engine
        from meterstack.mdm.intervals import DuckDBIntervalStore
        from meterstack.mdm.vee import edit_intervals

        store = DuckDBIntervalStore({str(path)!r})
        write = store.write_validated

        def write_then_die(*args, **kwargs):
            write(*args, **kwargs)
            os._exit(3)

        store.write_validated = write_then_die
        edit_intervals(
            store, create_engine({f"sqlite:///{tmp_path / 'op.db'}"!r}), meter="M1",
            channel="{A}", interval_ends=[datetime.fromtimestamp({int(when.timestamp())},
            timezone.utc)], values=[42.0], actor="alice", reason="meter swap",
            at=datetime(2024, 1, 12, tzinfo=timezone.utc),
        )
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, timeout=120,
        text=True, check=False, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert len(pending_edits(engine)) == 1
    store = DuckDBIntervalStore(path)
    try:
        assert len(reconcile_edits(store, engine, at=t(13)).applied) == 1
        history = store.validated_history("M1", A, when)
        assert (history[-1].value, history[-1].method) == (42.0, Method.EDIT)
    finally:
        store.close()


def test_vee_edit_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["mdm", "add-meter", "M1", "--interval", "3600"]).exit_code == 0
    csv = tmp_path / "reads.csv"
    rows = [
        f"M1,{A},{datetime.fromtimestamp(int(e), UTC).isoformat()},{100 + k % 24}"
        for k, e in enumerate(hours(1, 2))
    ]
    csv.write_text("meter,channel,interval_end,value\n" + "\n".join(rows) + "\n")
    assert runner.invoke(app, ["import", "csv", str(csv)]).exit_code == 0
    run = ["vee", "run", "--from", "2024-01-01", "--to", "2024-01-03"]
    assert runner.invoke(app, run).exit_code == 0
    command = ["vee", "edit", "--meter", "M1", "--channel", A, "--at", "2024-01-01T06:00:00Z",
               "--value", "42.5", "--reason", "customer read", "--user", "alice"]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["before"]["value"] == 105.0  # the 6th hour: 100 + 5
    assert (summary["after"]["value"], summary["status"]) == (42.5, "applied")
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'operational.db'}")
    with Session(engine) as session:
        (entry,) = entries(session, "interval")
    assert (entry.actor, entry.reason, entry.before["value"], entry.after["value"]) == (
        "alice",
        "customer read",
        105.0,
        42.5,
    )
    # An interval VEE never validated cannot be edited: status 2, the place named.
    missing = [*command[:7], "2023-06-01T06:00:00Z", *command[8:]]
    done = subprocess.run(
        [sys.executable, "-c", "from meterstack.cli import main; main()", *missing],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
        env={**os.environ, "METERSTACK_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert done.returncode == 2
    assert "2023-06-01" in done.stderr
    assert "next:" in done.stderr
    # No reason: a usage error before anything is written.
    result = runner.invoke(app, [*command[:-4], "--user", "alice"])
    assert result.exit_code == 2
    with Session(engine) as session:
        assert len(entries(session, "interval")) == 1


def test_an_edit_needs_who_and_why(store: IntervalStore, engine: Engine) -> None:
    _, when = validated(store)
    with pytest.raises(InvalidInputError, match="reason"):
        edit_intervals(store, engine, meter="M1", channel=A, interval_ends=[when],
                       values=[1.0], actor="alice", reason=" ", at=t(12))  # fmt: skip
    with pytest.raises(InvalidInputError, match="OBIS"):
        edit_intervals(store, engine, meter="M1", channel="not-obis", interval_ends=[when],
                       values=[1.0], actor="alice", reason="r", at=t(12))  # fmt: skip
    assert pending_edits(engine) == []
