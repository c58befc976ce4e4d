"""``meterstack demo``: the whole system on embedded defaults, through Typer's runner and
through the installed console script.

The references are independent of the demo's own accounting: the meters' non-volatile
images (what each meter recorded) are read back with the meter package and compared with
what the DuckDB interval store holds; the operational database is read with plain SQL.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from meterstack.cli.app import app
from meterstack.mdm.intervals import DuckDBIntervalStore
from meterstack.meter import MeterImage, NonVolatileDatabase

runner = CliRunner()
SCRIPT = Path(sys.executable).with_name("meterstack")
EVER = (datetime(1970, 1, 2, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
A_PLUS = "1.0.1.8.0.255"


def _summary(output: str) -> dict[str, Any]:
    return json.loads(output[output.index("{") :])  # type: ignore[no-any-return]


def _images(meters_dir: Path) -> dict[str, MeterImage]:
    """Every meter's non-volatile image, as the meter package reads it back."""
    images: dict[str, MeterImage] = {}
    for path in sorted(meters_dir.glob("nv-*.db")):
        database = NonVolatileDatabase(path)
        for serial in database.serials():
            image = database.store(serial).load()
            assert image is not None
            images[serial] = image
        database.close()
    return images


def _run_demo(data_dir: Path, *options: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["demo", "--workers", "1", "--data-dir", str(data_dir), "--json", *options]
    )
    assert result.exit_code == 0, result.output
    return _summary(result.stdout)


def _assert_store_holds_the_meters_profiles(data_dir: Path) -> dict[str, MeterImage]:
    images = _images(data_dir / "meters")
    store = DuckDBIntervalStore(data_dir / "intervals.duckdb")
    try:
        stored = store.read_intervals(*EVER, None, [A_PLUS])
        got: dict[str, dict[int, float]] = {}
        for meter, end, value in zip(
            stored.column("meter").to_pylist(),
            stored.column("interval_end").to_pylist(),
            stored.column("value").to_pylist(),
            strict=True,
        ):
            got.setdefault(meter, {})[int(end.timestamp())] = value
        assert stored.num_rows == sum(len(i.profile) for i in images.values())  # no duplicate
        for serial, image in images.items():
            assert got[serial] == {round(e.interval_end): float(e.a_plus_wh) for e in image.profile}
        assert set(stored.column("revision").to_pylist()) == {0}
        events = store.read_events(*EVER)
        logged = {
            (serial, log, event.seq, event.code)
            for serial, image in images.items()
            for log, entries in image.events.items()
            for event in entries
        }
        assert logged
        assert (
            set(
                zip(
                    events.column("meter").to_pylist(),
                    events.column("log").to_pylist(),
                    events.column("seq").to_pylist(),
                    events.column("code").to_pylist(),
                    strict=True,
                )
            )
            == logged
        )
        assert events.num_rows == len(logged)
    finally:
        store.close()
    return images


def test_small_demo_end_to_end_through_the_embedded_broker(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    summary = _run_demo(data_dir, "--meters", "10", "--days", "3")
    link = summary["link"]
    assert summary["meters"] == 10
    assert summary["steps"] == 10 * 3 * 48
    assert link["live_meters"] == 10  # all of a small fleet through amqtt and the head-end
    assert link["bulk_meters"] == 0
    assert link["intact"] is True
    assert link["frames_applied"] > 10 * 3  # a profile message per day per meter, and more
    images = _assert_store_holds_the_meters_profiles(data_dir)
    assert len(images) == 10

    # the alarms came through the link: the head-end's table and the operational one
    with sqlite3.connect(data_dir / "headend.db") as headend:
        (alarms,) = headend.execute("SELECT count(*) FROM alarms").fetchone()
    assert alarms == link["alarms_sent"] > 0

    # VEE ran: every energy channel of every meter validated over the 3 days
    store = DuckDBIntervalStore(data_dir / "intervals.duckdb")
    try:
        validated = store.read_validated(*EVER)
        assert validated.num_rows == 10 * 4 * 3 * 48
        assert set(validated.column("quality").to_pylist()) <= {"A", "E", "S", "F", "N"}
    finally:
        store.close()
    assert summary["vee"]["intervals"] == 10 * 4 * 3 * 48

    with sqlite3.connect(data_dir / "operational.db") as db:
        prepaid = summary["prepaid"]
        (bills,) = db.execute("SELECT count(*) FROM bills").fetchone()
        assert bills == 10 - prepaid > 0
        vends = db.execute("SELECT token, amount FROM vends").fetchall()
        assert len(vends) == prepaid > 0
        assert all(len(token) == 20 and token.isdigit() for token, _ in vends)
        sold = sum(Decimal(str(amount)) for _, amount in vends)
        journals = db.execute(
            "SELECT journal, sum(amount) FROM ledger_entries GROUP BY journal"
        ).fetchall()
        assert journals
        assert all(Decimal(str(total)) == 0 for _, total in journals)  # double entry
        (float_left,) = db.execute("SELECT float_balance FROM vendors").fetchone()
    vending = summary["vending"]
    assert Decimal(vending["amount"]) == sold
    assert Decimal(str(float_left)) == Decimal(vending["float_deposited"]) - sold
    assert vending["ledger_balanced"] is True
    assert vending["replay_same_token"] is True


def test_a_sample_goes_live_and_the_rest_is_bulk_loaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    summary = _run_demo(data_dir, "--meters", "8", "--days", "2", "--live-meters", "3")
    link = summary["link"]
    assert (link["live_meters"], link["bulk_meters"]) == (3, 5)
    assert link["intact"] is True
    assert link["intervals_stored"] == link["intervals_expected"] == 8 * 2 * 48 * 6
    _assert_store_holds_the_meters_profiles(data_dir)
    # a second run rebuilds the directory: the same counts, nothing doubled
    again = _run_demo(data_dir, "--meters", "8", "--days", "2", "--live-meters", "3")
    assert again["link"]["intervals_stored"] == link["intervals_stored"]


def test_demo_through_the_console_script(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            str(SCRIPT),
            "demo",
            "--meters",
            "6",
            "--days",
            "1",
            "--workers",
            "2",
            "--data-dir",
            str(tmp_path / "demo"),
            "--state-dir",
            str(tmp_path / "nv"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for heading in ("events by kind", "restored image = live", "2. link", "3. VEE", "4. bills"):
        assert heading in completed.stdout
    assert "nothing lost, nothing duplicated" in completed.stdout
    assert sorted(p.name for p in (tmp_path / "nv").glob("nv-*.db")) == ["nv-00.db", "nv-01.db"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def test_serve_keeps_running_with_the_dashboard(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            str(SCRIPT),
            "demo",
            "--meters",
            "4",
            "--days",
            "1",
            "--workers",
            "1",
            "--data-dir",
            str(tmp_path / "demo"),
            "--serve",
            "--port",
            str(port),
            "--admin-password",
            "demo-secret-1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        health: tuple[int, str] | None = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = _get(f"http://127.0.0.1:{port}/healthz", 2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert health is not None, process.stdout.read() if process.poll() is not None else ""
        assert health[0] == 200
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert "<html" in page.lower()
        form = urllib.parse.urlencode({"username": "admin", "password": "demo-secret-1"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["access_token"]
        meters = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/meters",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(meters, timeout=10) as response:
            listed = json.loads(response.read())
        assert "MS000000" in json.dumps(listed)  # the stores the demo just filled
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output  # Ctrl-C ends it cleanly
    assert "demo-secret-1" in output  # the admin's password is printed
    assert f"http://127.0.0.1:{port}" in output


def _demo_exit(*options: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "demo", *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--meters", "0"), "--meters"),
        (("--days", "-3"), "--days"),
        (("--meters", "3", "--live-meters", "5"), "--live-meters"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, options: tuple[str, ...], named: str) -> None:
    completed = _demo_exit(*options, "--data-dir", str(tmp_path / "demo"))
    assert completed.returncode == 2, completed.stderr
    assert named in completed.stderr
    assert not (tmp_path / "demo").exists()  # refused before anything ran


def test_a_port_in_use_is_refused_before_the_run(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        completed = _demo_exit("--serve", "--port", str(port), "--data-dir", str(tmp_path / "demo"))
    assert completed.returncode == 2
    assert f"--port={port}" in completed.stderr
    assert time.monotonic() - started < 30  # not after a whole simulated month
    assert not (tmp_path / "demo").exists()


def test_a_directory_the_demo_did_not_make_is_left_alone(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    completed = _demo_exit("--meters", "2", "--days", "1", "--data-dir", str(tmp_path))
    assert completed.returncode == 2
    assert "--data-dir" in completed.stderr
    assert precious.read_text() == "keep me"


def test_bad_start_day_names_the_option(tmp_path: Path) -> None:
    completed = _demo_exit(
        "--meters", "2", "--days", "1", "--start", "2024-13-01", "--data-dir", str(tmp_path)
    )
    assert completed.returncode == 2
    assert "start='2024-13-01'" in completed.stderr


def test_bad_configuration_file_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("timezone = 'Atlantis/Capital'\n")
    completed = _demo_exit("--config", str(config), "--data-dir", str(tmp_path / "demo"))
    assert completed.returncode == 2
    assert "timezone" in completed.stderr
    assert "next:" in completed.stderr


def test_zero_meters_is_a_usage_error() -> None:
    result = runner.invoke(app, ["demo", "--meters", "0"])
    assert result.exit_code == 2
