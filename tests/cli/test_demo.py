"""``meterstack demo``: through Typer's runner and through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from meterstack.cli.app import app

runner = CliRunner()


def test_demo_json_summary() -> None:
    result = runner.invoke(
        app, ["demo", "--meters", "12", "--days", "2", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["meters"] == 12
    assert summary["steps"] == 12 * 96
    assert summary["profile_mismatches"] == 0
    assert summary["restore_mismatches"] == 0
    assert summary["import_kwh"] > 0


def test_demo_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("meterstack")
    completed = subprocess.run(
        [
            str(script),
            "demo",
            "--meters",
            "6",
            "--days",
            "1",
            "--workers",
            "2",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "events by kind" in completed.stdout
    assert "restored image = live" in completed.stdout
    assert sorted(p.name for p in tmp_path.glob("nv-*.db")) == ["nv-00.db", "nv-01.db"]


def test_bad_start_day_names_the_option() -> None:
    script = Path(sys.executable).with_name("meterstack")
    completed = subprocess.run(
        [str(script), "demo", "--meters", "2", "--days", "1", "--start", "2024-13-01"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "start='2024-13-01'" in completed.stderr


def test_bad_configuration_file_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("timezone = 'Atlantis/Capital'\n")
    script = Path(sys.executable).with_name("meterstack")
    completed = subprocess.run(
        [str(script), "demo", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "timezone" in completed.stderr
    assert "next:" in completed.stderr


def test_zero_meters_is_a_usage_error() -> None:
    result = runner.invoke(app, ["demo", "--meters", "0"])
    assert result.exit_code == 2
