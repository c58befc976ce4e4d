"""``meterstack analytics run``: grid analytics over the embedded stores."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from meterstack.cli.app import app
from meterstack.core.config import load_settings
from meterstack.core.errors import InvalidInputError

analytics_app = typer.Typer(
    help="Grid analytics: outages, theft and losses, power-quality compliance.",
    no_args_is_help=True,
)
app.add_typer(analytics_app, name="analytics")
_out = Console()
DEFAULT_DAYS = 28
NETWORK = typer.Option(
    ..., "--network", help="network CSV: meter, transformer, feeder[, rating_kva, check_meter]"
)
CONFIG = typer.Option(None, "--config", help="meterstack.toml to use")


def _when(text: str | None, option: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 time with its offset."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        error = InvalidInputError(option, text, "expected YYYY-MM-DD or an ISO 8601 time")
        error.hint = f"give {option} like 2026-03-01 or 2026-03-01T00:00:00Z"
        raise error from None
    if value.tzinfo is None:
        error = InvalidInputError(option, text, "the time needs its UTC offset")
        error.hint = f"add the offset, e.g. {option} {text}Z"
        raise error
    return value.astimezone(UTC)


def _print(report: dict[str, Any]) -> None:
    period, indices = report["period"], report["indices"]
    _out.print(
        f"[bold]grid analytics[/] {period['start']} to {period['end']}: "
        f"{report['network']['meters']} meters on {report['network']['transformers']} "
        f"transformers"
    )
    _out.print(
        f"SAIFI {indices['saifi']}  SAIDI {indices['saidi_min']} min  "
        f"CAIDI {indices['caidi_min']} min  MAIFI {indices['maifi']}"
    )
    outages = Table("id", "level", "transformer", "feeder", "start", "end", "customers", "cust-min")
    for o in report["outages"][:20]:
        outages.add_row(
            str(o["id"]), o["level"], o["transformer"], o["feeder"], o["start"],
            o["end"] or "open", str(o["customers"]), str(o["customer_minutes"]),
        )  # fmt: skip
    _out.print(f"outages: {len(report['outages'])}")
    _out.print(outages)
    suspects = Table("rank", "meter", "transformer", "score", "unrecorded", "reasons")
    for s in report["inspection"][:20]:
        suspects.add_row(
            str(s["rank"]), s["serial"], s["transformer"], str(s["score"]),
            f"{(s['stolen_share'] or 0):.0%}", "; ".join(s["reasons"]),
        )  # fmt: skip
    _out.print(f"inspection list: {len(report['inspection'])}")
    _out.print(suspects)
    pq = report["pq"]
    _out.print(
        f"EN 50160 non-compliant meters: {len(pq['non_compliant'])}; "
        f"overloaded transformers: {len(pq['overloaded'])}"
    )
    for note in report["notes"]:
        _out.print(f"[yellow]note:[/] {note}")


@analytics_app.command("run")
def analytics_run(
    network: Path = NETWORK,
    start: str | None = typer.Option(None, "--from", help="start (YYYY-MM-DD or ISO time)"),
    end: str | None = typer.Option(None, "--to", help="end (YYYY-MM-DD or ISO time); default now"),
    as_json: bool = typer.Option(False, "--json", help="print the report as one JSON object"),
    config: Path | None = CONFIG,
) -> None:
    """Find outages (IEEE 1366 indices), rank theft suspects, check EN 50160 compliance and
    transformer loading over a period (default the last 28 days) of the stored data.

    The report is kept beside the stores; the dashboard's Grid page shows it.
    """
    from meterstack.analytics.from_store import assemble
    from meterstack.analytics.network import load_network_csv
    from meterstack.api.routes.analytics import save_report
    from meterstack.mdm.stores import open_interval_store, open_operational

    if not network.is_file():
        error = InvalidInputError("--network", str(network), "no such file")
        error.hint = "pass the network model as a CSV with columns meter, transformer, feeder"
        raise error
    try:
        model = load_network_csv(network)
    except InvalidInputError as exc:
        exc.hint = "fix the network CSV at the line named above and run again"
        raise
    period_end = _when(end, "--to") or datetime.now(UTC)
    period_start = _when(start, "--from") or period_end - timedelta(days=DEFAULT_DAYS)
    if period_end <= period_start:
        error = InvalidInputError("--to", period_end.isoformat(), "must be after --from")
        error.hint = "give --from before --to"
        raise error
    settings = load_settings(config)
    engine = open_operational(settings)
    store = open_interval_store(settings)
    try:
        # Stderr, so that --json output stays one clean JSON object on stdout.
        with Console(stderr=True).status(
            f"reading {model.n_meters} meters' data and analysing", spinner="dots"
        ):
            inputs = assemble(model, store, engine, start=period_start, end=period_end)
            report = inputs.analyse().to_dict()
    finally:
        store.close()
        engine.dispose()
    report["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report["generated_by"] = "cli"
    save_report(settings, report)
    if as_json:
        typer.echo(json.dumps(report, allow_nan=False))
    else:
        _print(report)
