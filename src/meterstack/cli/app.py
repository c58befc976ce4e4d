"""The application object and entry point of the ``meterstack`` command."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from meterstack import __version__
from meterstack.core.errors import MeterstackError

app = typer.Typer(
    name="meterstack",
    help="Smart electricity metering end to end: meters, link, head-end and back office.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meterstack {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Smart electricity metering end to end."""


def main() -> None:
    """Entry point: run the app; turn our errors into a message, a next step, and status 2."""
    try:
        app()
    except MeterstackError as exc:
        _err.print(f"[bold red]error:[/] {exc}")
        if exc.hint:
            _err.print(f"[yellow]next:[/] {exc.hint}")
        sys.exit(2)
