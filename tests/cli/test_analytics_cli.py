"""``meterstack analytics run`` on the embedded stores, and ``serve --network``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.core.config import load_settings
from meterstack.core.errors import InvalidInputError
from meterstack.mdm.stores import open_interval_store, open_operational
from meterstack.sim.grid import GridScenario, generate_grid
from tests.analytics.test_from_store import write_scenario

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=8)


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[GridScenario, Path]:
    """A simulated grid in the embedded stores of a data directory, and its network CSV."""
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "data"))
    scenario = generate_grid(120, START, 8, seed=15, outages_per_week=5)
    settings = load_settings(None)
    engine = open_operational(settings)
    store = open_interval_store(settings)
    try:
        write_scenario(scenario, store, engine)
    finally:
        store.close()
        engine.dispose()
    csv = tmp_path / "network.csv"
    csv.write_text(scenario.network.to_csv())
    return scenario, csv


def test_run_prints_the_report_and_keeps_it(
    seeded: tuple[GridScenario, Path], tmp_path: Path
) -> None:
    scenario, csv = seeded
    net = scenario.network
    period = ["--from", "2026-03-02", "--to", END.isoformat()]
    result = CliRunner().invoke(app, ["analytics", "run", "--network", str(csv), *period, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["period"]["start"] == "2026-03-02T00:00:00Z"
    assert report["period"]["end"] == "2026-03-10T00:00:00Z"
    assert report["network"]["meters"] == 120
    for truth in scenario.outages:
        names = {net.transformers[t] for t in np.unique(net.meter_transformer[truth.meters])}
        starts = [
            datetime.fromisoformat(o["start"].replace("Z", "+00:00")).timestamp()
            for o in report["outages"]
            if o["transformer"] in names
        ]
        assert any(abs(s - truth.start) < 10 for s in starts)
    thieves = {net.meters[i] for i in scenario.thieves}
    listed = {row["serial"] for row in report["inspection"]}
    assert len(thieves & listed) >= 0.8 * len(thieves)
    saved = json.loads((tmp_path / "data" / "analytics" / "latest.json").read_text())
    assert saved["indices"] == report["indices"]

    table = CliRunner().invoke(app, ["analytics", "run", "--network", str(csv), *period])
    assert table.exit_code == 0, table.output
    assert "SAIFI" in table.stdout
    assert "inspection list" in table.stdout


def test_bad_input_names_the_option_and_what_to_do(
    seeded: tuple[GridScenario, Path], tmp_path: Path
) -> None:
    _, csv = seeded
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["analytics", "run", "--network", str(csv), "--from", "2026-03-09", "--to", "2026-03-02"],
    )
    assert isinstance(result.exception, InvalidInputError)
    assert result.exception.field == "--to"
    result = runner.invoke(
        app, ["analytics", "run", "--network", str(csv), "--from", "2026-03-02T00:00"]
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "offset" in result.exception.reason
    broken = tmp_path / "broken.csv"
    broken.write_text("meter,transformer\nM1,T1\n")
    result = runner.invoke(app, ["analytics", "run", "--network", str(broken)])
    assert isinstance(result.exception, InvalidInputError)
    assert result.exception.hint
    # Through the real entry point: the message, what to do next, status 2.
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "analytics",
            "run",
            "--network",
            str(tmp_path / "missing.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "METERSTACK_DATA_DIR": str(tmp_path / "data")},
    )
    assert process.returncode == 2
    assert "--network" in process.stderr
    assert "next:" in process.stderr


def test_serve_hands_the_network_to_the_app(
    seeded: tuple[GridScenario, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, csv = seeded
    import uvicorn

    served: dict[str, Any] = {}
    # Stop short of listening: catch the application uvicorn would serve.
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.update(app=application))
    result = CliRunner().invoke(app, ["serve", "--network", str(csv), "--port", "8765"])
    assert result.exit_code == 0, result.output
    network = served["app"].state.context.network
    assert network.meters == scenario.network.meters
    # The CSV lists transformers in the order of their first meter: compare by name.
    assert dict(zip(network.transformers, network.check_meters, strict=True)) == dict(
        zip(scenario.network.transformers, scenario.network.check_meters, strict=True)
    )
    broken = csv.with_name("bad.csv")
    broken.write_text("meter,transformer,feeder\nM1,T1,F1\nM1,T1,F1\n")
    result = CliRunner().invoke(app, ["serve", "--network", str(broken)])
    assert isinstance(result.exception, InvalidInputError)
    assert "listed twice" in str(result.exception)
    assert "--network" in result.exception.hint
