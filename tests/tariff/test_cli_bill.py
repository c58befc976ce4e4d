"""``meterstack bill --timezone`` for URDB files (URDB records no time zone)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from meterstack.billing.bill import bills_from_rating
from meterstack.billing.load_csv import read_interval_csv
from meterstack.cli.app import app
from meterstack.tariff.rating import rate
from meterstack.tariff.urdb import load_urdb

TOU_URDB = "618940545457a35a1c4097ec.json"  # PSCo RE-TOU, five time-of-use periods


def _evening_load(path: Path) -> Path:
    """January 2023, hourly, in UTC ('Z'): 3 kWh from 17 to 20 UTC, else 0.2."""
    start = np.datetime64("2023-01-01T01:00")
    rows = []
    for i in range(31 * 24):
        end = start + np.timedelta64(i, "h")
        hour = (int(end.astype("datetime64[h]").astype(np.int64)) - 1) % 24
        rows.append(f"{str(end)[:16]}Z,{3.0 if 17 <= hour < 20 else 0.2}\n")
    path.write_text("timestamp,kwh\n" + "".join(rows))
    return path


def _expected_total(urdb: Path, load: Path, timezone: str) -> float:
    tariff = load_urdb(urdb, timezone)
    series = read_interval_csv(load, timezone)
    result = rate(tariff, series.interval_end, series.kwh[None, :])
    return float(sum(bill.total for bill in bills_from_rating(result)))


def test_timezone_places_local_times_of_a_urdb_tariff(tmp_path: Path, urdb_dir: Path) -> None:
    load = _evening_load(tmp_path / "load.csv")
    urdb = urdb_dir / TOU_URDB
    runner = CliRunner()
    args = ["bill", "--tariff", str(urdb), "--load", str(load), "--json"]
    utc = runner.invoke(app, args)
    denver = runner.invoke(app, [*args, "--timezone", "America/Denver"])
    assert utc.exit_code == 0, utc.output
    assert denver.exit_code == 0, denver.output
    utc_total = json.loads(utc.output)["total"]
    denver_total = json.loads(denver.output)["total"]
    assert utc_total == pytest.approx(_expected_total(urdb, load, "UTC"))
    assert denver_total == pytest.approx(_expected_total(urdb, load, "America/Denver"))
    # 17-20 UTC is 10-13 in Denver (UTC-7): the load falls in other periods
    assert denver_total != pytest.approx(utc_total)


def test_timezone_refused_for_yaml_tariffs(tmp_path: Path) -> None:
    load = _evening_load(tmp_path / "load.csv")
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["bill", "--tariff", "tou-2-period", "--load", str(load), "--timezone", "Asia/Tokyo"],
    )
    assert out.exit_code != 0
    assert "only for URDB files" in str(out.exception)


def test_unknown_timezone_through_the_console_script(tmp_path: Path, urdb_dir: Path) -> None:
    load = _evening_load(tmp_path / "load.csv")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "bill",
            "--tariff",
            str(urdb_dir / TOU_URDB),
            "--load",
            str(load),
            "--timezone",
            "Mars/Olympus_Mons",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "--timezone" in proc.stderr
    assert "Mars/Olympus_Mons" in proc.stderr
