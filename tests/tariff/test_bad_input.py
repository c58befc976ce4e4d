"""Bad input: a clear typed error naming the place, never a silent zero bill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from meterstack.billing.load_csv import read_interval_csv
from meterstack.cli.app import app
from meterstack.core.errors import InvalidInputError
from meterstack.tariff.errors import LoadDataError, TariffError
from meterstack.tariff.model import Tariff
from meterstack.tariff.rating import rate
from meterstack.tariff.yaml_format import (
    list_templates,
    load_tariff,
    load_template,
    parse_tariff,
    tariff_schema,
)

GOOD = {"name": "t", "energy": {"periods": [{"name": "a", "tiers": [{"rate": 0.1}]}]}}


def test_unknown_field_named() -> None:
    with pytest.raises(TariffError, match=r"colour"):
        parse_tariff({**GOOD, "energy": {**GOOD["energy"], "colour": "red"}})


def test_overlapping_periods_named() -> None:
    doc = {
        "name": "t",
        "energy": {
            "periods": [
                {"name": "off", "tiers": [{"rate": 0.1}]},
                {"name": "peak", "tiers": [{"rate": 0.3}]},
                {"name": "mid", "tiers": [{"rate": 0.2}]},
            ],
            "schedule": {
                "seasons": [
                    {
                        "name": "summer",
                        "months": list(range(1, 13)),
                        "weekday": {"peak": ["16-21"], "mid": ["14-17"]},
                        "default": "off",
                    }
                ]
            },
        },
    }
    with pytest.raises(TariffError, match=r"summer.weekday.*overlap at hour 16"):
        parse_tariff(doc)


def test_schedule_not_12x24() -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["energy"]["schedule"] = {"weekday": [[0] * 24] * 11}
    with pytest.raises(TariffError, match="12 x 24"):
        parse_tariff(doc)
    doc["energy"]["schedule"] = {"weekday": [[0] * 24] * 11 + [[0] * 23]}
    with pytest.raises(TariffError, match=r"weekday\[11\].*23 hours"):
        parse_tariff(doc)


def test_tiers_out_of_order() -> None:
    doc = {
        "name": "t",
        "energy": {
            "periods": [
                {
                    "name": "a",
                    "tiers": [{"max": 500, "rate": 0.1}, {"max": 300, "rate": 0.2}, {"rate": 0.3}],
                }
            ]
        },
    }
    with pytest.raises(TariffError, match=r"tiers\[1\].*out of order"):
        parse_tariff(doc)


def test_schema_shipped_matches_model() -> None:
    generated = Tariff.model_json_schema()
    shipped = {k: v for k, v in tariff_schema().items() if k != "$schema"}
    assert shipped == json.loads(json.dumps(generated))


def test_yaml_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("name: t\nenergy: [unclosed\n")
    with pytest.raises(TariffError, match=r"t\.yaml"):
        load_tariff(bad)


def test_at_least_50_templates_load() -> None:
    names = list_templates()
    assert len(names) >= 50
    for name in names:
        tariff = load_template(name)
        assert tariff.name == name
    with pytest.raises(TariffError, match=r"no such template"):
        load_template("nope")


def _csv(tmp_path: Path, rows: list[str], header: str = "timestamp,kwh") -> Path:
    p = tmp_path / "load.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def test_csv_gap_duplicate_dst(tmp_path: Path) -> None:
    gap = _csv(tmp_path, ["2024-01-01T00:30Z,1", "2024-01-01T01:00Z,1", "2024-01-01T02:00Z,1"])
    with pytest.raises(LoadDataError, match=r"load.csv:4.*gap: 1 interval"):
        read_interval_csv(gap)
    dup = _csv(tmp_path, ["2024-01-01T00:30Z,1", "2024-01-01T01:00Z,1", "2024-01-01T01:00Z,1"])
    with pytest.raises(LoadDataError, match=r"load.csv:4.*duplicate"):
        read_interval_csv(dup)
    amb = _csv(tmp_path, ["2024-11-03T00:30,1", "2024-11-03T01:00,1", "2024-11-03T01:30,1"])
    with pytest.raises(LoadDataError, match=r"load.csv:3.*ambiguous"):
        read_interval_csv(amb, "America/New_York")
    gone = _csv(tmp_path, ["2024-03-10T01:30,1", "2024-03-10T02:30,1"])
    with pytest.raises(LoadDataError, match=r"load.csv:3.*does not exist"):
        read_interval_csv(gone, "America/New_York")
    neg = _csv(tmp_path, ["2024-01-01T00:30Z,1", "2024-01-01T01:00Z,-1"])
    with pytest.raises(LoadDataError, match=r"load.csv:3:kwh"):
        read_interval_csv(neg)


def test_rating_refuses_bad_arrays() -> None:
    tariff = Tariff.model_validate(GOOD)
    ends = np.datetime64("2024-01-01T01:00") + np.arange(10) * np.timedelta64(1, "h")
    with pytest.raises(LoadDataError, match=r"import_kwh\[0, 3\]"):
        rate(tariff, ends, np.where(np.arange(10) == 3, np.nan, 1.0)[None])
    irregular = ends.copy()
    irregular[5:] += np.timedelta64(1, "h")
    with pytest.raises(LoadDataError, match=r"interval_end\[5\]"):
        rate(tariff, irregular, np.ones((1, 10)))
    demand = Tariff.model_validate(
        {**GOOD, "demand": {"window_min": 15, "flat": [{"name": "d", "tiers": [{"rate": 1}]}]}}
    )
    with pytest.raises(LoadDataError, match=r"15-min demand window"):
        rate(demand, ends, np.ones((1, 10)))
    assert issubclass(LoadDataError, InvalidInputError)


def _year_csv(path: Path) -> Path:
    t = np.datetime64("2023-01-01T01:00") + np.arange(8760) * np.timedelta64(1, "h")
    vals = 0.5 + 0.5 * np.sin(np.arange(8760) / 24 * 2 * np.pi) ** 2
    path.write_text(
        "timestamp,kwh\n" + "".join(f"{x}Z,{v:.4f}\n" for x, v in zip(t, vals, strict=True))
    )
    return path


def test_cli_bill_json_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    load = _year_csv(tmp_path / "load.csv")
    out = runner.invoke(
        app, ["bill", "--tariff", "residential-flat", "--load", str(load), "--json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert len(doc["months"]) == 12
    total = sum(m["total"] for m in doc["months"])
    assert doc["total"] == pytest.approx(total)
    kwh = float(np.sum(0.5 + 0.5 * np.sin(np.arange(8760) / 24 * 2 * np.pi) ** 2))
    assert doc["total"] == pytest.approx(12 * 9.5 + 0.145 * kwh, abs=0.07)
    listed = runner.invoke(app, ["tariff", "list"])
    assert listed.exit_code == 0
    assert "net-billing-hourly" in listed.output
    shown = runner.invoke(app, ["tariff", "show", "tou-2-period"])
    assert yaml.safe_load(shown.output)["name"] == "tou-2-period"


def test_cli_subprocess_reports_error(tmp_path: Path) -> None:
    bad = _csv(tmp_path, ["2024-01-01T00:30Z,1", "2024-01-01T00:30Z,1"])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "bill",
            "--tariff",
            "residential-flat",
            "--load",
            str(bad),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "duplicate" in proc.stderr
    assert "load.csv:3" in proc.stderr


def test_cli_pysam_compatible(tmp_path: Path, urdb_dir: Path) -> None:
    load = _year_csv(tmp_path / "load.csv")
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "bill",
            "--tariff",
            str(urdb_dir / "5d1512f35457a35717de8452.json"),
            "--load",
            str(load),
            "--json",
            "--pysam-compatible",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["months"][0]["fixed"] == 10.0
