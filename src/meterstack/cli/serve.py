"""``meterstack serve`` (the REST API and dashboard with uvicorn) and ``meterstack user``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from meterstack.cli.app import app
from meterstack.core.config import Settings, load_settings
from meterstack.core.errors import InvalidInputError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from meterstack.analytics.network import NetworkModel
    from meterstack.mdm.intervals.base import IntervalStore
    from meterstack.vending import SupplyCommandPort

CONFIG = typer.Option(None, "--config", help="meterstack.toml to use")
NETWORK = typer.Option(
    None,
    "--network",
    help="network CSV (meter, transformer, feeder[, rating_kva, check_meter]) for the grid "
    "analytics",
)
user_app = typer.Typer(help="Logins of the REST API.", no_args_is_help=True)
app.add_typer(user_app, name="user")
_err = Console(stderr=True)


def run_server(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    *,
    engine: Engine | None = None,
    store: IntervalStore | None = None,
    command_port: SupplyCommandPort | None = None,
    log_level: str = "info",
    network: NetworkModel | None = None,
) -> None:
    """Serve the API and the dashboard until interrupted (``meterstack serve``, and
    ``meterstack demo --serve`` on the stores it has just filled)."""
    # Imported here so that other commands do not pay for the web stack's import.
    import uvicorn

    from meterstack.api import create_app

    if port is not None and not 1 <= port <= 65535:
        raise InvalidInputError("--port", port, "1 to 65535")
    application = create_app(
        settings, engine=engine, store=store, command_port=command_port, network=network
    )
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    _err.print(f"meterstack dashboard on http://{bind_host}:{bind_port} (API docs at /docs)")
    uvicorn.run(application, host=bind_host, port=bind_port, log_level=log_level)


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="address to listen on ([api] host)"),
    port: int | None = typer.Option(None, help="port ([api] port, default 8000)"),
    config: Path | None = CONFIG,
    log_level: str = typer.Option("info", help="uvicorn log level"),
    network: Path | None = NETWORK,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the dashboard at http://127.0.0.1:8000."""
    model = None
    if network is not None:
        from meterstack.analytics.network import load_network_csv

        try:
            model = load_network_csv(network)
        except InvalidInputError as exc:
            exc.hint = "fix the network CSV named above, or start without --network"
            raise
    run_server(load_settings(config), host, port, log_level=log_level, network=model)


@user_app.command("add")
def add_user(
    username: str = typer.Argument(..., help="login name"),
    role: str = typer.Option("admin", help="admin, operator, vendor or customer"),
    customer_id: int | None = typer.Option(None, help="the customer (role customer)"),
    vendor_id: int | None = typer.Option(None, help="the vendor (role vendor)"),
    password_env: str = typer.Option(
        "METERSTACK_PASSWORD", help="environment variable holding the password"
    ),
    config: Path | None = CONFIG,
) -> None:
    """Add a login. The password is read from an environment variable, or asked for."""
    from meterstack.api import create_user
    from meterstack.mdm.stores import open_operational

    password = os.environ.get(password_env) or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    settings = load_settings(config)
    user_id = create_user(
        open_operational(settings),
        username,
        password,
        role,
        customer_id=customer_id,
        vendor_id=vendor_id,
    )
    typer.echo(f"user {username} ({role}) has id {user_id}")
