"""``meterstack pq analyze``: through Typer's runner and once through a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from meterstack.cli import app
from tests.metrology.signals import three_phase, tone

FS = 4000.0
REQUIRED = [
    "vrms",
    "irms",
    "p",
    "q1",
    "s",
    "s1",
    "sn",
    "n",
    "pf",
    "pf1",
    "thd_f_v",
    "thd_r_v",
    "thd_f_i",
    "harmonics_v",
    "frequency",
    "unbalance_iec_pct",
    "unbalance_nema_pct",
    "events",
]


def write_record(path: Path, dip: bool) -> Path:
    samples = int(FS * 3)
    voltage = three_phase([(1, 230.0, 0), (5, 6.9, 0)], FS, samples, 50)
    if dip:
        voltage[:, int(1.0 * FS) : int(1.3 * FS)] *= 0.7  # a 300 ms dip to 70 %
    current = three_phase([(1, 10.0, -30)], FS, samples, 50)
    rows = np.concatenate([voltage, current]).T
    lines = ["va,vb,vc,ia,ib,ic", *(",".join(f"{v:.5f}" for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def three_phase_csv(tmp_path: Path) -> Path:
    return write_record(tmp_path / "record.csv", dip=False)


def test_dip_event(tmp_path: Path) -> None:
    path = write_record(tmp_path / "dip.csv", dip=True)
    result = CliRunner().invoke(
        app, ["pq", "analyze", str(path), "--fs", "4000", "--declared-voltage", "230", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    dips = [e for e in summary["events"] if e["kind"] == "dip"]
    assert len(dips) == 1
    assert dips[0]["depth_pct"] == pytest.approx(30.0, abs=0.5)
    assert dips[0]["duration_s"] == pytest.approx(0.3, abs=0.021)
    assert dips[0]["start"].startswith("1970-01-01T00:00:01")
    assert summary["flagged_windows"] >= 2


def test_analyze_json(three_phase_csv: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "pq",
            "analyze",
            str(three_phase_csv),
            "--fs",
            "4000",
            "--declared-voltage",
            "230",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in REQUIRED:
        assert key in summary, key
    assert len(summary["vrms"]) == 3
    assert len(summary["harmonics_v"][0]) == 50
    assert summary["harmonics_v"][0][4] == pytest.approx(6.9, rel=1e-3)
    assert summary["thd_f_v"][0] == pytest.approx(3.0, rel=1e-3)
    assert summary["total"]["p"] == pytest.approx(3 * 2300 * np.cos(np.pi / 6), rel=1e-3)
    assert summary["frequency"] == pytest.approx(50.0, abs=1e-3)
    assert summary["events"] == []


def test_single_phase_v_i_and_table_output(tmp_path: Path) -> None:
    samples = int(FS)
    rows = np.stack([tone([(1, 120.0, 0)], FS, samples, 60), tone([(1, 5.0, 0)], FS, samples, 60)])
    path = tmp_path / "one.csv"
    path.write_text("v,i\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in rows.T) + "\n")
    result = CliRunner().invoke(app, ["pq", "analyze", str(path), "--fs", "4000", "--f0", "60"])
    assert result.exit_code == 0, result.output
    assert "power quality" in result.stdout


def test_csv_without_fs_is_an_error_with_a_hint(three_phase_csv: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "pq",
            "analyze",
            str(three_phase_csv),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--fs" in result.stderr
    assert "next:" in result.stderr


def test_real_process_prints_one_json_object(three_phase_csv: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "pq",
            "analyze",
            str(three_phase_csv),
            "--fs",
            "4000",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["unbalance_iec_pct"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fs", "20000"], "fs_hz"),
        (["--fs", "4000", "--f0", "55"], "--f0"),
        (["--fs", "4000", "--side", "middle"], "--side"),
        (["--fs", "4000", "--dat", "other.dat"], "--dat"),
    ],
)
def test_bad_options(three_phase_csv: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["pq", "analyze", str(three_phase_csv), *args])
    assert result.exit_code != 0
    assert message in str(result.exception)
