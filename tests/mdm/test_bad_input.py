"""Bad input: a clear typed error naming the place, the rest of the batch kept, nothing
half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from sqlalchemy import create_engine

from meterstack.mdm import import_csv, import_greenbutton
from meterstack.mdm.errors import FileFormatError
from meterstack.mdm.greenbutton import export_greenbutton, parse_greenbutton
from meterstack.mdm.greenbutton.espi import ATOM
from meterstack.mdm.intervals import IntervalStore, MeterRegistration

from .conftest import intervals, t

EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
GOOD_LINE = "M1,1.0.1.8.0.255,2024-01-01T00:30:00Z,1\n"


def _two_point_feed(store: IntervalStore, tmp_path: Path) -> Path:
    """One Atom feed holding the UsagePoints of two exports (M1: 3 readings, M2: 2)."""
    store.register_meters([MeterRegistration("M1", 1800), MeterRegistration("M2", 1800)])
    ends = int(t(1).timestamp()) + 1800 * np.arange(1, 4)
    store.ingest_intervals(intervals("M1", ends, [1.0, 2.0, 3.0]))
    store.ingest_intervals(intervals("M2", ends[:2], [4.0, 5.0]))
    feeds = [
        ET.fromstring(export_greenbutton(store, m, *EVER, updated=t(2), source="raw"))
        for m in ("M1", "M2")
    ]
    for entry in feeds[1].findall(f"{{{ATOM}}}entry"):
        feeds[0].append(entry)
    path = tmp_path / "two.xml"
    path.write_bytes(ET.tostring(feeds[0], encoding="UTF-8", xml_declaration=True))
    return path


def test_an_unknown_usage_point_is_refused_and_the_others_kept(
    store: IntervalStore, tmp_path: Path
) -> None:
    source = _two_point_feed(store, tmp_path)
    names = [p.meter for p in parse_greenbutton(source).usage_points]
    assert len(names) == 2
    # A second store that knows only the first UsagePoint's meter.
    engine = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    from meterstack.mdm.intervals import DuckDBIntervalStore

    target = DuckDBIntervalStore()
    target.register_meters([MeterRegistration(names[0], 1800)])
    report = import_greenbutton(engine, target, source)
    assert report.result.inserted == 3
    assert len(report.rejected) == 2
    assert all(f"unknown meter {names[1]!r}" in reason for _, reason in report.rejected)
    assert all("IntervalReading[" in place for place, _ in report.rejected)
    assert target.read_intervals(*EVER).column("value").to_pylist() == [1.0, 2.0, 3.0]
    target.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b"meter,channel,interval_end,value\n" + GOOD_LINE.encode() + b"M1,\xff\xfe,x,1\n",
            "UTF-8",
        ),
        # An unterminated quote would run every later line into one field.
        (b"meter,channel,interval_end,value\n" + GOOD_LINE.encode() + b'M1,"1.0,x,1\n', "CSV"),
    ],
)
def test_a_malformed_csv_is_refused_whole(
    store: IntervalStore, tmp_path: Path, body: bytes, reason: str
) -> None:
    store.register_meters([MeterRegistration("M1")])
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(FileFormatError, match=reason) as caught:
        import_csv(store, path)
    assert caught.value.field == "file"
    assert store.read_intervals(*EVER).num_rows == 0  # the good line before it is not written


def test_a_line_with_too_many_fields_is_refused_and_the_rest_kept(
    store: IntervalStore, tmp_path: Path
) -> None:
    store.register_meters([MeterRegistration("M1")])
    path = tmp_path / "ragged.csv"
    path.write_text(
        "meter,channel,interval_end,value\n"
        + GOOD_LINE
        + "M1,1.0.1.8.0.255,2024-01-01T01:00:00Z,2,7\n"
        + "M1,1.0.1.8.0.255,2024-01-01T01:30:00Z,3\n"
    )
    report = import_csv(store, path)
    assert report.rejected == [("line 3", "has 5 fields, the header 4")]
    assert store.read_intervals(*EVER).column("value").to_pylist() == [1.0, 3.0]


def test_the_import_command_names_a_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<feed xmlns='http://www.w3.org/2005/Atom'><entry>")
    env = {**os.environ, "METERSTACK_DATA_DIR": str(tmp_path / "data")}
    env.pop("METERSTACK_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", "from meterstack.cli import main; main()", "import",
         "greenbutton", str(bad)],
        capture_output=True, env=env, cwd=tmp_path, check=False, timeout=120, text=True,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "bad.xml" in done.stderr
    assert "well-formed" in done.stderr
