"""Green Button import of the shared files, export checked with greenbutton-objects, CSV,
the operational migrations and the commands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from greenbutton_objects import parse as gb_parse
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.mdm import import_csv, import_greenbutton
from meterstack.mdm.errors import FileFormatError, UnknownMeterError
from meterstack.mdm.greenbutton import export_greenbutton, parse_greenbutton
from meterstack.mdm.intervals import IntervalStore, MeterRegistration
from meterstack.mdm.operational import head_revision, migrate, schema_revision
from tests.conftest import REPO_ROOT, shared_data

from .conftest import PG_URL, intervals, t

FILES = {
    "Coastal_Multi_Family_Jan_1_2011_to_Jan_1_2012_RetailCustomer_5.xml": 8760,
    "TestGBDataHourlyNineDaysBinnedDaily.xml": 216,
    "electric_containerized.xml": 8,
    "gas_direct.xml": 5,
    "ngma_gas_provider_2024-07-16.xml": 0,
}


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(e)
    return e


@pytest.mark.parametrize(("name", "count"), sorted(FILES.items()))
def test_import_shared_files(store: IntervalStore, engine, name: str, count: int) -> None:  # type: ignore[no-untyped-def]
    path = shared_data("greenbutton", name)
    report = import_greenbutton(engine, store, path, create_meters=True)
    assert report.result.inserted == count
    if name.startswith("ngma"):
        # Its ReadingType is empty: no uom, so every reading is refused with that reason.
        assert len(report.rejected) == 36
        assert all("no uom" in reason for _, reason in report.rejected)
    again = import_greenbutton(engine, store, path)
    assert again.result.duplicates == count


def test_gas_values_are_scaled(store: IntervalStore, engine) -> None:  # type: ignore[no-untyped-def]
    feed = parse_greenbutton(shared_data("greenbutton", "gas_direct.xml"))
    # uom 169 (therm) with powerOfTenMultiplier -3: 37000 -> 37 therm.
    assert feed.batch.column("value").to_pylist() == [37.0, 14.0, 21.0, 27.0, 41.0]
    assert feed.batch.column("channel").to_pylist()[0] == "7.0.128.8.0.255"


def test_export_parses_with_greenbutton_objects(store: IntervalStore, tmp_path: Path) -> None:
    store.register_meters([MeterRegistration("M/1", 1800)])
    ends = int(t(1).timestamp()) + 1800 * np.arange(1, 97)
    values = np.round(np.linspace(100, 500, 96) * 1.5, 1)
    store.ingest_intervals(intervals("M/1", ends, values))
    store.ingest_intervals(intervals("M/1", ends, values / 10, channel="1.0.2.8.0.255"))
    body = export_greenbutton(store, "M/1", t(1), t(3), updated=t(5), source="raw")
    path = tmp_path / "usage.xml"
    path.write_bytes(body)
    (point,) = gb_parse.parse_feed(str(path))
    readings = {mr.readingType.flowDirection.name: mr for mr in point.meterReadings}
    assert readings["forward"].readingType.uom.name == "wattHours"
    forward = sorted(readings["forward"].intervalReadings, key=lambda r: r.timePeriod.start)
    assert [r.value for r in forward] == pytest.approx(values.tolist(), abs=1e-9)
    assert [int(r.timePeriod.start.timestamp()) + 1800 for r in forward] == ends.tolist()
    reverse = sorted(readings["reverse"].intervalReadings, key=lambda r: r.timePeriod.start)
    assert [r.value for r in reverse] == pytest.approx((values / 10).tolist(), abs=1e-9)


def test_bad_xml_and_unknown_meter(store: IntervalStore, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.xml"
    bad.write_text("<feed><entry>")
    with pytest.raises(FileFormatError, match="well-formed"):
        import_greenbutton(engine, store, bad)
    with pytest.raises(UnknownMeterError):
        import_greenbutton(engine, store, shared_data("greenbutton", "electric_containerized.xml"))
    assert (
        store.read_intervals(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
        ).num_rows
        == 0
    )


def test_unknown_uom_is_refused_with_its_place(tmp_path: Path) -> None:
    source = shared_data("greenbutton", "electric_containerized.xml").read_text()
    path = tmp_path / "odd.xml"
    path.write_text(source.replace("<uom>72</uom>", "<uom>999</uom>"))
    feed = parse_greenbutton(path)
    assert feed.batch.num_rows == 0
    assert all("uom" in reason and "999" in reason for _, reason in feed.rejected)


def test_csv_import(store: IntervalStore, tmp_path: Path) -> None:
    store.register_meters([MeterRegistration("M1")])
    path = tmp_path / "reads.csv"
    path.write_text(
        "meter,channel,interval_end,value,unit\n"
        "M1,1.0.1.8.0.255,2024-01-01T00:30:00Z,1.5,kWh\n"
        "M1,1.0.1.8.0.255,2024-01-01T01:00:00+00:00,oops,Wh\n"
        "M1,1.0.1.8.0.255,2024-01-01T01:30:00,1,Wh\n"
        "M1,1.0.1.8.0.255,2024-01-01T02:00:00Z,1,furlongs\n"
        "M9,1.0.1.8.0.255,2024-01-01T02:30:00Z,1,Wh\n"
    )
    report = import_csv(store, path)
    assert report.result.inserted == 1
    # Every refusal by its line (the header is line 1), the store's among the reader's.
    places = [place for place, _ in report.rejected]
    reasons = [reason for _, reason in report.rejected]
    assert places == ["line 3", "line 4", "line 5", "line 6"]
    assert "not a number" in reasons[0]
    assert "no UTC offset" in reasons[1]
    assert "furlongs" in reasons[2]
    assert "unknown meter 'M9'" in reasons[3]  # refused by the store, batch row 1
    assert store.read_intervals(t(1), t(2)).column("value").to_pylist() == [1500.0]
    header = tmp_path / "header.csv"
    header.write_text("meter,when,value\n")
    with pytest.raises(FileFormatError, match="channel"):
        import_csv(store, header)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_and_append_only_audit_log(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        e = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    else:
        schema = request.getfixturevalue("pg_schema") + "_op"
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        e = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    migrate(e)
    migrate(e)  # a second run is a no-op
    assert schema_revision(e) == head_revision()
    with e.begin() as c:
        c.execute(
            text(
                "INSERT INTO audit_log (at, actor, action, entity, entity_id, reason)"
                " VALUES (CURRENT_TIMESTAMP, 'a', 'x', 'y', 'z', 'r')"
            )
        )
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), e.begin() as c:
            c.execute(text(statement))
    e.dispose()


def test_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    xml = shared_data("greenbutton", "TestGBDataHourlyNineDaysBinnedDaily.xml")
    result = runner.invoke(
        app, ["import", "greenbutton", str(xml), "--meter", "GB1", "--create-meters"]
    )
    assert result.exit_code == 0, result.output
    assert '"inserted":216' in result.output
    result = runner.invoke(app, ["vee", "run", "--from", "2000-01-01", "--to", "2030-01-01"])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "METERSTACK_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", "from meterstack.cli import main; main()", "export", "greenbutton",
         "--meter", "GB1", "--from", "2000-01-01", "--to", "2030-01-01", "--raw"],
        capture_output=True, env=env, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "usage.xml"
    out.write_bytes(done.stdout)
    (point,) = gb_parse.parse_feed(str(out))
    assert sum(1 for mr in point.meterReadings for _ in mr.intervalReadings) == 216
    bad = subprocess.run(
        [sys.executable, "-c", "from meterstack.cli import main; main()", "export", "greenbutton",
         "--meter", "NOPE", "--from", "2000-01-01", "--to", "2030-01-01"],
        capture_output=True, env=env, cwd=tmp_path, check=False, timeout=120, text=True,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "NOPE" in bad.stderr
    assert REPO_ROOT.exists()


def test_import_csv_command_names_refused_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["mdm", "add-meter", "M1"]).exit_code == 0
    path = tmp_path / "reads.csv"
    path.write_text(
        "meter,channel,interval_end,value\n"
        "M1,1.0.1.8.0.255,2024-01-01T00:30:00Z,1\n"
        "M1,1.0.1.8.0.255,2024-01-01T01:00:00Z,x\n"
        "NOPE,1.0.1.8.0.255,2024-01-01T01:30:00Z,1\n"
        "M1,1.0.1.8.0.255,2024-01-01T02:00:00Z,2\n"
    )
    result = runner.invoke(app, ["import", "csv", str(path)])
    assert result.exit_code == 0, result.output
    assert '"inserted":2' in result.output
    assert "line 3: value='x' is not a number" in result.output
    assert "line 4: unknown meter 'NOPE'" in result.output
