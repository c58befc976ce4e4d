"""``meterstack demo``: the whole system on its embedded defaults.

A simulated fleet runs through the meter model in accelerated time, then through the link
and an in-process amqtt broker into the head-end and the MDM stores (SQLite, DuckDB); VEE
runs over the stored intervals, the postpaid meters are billed and the prepaid customers
buy tokens. ``--serve`` then serves the dashboard on the stores just filled.
"""

from __future__ import annotations

import json
import secrets
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from meterstack.cli.app import app
from meterstack.core.config import load_settings
from meterstack.core.errors import InvalidInputError
from meterstack.sim.fleet import default_workers
from meterstack.sim.system import (
    STAGES,
    SystemSummary,
    demo_settings,
    prepare_data_dir,
    run_system,
)

DEFAULT_DATA_DIR = Path(".meterstack") / "demo"


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
        str | None,
        typer.Option(
            help="First local day, YYYY-MM-DD [default: the --days days that end today]; "
            "give it to reproduce a run exactly."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes [default: the CPUs available].")
    ] = None,
    live_meters: Annotated[
        int | None,
        typer.Option(
            "--live-meters",
            min=0,
            help="Meters whose history goes through the live MQTT link; the rest is "
            "bulk-loaded into the interval store [default: all, at most 24].",
        ),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir", help="Where the demo's stores go; emptied and rebuilt on each run."
        ),
    ] = DEFAULT_DATA_DIR,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the meters' non-volatile stores here [default: DATA_DIR/meters]."),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the dashboard until Ctrl-C.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to serve on (with --serve).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to serve on (with --serve).")
    ] = 8000,
    admin_password: Annotated[
        str | None,
        typer.Option(
            "--admin-password",
            envvar="METERSTACK_DEMO_ADMIN_PASSWORD",
            help="Password of the dashboard's admin user [default: a random one, printed].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="A meterstack TOML file.")] = None,
) -> None:
    """Run the whole system on embedded defaults: a simulated fleet through link, head-end
    and MDM, VEE, bills and vends; with --serve, the dashboard at http://127.0.0.1:8000."""
    settings = load_settings(config)
    meters = meters or settings.demo.meters
    days = days or settings.demo.days
    seed = settings.demo.seed if seed is None else seed
    chosen = start or settings.demo.start
    first_day = _parse_day(chosen) if chosen else datetime.now(UTC).date() - timedelta(days=days)
    workers = workers or default_workers()
    if serve:
        _check_port_free(host, port)
    if live_meters is not None and live_meters > meters:
        raise InvalidInputError("--live-meters", live_meters, f"at most --meters ({meters})")
    settings = demo_settings(settings, prepare_data_dir(data_dir))
    console = Console(stderr=as_json)

    # The vending key is the one the served API uses (data_dir/secrets/vending.key by
    # default), so the demo's tokens and the dashboard's agree.
    from meterstack.api import create_user, vending_key_of  # the web stack: heavy
    from meterstack.sts import TokenIssuer

    issuer = TokenIssuer(vending_key_of(settings), timezone=settings.timezone)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=as_json) as bar:
        tasks: dict[str, TaskID] = {
            stage: bar.add_task(label, total=None, start=False) for stage, label in STAGES.items()
        }

        def progress(stage: str, done: int, total: int) -> None:
            task = tasks[stage]
            if not bar.tasks[task].started:
                bar.start_task(task)
            bar.update(task, completed=done, total=total)

        summary, engine, store = run_system(
            settings,
            meters=meters,
            days=days,
            seed=seed,
            first_day=first_day,
            workers=workers,
            issuer=issuer,
            live_meters=live_meters,
            state_dir=state_dir,
            progress=progress,
        )

    if as_json:
        document = summary.to_json()
        document["workers"] = workers
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_summary(console, summary, days=days, workers=workers, currency=settings.currency)
    fleet = summary.fleet
    healthy = (
        not fleet.profile_mismatches
        and not fleet.restore_mismatches
        and summary.link.intact
        and summary.vending.ledger_balanced
    )
    if not healthy:
        store.close()
        raise typer.Exit(1)
    if not serve:
        store.close()
        return
    password = admin_password or secrets.token_urlsafe(12)
    create_user(engine, "admin", password, "admin")
    url = f"http://{host}:{port}"
    console.print(
        f"[bold green]dashboard[/] {url}  user [bold]admin[/]  password [bold]{password}[/]"
        "  (Ctrl-C to stop)"
    )
    from meterstack.cli.serve import run_server

    try:
        run_server(
            settings,
            host,
            port,
            engine=engine,
            store=store,
            log_level="warning",
            network=summary.network,
        )
    finally:
        store.close()


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError("start", text, "a day as YYYY-MM-DD") from exc


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on before the long run starts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InvalidInputError(
                "--port", port, f"cannot listen on {host}:{port} ({exc.strerror}); choose another"
            ) from exc


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _print_summary(
    console: Console, summary: SystemSummary, days: int, workers: int, currency: str
) -> None:
    fleet, link, vee = summary.fleet, summary.link, summary.vee
    billing, vending = summary.billing, summary.vending
    seconds = summary.stage_seconds
    rate = fleet.steps / fleet.wall_s if fleet.wall_s else 0.0
    profile_ok = fleet.profile_checked - fleet.profile_mismatches
    restore_ok = fleet.restored_checked - fleet.restore_mismatches
    console.print(
        _table(
            f"1. fleet: {fleet.meters} meters, {days} days",
            [
                ("meters (prepaid)", f"{fleet.meters} ({fleet.prepaid})"),
                ("energy imported", f"{fleet.import_kwh:,.1f} kWh"),
                ("energy exported", f"{fleet.export_kwh:,.1f} kWh"),
                ("meter steps", f"{fleet.steps:,}"),
                ("alarms raised", f"{fleet.alarms:,}"),
                (
                    "top-ups on meters",
                    f"{fleet.top_ups:,} for {fleet.purchased:,.2f} {currency}",
                ),
                ("credit left on meters", f"{fleet.remaining_credit:,.2f} {currency}"),
                ("debt on meters", f"{fleet.debt:,.2f} {currency}"),
                ("emergency credit taken", str(fleet.emergency_credit_taken)),
                ("supplies off at the end", str(fleet.disconnected_at_end)),
                ("profile sums = registers", f"{profile_ok}/{fleet.profile_checked} meters"),
                ("restored image = live", f"{restore_ok}/{fleet.restored_checked} meters"),
                (
                    "simulation",
                    f"{seconds['fleet']:.1f} s, {rate:,.0f} steps/s, {workers} worker(s)",
                ),
            ],
        )
    )
    events = Table(title="events by kind", title_justify="left")
    events.add_column("event")
    events.add_column("count", justify="right")
    for name, count in fleet.events.most_common():
        events.add_row(name, f"{count:,}")
    disconnections = Table(title="disconnections by reason", title_justify="left")
    disconnections.add_column("reason")
    disconnections.add_column("count", justify="right")
    for reason, count in fleet.disconnections.most_common():
        disconnections.add_row(reason, f"{count:,}")
    console.print(events)
    console.print(disconnections)

    verdict = "[green]nothing lost, nothing duplicated[/]" if link.intact else "[red]MISMATCH[/]"
    console.print(
        _table(
            "2. link, head-end (amqtt broker in process) into MDM (SQLite + DuckDB)",
            [
                (
                    "through the live MQTT link",
                    f"{link.live_meters} meters, {link.frames_applied:,} frames, "
                    f"{link.live_seconds:.1f} s",
                ),
                (
                    "bulk-loaded (head-end's Arrow batches)",
                    f"{link.bulk_meters} meters, {link.bulk_seconds:.1f} s",
                ),
                ("alarms sent / stored", f"{link.alarms_sent:,} / {link.alarms_stored:,}"),
                ("re-deliveries suppressed", f"{link.redeliveries_suppressed:,}"),
                (
                    "interval rows stored / in meters",
                    f"{link.intervals_stored:,} / {link.intervals_expected:,}",
                ),
                (
                    "intervals lost / unexpected / differing",
                    f"{link.intervals_lost} / {link.intervals_unexpected} / "
                    f"{link.values_differing}",
                ),
                ("revisions", str(link.revisions)),
                (
                    "events stored / in meters",
                    f"{link.events_stored:,} / {link.events_expected:,}",
                ),
                ("register readings stored", f"{link.registers_stored:,}"),
                ("check", verdict),
            ],
        )
    )
    quality = ", ".join(f"{flag}: {count:,}" for flag, count in sorted(vee.quality.items()))
    console.print(
        _table(
            "3. VEE",
            [
                ("meters, channels", f"{vee.meters}, {vee.channels}"),
                ("validated intervals", f"{vee.intervals:,}"),
                ("actual / estimated / null", f"{vee.actual:,} / {vee.estimated:,} / {vee.null:,}"),
                ("by quality flag", quality or "-"),
                ("time", f"{seconds['vee']:.1f} s"),
            ],
        )
    )
    console.print(
        _table(
            "4. bills and vends",
            [
                (
                    f"bills ({billing.tariff})",
                    f"{billing.bills} for {billing.kwh:,.1f} kWh, "
                    f"{billing.total:,.2f} {billing.currency}",
                ),
                (
                    f"vends ({vending.tariff})",
                    f"{vending.vends} to {vending.customers} customers, {vending.tokens} tokens",
                ),
                (
                    "sold",
                    f"{vending.amount:,.2f} {vending.currency} for {vending.kwh:,.1f} kWh",
                ),
                (
                    "vendor float deposited / left",
                    f"{vending.float_deposited:,.2f} / {vending.float_left:,.2f}",
                ),
                ("repeated request id", "same token" if vending.replay_same_token else "NEW TOKEN"),
                (
                    "ledger",
                    f"{vending.ledger_accounts} accounts, sum {vending.ledger_sum}"
                    + (" (balanced)" if vending.ledger_balanced else " (UNBALANCED)"),
                ),
                ("time", f"{seconds['billing']:.1f} s"),
            ],
        )
    )
    console.print(
        f"stores in {summary.data_dir}: operational.db (SQLite), intervals.duckdb, headend.db, "
        f"network.csv ({summary.network.n_transformers} transformers); "
        f"total {sum(seconds.values()):.1f} s"
    )
