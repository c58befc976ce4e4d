"""``meterstack demo``: a simulated fleet run through the meter model in accelerated time."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meterstack.cli.app import app
from meterstack.core.config import load_settings
from meterstack.core.errors import InvalidInputError
from meterstack.core.time import zone
from meterstack.sim.fleet import FleetSummary, default_workers, run_fleet
from meterstack.sim.loadshapes import generate_load_shapes
from meterstack.sim.scenario import plan_fleet


@app.command()
def demo(
    meters: Annotated[
        int | None,
        typer.Option("--meters", "-n", min=1, help="Meters in the fleet [default: 200]."),
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", "-d", min=1, help="Days to simulate [default: 31].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the simulation [default: 2024].")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First local day, YYYY-MM-DD [default: 2024-01-01].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes [default: the CPUs available].")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the meters' non-volatile stores here (default: a temporary one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="A meterstack TOML file.")] = None,
) -> None:
    """Run a simulated fleet of meters: prepaid top-ups, outages, tampering, in accelerated time."""
    settings = load_settings(config)
    meters = meters or settings.demo.meters
    days = days or settings.demo.days
    seed = settings.demo.seed if seed is None else seed
    first_day = _parse_day(start or settings.demo.start)
    workers = workers or default_workers()
    tz = zone(settings.timezone)
    begin = datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz)
    console = Console(stderr=as_json)

    started = time.perf_counter()
    with console.status(f"Generating load shapes for {meters} meters x {days} days..."):
        shapes = generate_load_shapes(meters, begin, days, seed=seed, timezone=settings.timezone)
        plan = plan_fleet(shapes, seed=seed, timezone=settings.timezone)
    generated_s = time.perf_counter() - started

    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("meter-intervals"),
        TimeElapsedColumn(),
    )
    total = shapes.n_meters * shapes.n_intervals
    with Progress(*columns, console=console, transient=as_json) as bar:
        task = bar.add_task("simulating", total=total)
        per_chunk = max(1, shapes.n_meters // min(workers, shapes.n_meters))
        summary = run_fleet(
            shapes,
            plan,
            workers=workers,
            state_dir=state_dir,
            progress=lambda intervals: bar.advance(task, intervals * per_chunk),
        )
        bar.update(task, completed=total)

    if as_json:
        document = summary.to_json()
        document["generation_s"] = round(generated_s, 3)
        document["workers"] = workers
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_summary(
            console,
            summary,
            days=days,
            generated_s=generated_s,
            workers=workers,
            currency=settings.currency,
        )
    if summary.profile_mismatches or summary.restore_mismatches:
        raise typer.Exit(1)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError("start", text, "a day as YYYY-MM-DD") from exc


def _print_summary(
    console: Console,
    summary: FleetSummary,
    days: int,
    generated_s: float,
    workers: int,
    currency: str,
) -> None:
    overview = Table(
        title=f"meterstack demo: {summary.meters} meters, {days} days", show_header=False
    )
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_row("meters (prepaid)", f"{summary.meters} ({summary.prepaid})")
    overview.add_row("energy imported", f"{summary.import_kwh:,.1f} kWh")
    overview.add_row("energy exported", f"{summary.export_kwh:,.1f} kWh")
    overview.add_row("meter steps", f"{summary.steps:,}")
    overview.add_row("alarms pushed", f"{summary.alarms:,}")
    overview.add_row("top-ups", f"{summary.top_ups:,} for {summary.purchased:,.2f} {currency}")
    overview.add_row("credit left on meters", f"{summary.remaining_credit:,.2f} {currency}")
    overview.add_row("debt on meters", f"{summary.debt:,.2f} {currency}")
    overview.add_row("emergency credit taken", str(summary.emergency_credit_taken))
    overview.add_row("supplies off at the end", str(summary.disconnected_at_end))
    profile_ok = summary.profile_checked - summary.profile_mismatches
    restore_ok = summary.restored_checked - summary.restore_mismatches
    overview.add_row("profile sums = registers", f"{profile_ok}/{summary.profile_checked} meters")
    overview.add_row("restored image = live", f"{restore_ok}/{summary.restored_checked} meters")
    rate = summary.steps / summary.wall_s if summary.wall_s else 0.0
    overview.add_row("load shapes", f"{generated_s:.1f} s")
    overview.add_row(
        "simulation", f"{summary.wall_s:.1f} s, {rate:,.0f} steps/s, {workers} worker(s)"
    )
    console.print(overview)

    events = Table(title="events by kind")
    events.add_column("event")
    events.add_column("count", justify="right")
    for name, count in summary.events.most_common():
        events.add_row(name, f"{count:,}")
    disconnections = Table(title="disconnections by reason")
    disconnections.add_column("reason")
    disconnections.add_column("count", justify="right")
    for reason, count in summary.disconnections.most_common():
        disconnections.add_row(reason, f"{count:,}")
    console.print(events)
    console.print(disconnections)
