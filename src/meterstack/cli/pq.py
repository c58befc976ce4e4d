"""``meterstack pq``: power quality from waveform files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from meterstack.cli.app import app
from meterstack.metrology.record import WaveformError, WaveformRecord

pq = typer.Typer(
    help="Power quality from sampled waveforms (IEC 61000-4-30, IEC 61000-4-7, IEEE 1459).",
    no_args_is_help=True,
)
app.add_typer(pq, name="pq")


def _load(
    path: Path,
    fs: float | None,
    f0: int | None,
    start: datetime,
    dat: Path | None,
    side: str,
) -> WaveformRecord:
    from meterstack.metrology import read_comtrade, read_csv  # SciPy loads with the command

    suffix = path.suffix.lower()
    if side not in ("primary", "secondary"):
        raise WaveformError("--side", side, "primary or secondary")
    if suffix in {".cfg", ".cff"}:
        if dat is not None and suffix == ".cff":
            raise WaveformError("--dat", str(dat), "a .cff file holds its own data")
        return read_comtrade(path, dat, f0, side="primary" if side == "primary" else "secondary")
    if dat is not None:
        raise WaveformError("--dat", str(dat), "only a COMTRADE .cfg file takes a data file")
    if suffix in {".csv", ".txt"}:
        if fs is None:
            raise WaveformError("--fs", None, "a CSV file needs its sampling rate: pass --fs HZ")
        return read_csv(path, fs, f0 or 50, start)
    raise WaveformError(str(path), suffix, "expected a .csv file or a COMTRADE .cfg/.cff")


def _start(value: str | None) -> datetime:
    if value is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WaveformError("--start", value, "an ISO 8601 time such as 2024-05-01T10:00Z") from exc
    if parsed.tzinfo is None:
        raise WaveformError("--start", value, "give a time zone (e.g. Z for UTC)")
    return parsed.astimezone(UTC)


@pq.command("analyze")
def analyze_command(
    file: Annotated[
        Path, typer.Argument(help="CSV (va,vb,vc,ia,ib,ic or v,i) or COMTRADE .cfg/.cff")
    ],
    *,
    dat: Annotated[
        Path | None,
        typer.Option("--dat", help="Data file of a COMTRADE .cfg (default: the .dat beside it)."),
    ] = None,
    side: Annotated[
        str,
        typer.Option(
            "--side",
            help="COMTRADE values on the primary (default) or secondary side of the "
            "instrument transformers.",
        ),
    ] = "primary",
    fs: Annotated[
        float | None, typer.Option("--fs", help="Sampling rate of a CSV file [Hz].")
    ] = None,
    f0: Annotated[
        int | None,
        typer.Option("--f0", help="Nominal frequency, 50 or 60 (CSV default 50)."),
    ] = None,
    declared_voltage: Annotated[
        float | None,
        typer.Option("--declared-voltage", help="Declared voltage for dips and swells [V]."),
    ] = None,
    interruption_pct: Annotated[
        float,
        typer.Option("--interruption-pct", help="Interruption threshold, 5 or 10 [%]."),
    ] = 5.0,
    start: Annotated[
        str | None,
        typer.Option("--start", help="UTC time of a CSV file's first sample (ISO 8601)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Analyse a waveform record: RMS, IEEE 1459 powers, harmonics, unbalance, events."""
    from meterstack.metrology import analyze, summarize
    from meterstack.metrology.events import EventThresholds

    if f0 is not None and f0 not in (50, 60):
        raise WaveformError("--f0", f0, "the nominal frequency must be 50 or 60 Hz")
    if not file.is_file():
        raise WaveformError(str(file), "missing", "no such file")
    record = _load(file, fs, f0, _start(start), dat, side)
    analysis = analyze(
        record,
        declared_voltage_v=declared_voltage,
        thresholds=EventThresholds(interruption_pct=interruption_pct),
    )
    summary = summarize(analysis)
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
        return
    _print_table(summary)


def _print_table(summary: dict[str, object]) -> None:
    console = Console()
    table = Table(title="power quality (whole record)")
    table.add_column("quantity")
    table.add_column("value")
    for key in (
        "vrms", "irms", "p", "q1", "s", "s1", "sn", "n", "pf", "pf1",
        "thd_f_v", "thd_r_v", "thd_f_i", "frequency", "unbalance_iec_pct", "unbalance_nema_pct",
    ):  # fmt: skip
        table.add_row(key, json.dumps(summary.get(key)))
    if "total" in summary:
        table.add_row("total", json.dumps(summary["total"]))
    console.print(table)
    events = summary.get("events")
    if isinstance(events, list) and events:
        listing = Table(title="events")
        for column in ("kind", "start", "duration_s", "depth_pct"):
            listing.add_column(column)
        for event in events:
            listing.add_row(*(str(event[c]) for c in ("kind", "start", "duration_s", "depth_pct")))
        console.print(listing)
