"""``meterstack tariff list|show`` and ``meterstack bill``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from meterstack.billing.bill import Bill, bills_from_rating, summary_json
from meterstack.billing.load_csv import read_interval_csv
from meterstack.cli.app import app
from meterstack.core.errors import ConfigError
from meterstack.core.time import zone
from meterstack.tariff.errors import LoadDataError, TariffError
from meterstack.tariff.model import Tariff
from meterstack.tariff.pysam_compat import rate_pysam
from meterstack.tariff.rating import rate
from meterstack.tariff.urdb import load_urdb
from meterstack.tariff.yaml_format import dump_tariff, list_templates, load_tariff, load_template

tariff_app = typer.Typer(help="Tariff templates and files.", no_args_is_help=True)
app.add_typer(tariff_app, name="tariff")
_out = Console()


def resolve_tariff(name_or_file: str, timezone: str | None = None) -> Tariff:
    """A YAML file, a URDB JSON file, or the name of a shipped template.

    ``timezone`` is the IANA zone of a URDB rate (URDB records none; default UTC). A YAML
    tariff or a template names its own zone, so giving one for them is refused.
    """
    path = Path(name_or_file)
    if path.suffix.lower() == ".json":
        if timezone is not None:
            try:
                zone(timezone)
            except ConfigError as exc:
                raise TariffError("--timezone", timezone, "not an IANA time zone") from exc
        return load_urdb(path, timezone or "UTC")
    if timezone is not None:
        raise TariffError(
            "--timezone",
            timezone,
            "only for URDB files: a YAML tariff or template sets its own 'timezone'",
        )
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return load_tariff(path)
    return load_template(name_or_file)


@tariff_app.command("list")
def list_command() -> None:
    """List the shipped tariff templates."""
    table = Table("name", "description")
    for name in list_templates():
        table.add_row(name, load_template(name).description)
    _out.print(table)


@tariff_app.command("show")
def show_command(name: str = typer.Argument(..., help="template name or tariff file")) -> None:
    """Print a tariff as YAML."""
    typer.echo(dump_tariff(resolve_tariff(name)), nl=False)


@app.command("bill")
def bill_command(
    tariff: str = typer.Option(..., "--tariff", help="tariff file (YAML, URDB JSON) or template"),
    load: Path = typer.Option(..., "--load", help="CSV timestamp,kwh[,kvarh] of imported energy"),  # noqa: B008
    export: Path | None = typer.Option(None, "--export", help="CSV timestamp,kwh of exports"),  # noqa: B008
    as_json: bool = typer.Option(False, "--json", help="print the monthly summary as JSON"),
    pysam_compatible: bool = typer.Option(
        False, "--pysam-compatible", help="rate by PySAM Utilityrate5's rules (365-day year)"
    ),
    timezone: str | None = typer.Option(
        None,
        "--timezone",
        help="IANA time zone of a URDB tariff (URDB records none; default UTC)",
    ),
    coarse_demand: bool = typer.Option(
        False,
        "--coarse-demand",
        help="estimate demand over the data's step when it is longer than the tariff's window",
    ),
) -> None:
    """Bill interval data under a tariff, month by month.

    Load times without a UTC offset are read in the tariff's zone (URDB: --timezone, UTC).
    """
    chosen = resolve_tariff(tariff, timezone)
    series = read_interval_csv(load, chosen.timezone)
    exp = None
    if export is not None:
        exp_series = read_interval_csv(export, chosen.timezone)
        if not np.array_equal(exp_series.interval_end, series.interval_end):
            raise LoadDataError(str(export), None, "timestamps differ from those of --load")
        exp = exp_series.kwh[None, :]
    bills: list[Bill]
    if pysam_compatible:
        bills = bills_from_rating(rate_pysam(chosen, series.kwh[None, :], exp))
    else:
        if chosen.energy.price_series:
            raise TariffError("energy.price_series", True, "the bill command has no price series")
        kvar = series.kvarh[None, :] if series.kvarh is not None else None
        result = rate(
            chosen, series.interval_end, series.kwh[None, :], exp, kvar, coarse_demand=coarse_demand
        )
        bills = bills_from_rating(result)
    if as_json:
        typer.echo(summary_json(bills))
        return
    for bill in bills:
        table = Table("line", "quantity", "unit", "amount", "explanation", title=bill.month)
        for line in bill.lines:
            table.add_row(
                line.description, str(line.quantity), line.unit, str(line.amount), line.explanation
            )
        table.add_row("total", "", "", str(bill.total), "")
        _out.print(table)
    _out.print(f"total {sum(b.total for b in bills)} {chosen.currency}")
