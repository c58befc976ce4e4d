"""The CSV reader, on files written here (COMTRADE: test_comtrade.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meterstack.metrology import WaveformError, analyze, read_csv, summarize
from tests.metrology.signals import three_phase


def write_csv(path: Path, header: str, rows: np.ndarray) -> Path:
    lines = [header] + [",".join(f"{value:.6f}" for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_round_trip(tmp_path: Path) -> None:
    fs = 4000.0
    voltage = three_phase([(1, 230.0, 0)], fs, 4000, 50)
    current = three_phase([(1, 10.0, -20)], fs, 4000, 50)
    path = write_csv(tmp_path / "w.csv", "va,vb,vc,ia,ib,ic", np.concatenate([voltage, current]).T)
    record = read_csv(path, fs)
    assert record.phases == 3
    assert record.current_names == ("ia", "ib", "ic")
    np.testing.assert_allclose(record.voltage_v, voltage, atol=1e-6)
    summary = summarize(analyze(record))
    assert summary["p"][0] == pytest.approx(2300 * np.cos(np.deg2rad(20)), rel=1e-6)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("volts,amps\n1,2\n", "unknown header"),
        ("v,i\n", "no samples"),
        ("v,i\n1,2\n3,abc\n", r"w\.csv:3:i"),
        ("v,i\n1,2\n3\n4\n", "different lengths"),
        ("v,i\n1,2,3\n", "cells"),
    ],
)
def test_bad_csv_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(content)
    with pytest.raises(WaveformError, match=match):
        read_csv(path, 4000.0)


def test_csv_nan_sample_is_named(tmp_path: Path) -> None:
    rows = np.ones((3000, 2))
    rows[123, 1] = np.nan
    path = write_csv(tmp_path / "w.csv", "v,i", rows)
    with pytest.raises(WaveformError, match=r"i\[123\]"):
        read_csv(path, 4000.0)
