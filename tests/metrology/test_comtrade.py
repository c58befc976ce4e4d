"""COMTRADE records: every shared sample file against a parse written here from the raw bytes,
the reasons each one cannot be analysed, and records written here analysed end to end.

The shared files (../shared/data/comtrade, SOURCES.md) are the python-comtrade samples:
ASCII, 16-bit BINARY and FLOAT32 data, .cfg + .dat pairs and single-file .cff, with and
without missing-value markers. The independent parse below reads the configuration lines
and the data with ``str.split`` and ``struct`` only, following IEEE C37.111-2013 clauses
6, 7 and 9: value = a * raw + b, the missing markers 99999 (ASCII) and 0x8000 (binary).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.metrology import (
    ComtradeRecordError,
    WaveformError,
    analyze,
    load_comtrade,
    read_comtrade,
    summarize,
)
from tests.metrology.signals import data_dir, three_phase

#: (configuration, data file) as SOURCES.md pairs them; None: single-file .cff.
SHARED = [
    ("sample_ascii.cfg", "sample_ascii.dat"),
    ("sample_ascii.cfg", "sample_ascii_missing.dat"),
    ("sample_ascii_utf-8.cfg", "sample_ascii.dat"),
    ("sample_sub_char.cfg", "sample_ascii.dat"),
    ("sample_iso8859-1.cfg", "sample_iso8859-1.dat"),
    ("sample_iso8859-1_bin.cfg", "sample_iso8859-1_bin.dat"),
    ("sample_bin.cfg", "sample_bin.dat"),
    ("sample_bin.cfg", "sample_bin_missing.dat"),
    ("sample_ascii.cff", None),
    ("sample_float32.cff", None),
]


def shared(name: str) -> Path:
    return data_dir() / "comtrade" / name


# --- an independent parse of the raw files -------------------------------------------


@dataclass
class Parsed:
    names: list[str]
    units: list[str]
    sides: list[str]
    ratios: list[tuple[float, float]]
    fs: float
    samples: int
    values: np.ndarray  # (channels, samples), NaN at missing markers
    start: datetime


def cfg_text(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    return [line.strip() for line in text.replace("\x1a", "").splitlines()]


def parse_cfg(lines: list[str]) -> dict[str, object]:
    revision = lines[0].split(",")[2].strip() if lines[0].count(",") >= 2 else "1991"
    counts = lines[1].split(",")
    analog, digital = int(counts[1].strip()[:-1]), int(counts[2].strip()[:-1])
    channels = [line.split(",") for line in lines[2 : 2 + analog]]
    at = 2 + analog + digital
    rates = int(lines[at + 1])
    fs, samples = (float(v) for v in lines[at + 2].split(","))
    at += 2 + rates
    # 2013 allows nanoseconds (9 digits); a datetime holds microseconds
    whole, _, fraction = lines[at].strip().partition(".")
    start = datetime.strptime(f"{whole}.{fraction[:6]}", "%d/%m/%Y,%H:%M:%S.%f")
    data_format = lines[at + 2].strip().upper()
    offset = timedelta(0)
    if revision == "2013" and len(lines) > at + 4 and lines[at + 4]:
        code = lines[at + 4].split(",")[0].strip()
        if code not in ("", "0", "x"):
            sign = -1 if code.startswith("-") else 1
            hours, _, minutes = code.lstrip("+-").partition("h")
            offset = sign * timedelta(hours=int(hours), minutes=int(minutes or 0))
    return {
        "revision": revision,
        "analog": analog,
        "digital": digital,
        "channels": channels,
        "fs": fs,
        "samples": int(samples),
        "format": data_format,
        "start": (start - offset).replace(tzinfo=UTC),
    }


def parse_data(cfg: dict[str, object], data: bytes) -> np.ndarray:
    channels = cfg["channels"]
    assert isinstance(channels, list)
    analog = len(channels)
    samples = cfg["samples"]
    assert isinstance(samples, int)
    a = np.array([float(c[5]) for c in channels])[:, None]
    b = np.array([float(c[6]) for c in channels])[:, None]
    words = -(-int(str(cfg["digital"])) // 16)
    if cfg["format"] == "ASCII":
        rows = [line.split(",") for line in data.decode("ascii").splitlines() if line.strip()]
        raw = np.array([[float(v) for v in row[2 : 2 + analog]] for row in rows[:samples]]).T
        values = a * raw + b
        values[raw == 99999] = np.nan
        return values
    kind = {"BINARY": "h", "FLOAT32": "f"}[str(cfg["format"])]
    layout = struct.Struct("<II" + kind * analog + "H" * words)
    rows = [layout.unpack_from(data, n * layout.size)[2 : 2 + analog] for n in range(samples)]
    raw = np.array(rows, dtype=np.float64).T
    values = a * raw + b
    if kind == "h":
        values[raw == -32768] = np.nan
    return values


def independent_parse(cfg_name: str, dat_name: str | None) -> Parsed:
    raw = shared(cfg_name).read_bytes()
    if dat_name is None:  # single file: "--- file type: X ---" sections (C37.111-2013, 9)
        marker = b"--- file type: DAT"
        head, _, tail = raw.partition(marker)
        cfg_part = head.split(b"--- file type: CFG ---")[1].split(b"--- file type:")[0]
        data = tail.split(b"\n", 1)[1]
    else:
        cfg_part = raw
        data = shared(dat_name).read_bytes()
    cfg = parse_cfg([line for line in cfg_text(cfg_part) if line])
    channels = cfg["channels"]
    assert isinstance(channels, list)
    start = cfg["start"]
    assert isinstance(start, datetime)
    return Parsed(
        names=[c[1].strip() for c in channels],
        units=[c[4].strip() for c in channels],
        sides=["secondary" if c[12].strip().upper() == "S" else "primary" for c in channels],
        ratios=[(float(c[10]), float(c[11])) for c in channels],
        fs=float(str(cfg["fs"])),
        samples=int(str(cfg["samples"])),
        values=parse_data(cfg, data),
        start=start,
    )


@pytest.mark.parametrize(("cfg", "dat"), SHARED)
def test_every_shared_record_loads_as_the_raw_files_say(cfg: str, dat: str | None) -> None:
    expected = independent_parse(cfg, dat)
    record = load_comtrade(shared(cfg), shared(dat) if dat else None)
    assert [c.name for c in record.channels] == expected.names
    assert [c.unit for c in record.channels] == expected.units
    assert [c.side for c in record.channels] == expected.sides
    assert record.sampling_rates[0][0] == expected.fs
    assert record.samples == expected.samples
    assert record.start == expected.start
    values = np.stack([c.values for c in record.channels])
    np.testing.assert_allclose(values, expected.values, rtol=1e-12, atol=0, equal_nan=True)
    for channel, row in zip(record.channels, expected.values, strict=True):
        np.testing.assert_array_equal(channel.missing, np.flatnonzero(np.isnan(row)) + 1)
    # the transformer ratio, from the side the file records to the other one
    for channel, (primary, secondary), row in zip(
        record.channels, expected.ratios, expected.values, strict=True
    ):
        other = "secondary" if channel.side == "primary" else "primary"
        factor = primary / secondary if other == "primary" else secondary / primary
        np.testing.assert_allclose(
            channel.values_on(other), row * factor, rtol=1e-12, atol=0, equal_nan=True
        )


def test_missing_markers_are_where_the_files_put_them() -> None:
    """The markers written in the two *_missing files, read by eye from the raw bytes."""
    ascii_record = load_comtrade(shared("sample_ascii.cfg"), shared("sample_ascii_missing.dat"))
    assert [c.missing.tolist() for c in ascii_record.channels] == [[2], [3], [4], [5]]
    assert ascii_record.missing_marker == "99999"
    binary = load_comtrade(shared("sample_bin.cfg"), shared("sample_bin_missing.dat"))
    assert [c.missing.tolist() for c in binary.channels] == [[1], [2], [3], [4]]
    assert binary.missing_marker == "0x8000"


# --- why each shared record cannot be analysed, through the command line ---------------

WHY = {
    "ascii": [
        "no phase voltage channel",
        "IA (A), IB (A), IC (A), 3I0 (A)",
        "40 samples is shorter than one 12-cycle window",
        "320 samples are needed at 1200 Hz and 60 Hz",
    ],
    "bin": [
        "15360 Hz is outside the 1000-12800 Hz",
        "5 samples is shorter than one 12-cycle window",
        "4096 samples are needed at 15360 Hz and 60 Hz",
    ],
    "float32": [
        "no phase voltage channel",
        "test/out1 (none)",
        "100 Hz is outside the 1000-12800 Hz",
        "the line frequency in the file is 0 Hz",
    ],
}
REASONS = {
    ("sample_ascii.cfg", "sample_ascii.dat"): WHY["ascii"],
    ("sample_ascii.cfg", "sample_ascii_missing.dat"): [
        *WHY["ascii"],
        "missing values (marker 99999",
        "IA sample 2; IB sample 3; IC sample 4",
    ],
    ("sample_ascii_utf-8.cfg", "sample_ascii.dat"): WHY["ascii"],
    ("sample_sub_char.cfg", "sample_ascii.dat"): WHY["ascii"],
    ("sample_iso8859-1.cfg", "sample_iso8859-1.dat"): WHY["ascii"],
    ("sample_iso8859-1_bin.cfg", "sample_iso8859-1_bin.dat"): WHY["ascii"],
    ("sample_bin.cfg", "sample_bin.dat"): WHY["bin"],
    ("sample_bin.cfg", "sample_bin_missing.dat"): [
        *WHY["bin"],
        "missing values (marker 0x8000",
        "VA sample 1; VB sample 2; VC sample 3",
    ],
    ("sample_ascii.cff", None): WHY["ascii"],
    ("sample_float32.cff", None): WHY["float32"],
}


@pytest.mark.parametrize(("cfg", "dat"), SHARED)
def test_pq_analyze_says_why_each_shared_record_cannot_be_analysed(
    cfg: str, dat: str | None
) -> None:
    args = ["pq", "analyze", str(shared(cfg)), "--json"]
    if dat is not None:
        args += ["--dat", str(shared(dat))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    error = result.exception
    assert isinstance(error, ComtradeRecordError), repr(error)
    assert error.field == cfg
    for phrase in REASONS[(cfg, dat)]:
        assert phrase in error.reason, (phrase, error.reason)
    assert "3I0 sample" not in error.reason  # the residual channel is not analysed
    assert "VN sample" not in error.reason  # nor is the neutral
    if cfg == "sample_bin.cfg":
        assert "no phase voltage" not in error.reason  # VA, VB, VC in kV are found


def test_a_shared_record_refused_in_a_real_process() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meterstack.cli import main; main()",
            "pq",
            "analyze",
            str(shared("sample_bin.cfg")),
            "--dat",
            str(shared("sample_bin_missing.dat")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    text = " ".join(result.stderr.split())  # the console wraps long lines
    assert "sample_bin.cfg" in text
    assert "15360 Hz is outside" in text
    assert "VA sample 1" in text
    assert "next:" in text


def test_a_cfg_whose_data_file_has_another_name_needs_dat() -> None:
    result = CliRunner().invoke(app, ["pq", "analyze", str(shared("sample_ascii_utf-8.cfg"))])
    assert isinstance(result.exception, ComtradeRecordError)
    assert "no data file for sample_ascii_utf-8.cfg" in result.exception.reason


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        ("nonsense\n", "bad.cfg", "not a readable COMTRADE"),
        ("x", "record.txt", "expected a COMTRADE .cfg or .cff"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, name: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    (tmp_path / "bad.dat").write_text("1,0,1\n")
    with pytest.raises(ComtradeRecordError, match=match):
        load_comtrade(path)


# --- records written here, analysed end to end ------------------------------------------

FS = 4000.0
SECONDS = 2.0
VT = (11000.0, 110.0)  # 11 kV / 110 V voltage transformers
CT = (400.0, 5.0)  # 400 A / 5 A current transformers
#: Primary-side signal per phase (order, RMS, phase in degrees).
VOLTAGE = [(1, 6350.0, 0.0), (5, 190.5, 30.0), (7, 127.0, 0.0)]
CURRENT = [(1, 200.0, -30.0), (3, 10.0, 0.0), (5, 8.0, 0.0)]
VOLT_PER_COUNT, AMP_PER_COUNT = 0.001, 0.0001  # secondary units per count


def write_record(folder: Path, missing_at: tuple[str, int] | None = None) -> Path:
    """An IEEE C37.111-2013 ASCII record of secondary values: VA..VC in V, IA..IC in A,
    2 s at 4 kHz and 50 Hz, local time UTC+1 (time code +1h00). ``missing_at`` =
    (channel, sample number) puts the marker 99999 there."""
    samples = int(FS * SECONDS)
    voltage = three_phase(VOLTAGE, FS, samples, 50) / (VT[0] / VT[1])
    current = three_phase(CURRENT, FS, samples, 50) / (CT[0] / CT[1])
    lines = ["TEST STATION,FEEDER 7 PQ,2013", "6,6A,0D"]
    for index, name in enumerate(("VA", "VB", "VC")):
        lines.append(
            f"{index + 1},{name},{'ABC'[index]},FEEDER7,V,{VOLT_PER_COUNT},0,0,-99999,99998,"
            f"{VT[0]:g},{VT[1]:g},S"
        )
    for index, name in enumerate(("IA", "IB", "IC")):
        lines.append(
            f"{index + 4},{name},{'ABC'[index]},FEEDER7,A,{AMP_PER_COUNT},0,0,-99999,99998,"
            f"{CT[0]:g},{CT[1]:g},S"
        )
    lines += ["50", "1", f"{FS:g},{samples}", "01/05/2024,10:00:00.000000"]
    lines += ["01/05/2024,10:00:00.500000", "ASCII", "1", "+1h00,+1h00", "0,0"]
    (folder / "feeder7.cfg").write_text("\r\n".join(lines) + "\r\n")
    counts = np.concatenate(
        [np.rint(voltage / VOLT_PER_COUNT), np.rint(current / AMP_PER_COUNT)]
    ).astype(np.int64)
    assert np.abs(counts).max() < 99998
    if missing_at is not None:
        channel = ["VA", "VB", "VC", "IA", "IB", "IC"].index(missing_at[0])
        counts[channel, missing_at[1] - 1] = 99999
    rows = [
        ",".join(str(v) for v in [n + 1, round(n * 1e6 / FS), *counts[:, n]])
        for n in range(samples)
    ]
    (folder / "feeder7.dat").write_text("\r\n".join(rows) + "\r\n")
    return folder / "feeder7.cfg"


def rms(components: list[tuple[int, float, float]]) -> float:
    return float(np.sqrt(sum(value**2 for _, value, _ in components)))


def test_written_record_analysed_end_to_end_through_pq_analyze(tmp_path: Path) -> None:
    path = write_record(tmp_path)
    result = CliRunner().invoke(app, ["pq", "analyze", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["fs"] == FS
    assert summary["f0"] == 50
    assert summary["phases"] == 3
    assert summary["samples"] == int(FS * SECONDS)
    assert summary["windows"] >= 8
    # primary side by default: the counts times a, times the VT / CT ratio
    assert summary["vrms"] == pytest.approx([rms(VOLTAGE)] * 3, rel=2e-5)
    assert summary["irms"] == pytest.approx([rms(CURRENT)] * 3, rel=2e-5)
    for phase in range(3):
        orders = summary["harmonics_v"][phase]
        assert orders[0] == pytest.approx(6350.0, rel=2e-5)
        assert orders[4] == pytest.approx(190.5, rel=1e-3)
        assert orders[6] == pytest.approx(127.0, rel=1e-3)
        assert orders[2] == pytest.approx(0.0, abs=0.2)
        assert summary["harmonics_i"][phase][2] == pytest.approx(10.0, rel=1e-3)
    thd = np.hypot(190.5, 127.0) / 6350.0 * 100.0
    assert summary["thd_f_v"] == pytest.approx([thd] * 3, rel=1e-3)
    # P = sum over common orders of V_h I_h cos(phi_v - phi_i): h1 at 30 deg, h5 at 30 deg
    p = 6350.0 * 200.0 * np.cos(np.deg2rad(30)) + 190.5 * 8.0 * np.cos(np.deg2rad(30))
    assert summary["p"] == pytest.approx([p] * 3, rel=1e-4)
    assert summary["q1"] == pytest.approx([6350.0 * 200.0 * 0.5] * 3, rel=1e-4)
    assert summary["total"]["p"] == pytest.approx(3 * p, rel=1e-4)
    assert summary["frequency"] == pytest.approx(50.0, abs=1e-4)
    assert summary["unbalance_iec_pct"] == pytest.approx(0.0, abs=1e-3)
    assert summary["events"] == []

    secondary = CliRunner().invoke(
        app, ["pq", "analyze", str(path), "--json", "--side", "secondary"]
    )
    assert secondary.exit_code == 0, secondary.output
    on_secondary = json.loads(secondary.stdout)
    ratio = VT[0] / VT[1]
    assert on_secondary["vrms"] == pytest.approx([rms(VOLTAGE) / ratio] * 3, rel=2e-5)


def test_written_record_start_time_and_names(tmp_path: Path) -> None:
    record = read_comtrade(write_record(tmp_path))
    assert record.start == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # 10:00 at UTC+1
    assert record.voltage_names == ("VA", "VB", "VC")
    assert record.current_names == ("IA", "IB", "IC")
    loaded = load_comtrade(tmp_path / "feeder7.cfg")
    assert loaded.station == "TEST STATION"
    assert loaded.revision == "2013"
    assert [c.side for c in loaded.channels] == ["secondary"] * 6


def test_missing_value_in_an_analysable_record_is_refused_by_name(tmp_path: Path) -> None:
    path = write_record(tmp_path, missing_at=("VB", 1234))
    loaded = load_comtrade(path)
    assert loaded.channels[1].missing.tolist() == [1234]
    assert np.isnan(loaded.channels[1].values[1233])
    with pytest.raises(ComtradeRecordError) as caught:
        read_comtrade(path)
    assert caught.value.reason == (
        "cannot be analysed: missing values (marker 99999, carried as NaN, never "
        "interpolated) in VB sample 1234"
    )
    assert isinstance(caught.value, WaveformError)


def test_1999_record_of_primary_values(tmp_path: Path) -> None:
    """A C37.111-1999 ASCII record of primary values in kV and A (no time code)."""
    fs, samples = 3200.0, 3200
    voltage = three_phase([(1, 230.0, 0)], fs, samples, 50)
    current = three_phase([(1, 20.0, -30)], fs, samples, 50)
    scale_v, scale_i = 0.0001, 0.001  # kV and A per count
    lines = ["TEST STATION,METER1,1999", "6,6A,0D"]
    for index, name in enumerate(("VA", "VB", "VC")):
        lines.append(f"{index + 1},{name},{'ABC'[index]},,kV,{scale_v},0,0,-32767,32767,1,1,P")
    for index, name in enumerate(("IA", "IB", "IC")):
        lines.append(f"{index + 4},{name},{'ABC'[index]},,A,{scale_i},0,0,-32767,32767,1,1,P")
    lines += ["50", "1", f"{fs:g},{samples}", "01/05/2024,10:00:00.000000"]
    lines += ["01/05/2024,10:00:00.000000", "ASCII", "1"]
    (tmp_path / "rec.cfg").write_text("\r\n".join(lines) + "\r\n")
    counts_v = np.rint(voltage / 1000 / scale_v).astype(int)
    counts_i = np.rint(current / scale_i).astype(int)
    rows = [
        ",".join(str(v) for v in [n + 1, int(n * 1e6 / fs), *counts_v[:, n], *counts_i[:, n]])
        for n in range(samples)
    ]
    (tmp_path / "rec.dat").write_text("\r\n".join(rows) + "\r\n")
    record = read_comtrade(tmp_path / "rec.cfg")
    assert record.fs_hz == fs
    assert record.start.isoformat() == "2024-05-01T10:00:00+00:00"
    np.testing.assert_allclose(record.voltage_v, voltage, atol=0.051)  # 0.1 V counts in kV
    summary = summarize(analyze(record))
    assert summary["vrms"] == pytest.approx([230.0] * 3, rel=1e-3)
    assert summary["q1"][0] == pytest.approx(4600 * 0.5, rel=1e-3)
