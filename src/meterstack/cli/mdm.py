"""``meterstack vee``, ``meterstack export``, ``meterstack import`` and ``meterstack mdm``."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer
from rich.console import Console
from rich.progress import Progress

from meterstack.cli.app import app
from meterstack.core.config import load_settings
from meterstack.core.errors import InvalidInputError
from meterstack.core.time import SystemClock

if TYPE_CHECKING:
    from meterstack.mdm.stores import ImportReport

vee_app = typer.Typer(
    help="Validation, estimation and editing of interval data.", no_args_is_help=True
)
export_app = typer.Typer(help="Export meter data.", no_args_is_help=True)
import_app = typer.Typer(help="Import meter data.", no_args_is_help=True)
mdm_app = typer.Typer(help="Meter data management: meters, gaps, archives.", no_args_is_help=True)
app.add_typer(vee_app, name="vee")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(mdm_app, name="mdm")
_err = Console(stderr=True)

CONFIG = typer.Option(None, "--config", help="meterstack.toml to use")


def _when(text: str, field: str) -> datetime:
    """A date (local midnight UTC) or an ISO time with offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(field, text, "expected YYYY-MM-DD or an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInputError(field, text, "give the UTC offset (e.g. 2024-01-01T00:00:00Z)")
    return value.astimezone(UTC)


def _report(report: ImportReport, path: Path) -> None:
    result = report.result
    summary = {
        "file": str(path),
        "inserted": result.inserted,
        "duplicates": result.duplicates,
        "revisions": result.revisions,
        "rejected": len(report.rejected),
    }
    typer.echo(orjson.dumps(summary).decode())
    for place, reason in report.rejected[:40]:
        _err.print(f"[yellow]rejected[/] {place}: {reason}")
    if len(report.rejected) > 40:
        _err.print(f"... {len(report.rejected) - 40} more rejected")


@vee_app.command("run")
def vee_run(
    start: str | None = typer.Option(None, "--from", help="first day (YYYY-MM-DD) or time"),
    end: str | None = typer.Option(None, "--to", help="end (exclusive day) or time"),
    meter: list[str] = typer.Option(None, "--meter", help="only these meters"),  # noqa: B008
    config: Path | None = CONFIG,
) -> None:
    """Validate and estimate intervals, writing the validated version; the run is recorded.

    Without --from/--to: everything received since the last successful run without dates.
    Edits left pending by a stopped `vee edit` are settled first.
    """
    from meterstack.mdm.stores import open_interval_store, open_operational, sync_meters
    from meterstack.mdm.vee.editing import reconcile_edits
    from meterstack.mdm.vee.run_log import run_vee_recorded, run_vee_since_last

    if (start is None) != (end is None):
        missing = "--to" if end is None else "--from"
        raise InvalidInputError(missing, None, "give both --from and --to, or neither")
    settings = load_settings(config)
    engine = open_operational(settings)
    store = open_interval_store(settings)
    clock = SystemClock()
    try:
        sync_meters(engine, store)
        settled = reconcile_edits(store, engine, at=clock.now())
        with Progress(console=_err, transient=True) as progress:
            task = progress.add_task("VEE", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            if start is None or end is None:
                record, report = run_vee_since_last(
                    store, engine, clock=clock, history_days=settings.mdm.vee_history_days,
                    meters=meter or None, progress=advance,
                )  # fmt: skip
            else:
                record, report = run_vee_recorded(
                    store, engine, _when(start, "from"), _when(end, "to"), clock=clock,
                    history_days=settings.mdm.vee_history_days, meters=meter or None,
                    progress=advance,
                )  # fmt: skip
        summary = {
            **record.as_dict(),
            "report": None if report is None else report.as_dict(),
            "edits_settled": {"applied": settled.applied, "failed": settled.failed},
        }
        typer.echo(orjson.dumps(summary).decode())
    finally:
        store.close()


@vee_app.command("edit")
def vee_edit(
    meter: str = typer.Option(..., "--meter", help="meter id"),
    channel: str = typer.Option(..., "--channel", help="OBIS code, e.g. 1.0.1.8.0.255"),
    at: str = typer.Option(..., "--at", help="the interval's end, ISO 8601 with its offset"),
    value: float = typer.Option(..., "--value", help="the new value, in the channel's unit"),
    reason: str = typer.Option(..., "--reason", help="why the value is changed"),
    user: str = typer.Option(..., "--user", help="who changes it"),
    final: bool = typer.Option(False, "--final", help="quality F: no actual will replace it"),
    config: Path | None = CONFIG,
) -> None:
    """Set one validated interval by hand; the audit log records who, when, why, before
    and after."""
    from meterstack.mdm.stores import open_interval_store, open_operational, sync_meters
    from meterstack.mdm.vee.editing import edit_intervals, reconcile_edits

    settings = load_settings(config)
    engine = open_operational(settings)
    store = open_interval_store(settings)
    clock = SystemClock()
    try:
        sync_meters(engine, store)
        reconcile_edits(store, engine, at=clock.now())
        interval_end = _when(at, "at")
        result = edit_intervals(
            store, engine, meter=meter, channel=channel, interval_ends=[interval_end],
            values=[value], actor=user, reason=reason, at=clock.now(), final=final,
        )  # fmt: skip
    finally:
        store.close()
    summary = {
        "edit": result.edit_ids[0],
        "meter": meter,
        "channel": channel,
        "interval_end": interval_end.isoformat(),
        "user": user,
        "reason": reason,
        "before": result.before[0],
        "after": {"value": value, "quality": "F" if final else "S", "method": "EDIT"},
        "status": "applied",
    }
    typer.echo(orjson.dumps(summary).decode())


@export_app.command("greenbutton")
def export_greenbutton_command(
    meter: str = typer.Option(..., "--meter", help="meter id"),
    start: str = typer.Option(..., "--from", help="first day (YYYY-MM-DD) or time"),
    end: str = typer.Option(..., "--to", help="end (exclusive day) or time"),
    raw: bool = typer.Option(False, "--raw", help="export raw readings, not validated ones"),
    config: Path | None = CONFIG,
) -> None:
    """Write a meter's usage as a Green Button (ESPI Atom) feed to standard output."""
    from meterstack.mdm.greenbutton.export import export_greenbutton
    from meterstack.mdm.stores import open_interval_store, open_operational, sync_meters

    settings = load_settings(config)
    store = open_interval_store(settings)
    try:
        sync_meters(open_operational(settings), store)
        body = export_greenbutton(
            store, meter, _when(start, "from"), _when(end, "to"),
            updated=datetime.now(UTC), source="raw" if raw else "validated",
        )  # fmt: skip
    finally:
        store.close()
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


@import_app.command("greenbutton")
def import_greenbutton_command(
    file: Path = typer.Argument(..., help="Green Button XML file"),  # noqa: B008
    meter: str | None = typer.Option(None, "--meter", help="meter id for the feed's UsagePoint"),
    create_meters: bool = typer.Option(False, "--create-meters", help="register unknown meters"),
    config: Path | None = CONFIG,
) -> None:
    """Import a Green Button file's interval readings."""
    from meterstack.mdm.stores import (
        import_greenbutton,
        open_interval_store,
        open_operational,
        sync_meters,
    )

    settings = load_settings(config)
    engine = open_operational(settings)
    store = open_interval_store(settings)
    try:
        sync_meters(engine, store)
        report = import_greenbutton(engine, store, file, meter=meter, create_meters=create_meters)
    finally:
        store.close()
    _report(report, file)


@import_app.command("csv")
def import_csv_command(
    file: Path = typer.Argument(..., help="CSV: meter,channel,interval_end,value"),  # noqa: B008
    config: Path | None = CONFIG,
) -> None:
    """Import interval readings from a CSV file."""
    from meterstack.mdm.stores import import_csv, open_interval_store, open_operational, sync_meters

    settings = load_settings(config)
    store = open_interval_store(settings)
    try:
        sync_meters(open_operational(settings), store)
        report = import_csv(store, file)
    finally:
        store.close()
    _report(report, file)


@mdm_app.command("add-meter")
def add_meter_command(
    meter: str = typer.Argument(..., help="meter id (serial number)"),
    interval: int = typer.Option(1800, "--interval", help="load-profile period [s]"),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone of the site"),
    generation: bool = typer.Option(False, "--generation", help="the site exports (PV)"),
    config: Path | None = CONFIG,
) -> None:
    """Register a meter."""
    from meterstack.mdm.intervals.base import MeterRegistration
    from meterstack.mdm.stores import add_meter, open_interval_store, open_operational

    settings = load_settings(config)
    store = open_interval_store(settings)
    try:
        add_meter(
            open_operational(settings),
            store,
            MeterRegistration(meter, interval, timezone, generation),
        )
    finally:
        store.close()
    typer.echo(f"meter {meter} registered")


@mdm_app.command("gaps")
def gaps_command(
    start: str = typer.Option(..., "--from", help="first day or time"),
    end: str = typer.Option(..., "--to", help="end day or time"),
    config: Path | None = CONFIG,
) -> None:
    """List missing reads per meter (JSON lines) for the head-end to read again."""
    from meterstack.mdm.gaps import missing_reads
    from meterstack.mdm.stores import open_interval_store, open_operational, sync_meters

    settings = load_settings(config)
    store = open_interval_store(settings)
    try:
        sync_meters(open_operational(settings), store)
        table = missing_reads(
            store, _when(start, "from"), _when(end, "to"), as_of=datetime.now(UTC)
        )
    finally:
        store.close()
    for row in table.to_pylist():
        typer.echo(orjson.dumps(row).decode())


@mdm_app.command("archive")
def archive_command(
    month: str = typer.Option(..., "--month", help="YYYY-MM, a closed month"),
    config: Path | None = CONFIG,
) -> None:
    """Export a closed month's intervals to Parquet under the archive directory."""
    from meterstack.mdm.stores import open_interval_store

    settings = load_settings(config)
    try:
        year, number = (int(x) for x in month.split("-"))
    except ValueError:
        raise InvalidInputError("month", month, "expected YYYY-MM") from None
    store = open_interval_store(settings)
    try:
        paths = store.export_month(
            year,
            number,
            settings.mdm.archive_dir or settings.data_dir / "archive",
            datetime.now(UTC),
        )
    finally:
        store.close()
    for path in paths:
        typer.echo(str(path))
