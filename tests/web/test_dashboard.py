"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
uvicorn server on 127.0.0.1. Log in, vend an STS token and a smart-prepay top-up, see the
balance rise on the meter page, see an alarm injected through the API appear on its own,
run the grid analytics on a simulated network and see its outages and suspects.

Outside CI a missing Chromium or Playwright skips these tests with the reason; with
``CI=true`` it fails (``.ci/run`` installs the ``chromium`` package)."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from meterstack.api import create_app, create_user
from meterstack.core.config import load_settings
from meterstack.mdm.intervals import DuckDBIntervalStore, MeterRegistration
from meterstack.mdm.operational import create_operational_engine, migrate
from meterstack.meter.events import EventCode
from meterstack.sim.grid import GridScenario, generate_grid
from meterstack.vending import StsParameters
from tests.analytics.test_from_store import write_scenario
from tests.api.conftest import hourly_load
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
TIMEOUT_MS = 15_000
# The simulated grid the Grid page analyses: a fixed week (the simulated weather follows
# the date) with injected outages and thieves.
GRID_START = datetime(2026, 3, 2, tzinfo=UTC)
GRID_DAYS = 8


def _need(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI needs it (see .ci/run)")
    pytest.skip(message)


def _playwright() -> Any:
    try:
        from playwright import sync_api
    except ImportError:
        _need("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        _need(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return sync_api


@dataclass
class Server:
    url: str
    vendor_id: int
    grid: GridScenario


def _seed(tmp: Path) -> tuple[Any, Any, Any, int, GridScenario]:
    settings = load_settings(
        None,
        data_dir=tmp / "data",
        timezone="Africa/Johannesburg",
        currency="ZAR",
        vending={"vending_key": "abababababababab"},
        api={"jwt_secret": "w" * 32, "rate_limit_per_s": 1000, "rate_limit_burst": 1000},
    )
    engine = create_operational_engine(f"sqlite:///{tmp / 'op.db'}")
    migrate(engine)
    store = DuckDBIntervalStore()
    grid = generate_grid(120, GRID_START, GRID_DAYS, seed=15, outages_per_week=5)
    write_scenario(grid, store)
    app = create_app(settings, engine=engine, store=store, network=grid.network)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store.register_meters([MeterRegistration("MA1"), MeterRegistration("MB1")])
    store.ingest_intervals(hourly_load("MA1", 3, 1.0, now))
    store.ingest_intervals(hourly_load("MB1", 3, 2.0, now))
    service = app.state.context.vending
    alice = service.create_customer("Alice", "test")
    bob = service.create_customer("Bob", "test")
    acc_a = service.open_account(
        alice, number="ACC-A", mode="meter", tariff="prepaid-fbe-50", actor="test"
    )
    acc_b = service.open_account(
        bob, number="ACC-B", mode="account", tariff="prepaid-ibt-2-block", actor="test"
    )
    service.register_meter(
        "MA1", acc_a, "test", sts=StsParameters("600727", "00000000001", "123456", "01", 1)
    )
    service.register_meter("MB1", acc_b, "test")
    vendor = service.create_vendor("Corner shop", "ZAR", "test")
    service.deposit(vendor, Decimal("10000"), "test")
    create_user(engine, "admin", PASSWORD, "admin")
    create_user(engine, "alice", PASSWORD, "customer", customer_id=alice)
    return app, engine, store, vendor, grid


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app, engine, store, vendor, grid = _seed(tmp_path_factory.mktemp("web"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    assert httpx.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
    yield Server(url, vendor, grid)
    uv.should_exit = True
    thread.join(10)
    sock.close()
    store.close()
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _playwright()
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def _log_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_selector("#login-form")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")


def _admin_token(url: str) -> str:
    answer = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}, timeout=10
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def test_log_in_shows_the_fleet(server: Server, page: Any) -> None:
    _log_in(page, server.url, "admin")
    page.wait_for_selector("#fleet-cards .card")
    assert page.locator("#who").inner_text() == "admin (admin)"
    rows = page.locator("#meters tbody tr")
    rows.first.wait_for()
    assert sorted(rows.all_inner_texts())[0].startswith("MA1")
    assert rows.count() == 2


def test_a_wrong_password_is_refused(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/")
    page.fill("#username", "admin")
    page.fill("#password", "not the password")
    page.click("#login")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text()  # the problem document's detail, shown to the user
    assert page.locator("#login-form").is_visible()


def test_vend_a_token_and_see_the_credit_rise(server: Server, page: Any) -> None:
    _log_in(page, server.url, "admin")
    page.wait_for_selector("#fleet-cards .card")

    # An STS vend: twenty digits in groups, shown on the receipt.
    page.goto(f"{server.url}/#/vend")
    page.fill("#vend-meter", "MA1")
    page.fill("#vend-amount", "100.00")
    page.select_option("#vendor-id", str(server.vendor_id))
    page.click("#vend")
    token = page.locator("#vend-token").inner_text()
    assert re.fullmatch(r"\d{20}", token.replace(" ", "").replace("-", "")), token

    # Smart prepay: the back-office balance on the meter page rises by the vend's credit.
    page.goto(f"{server.url}/#/meter/MB1")
    balance = page.locator("#credit-balance")
    balance.wait_for()
    before = Decimal(balance.inner_text().split()[0])
    page.goto(f"{server.url}/#/vend")
    page.fill("#vend-meter", "MB1")
    page.fill("#vend-amount", "50.00")
    page.select_option("#vendor-id", str(server.vendor_id))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/vends")) as answer:
        page.click("#vend")
    vend = answer.value.json()
    credit = Decimal(vend["receipt"]["credit"])
    assert Decimal(0) < credit <= Decimal("50.00")
    page.click("#vend-meter-link")
    page.wait_for_function(
        "expected => { const b = document.querySelector('#credit-balance');"
        " return b !== null && b.textContent.split(' ')[0] === expected; }",
        arg=f"{(before + credit).normalize():f}",
    )
    assert page.locator("#credit-purchased").inner_text() == "1"


def test_an_injected_tamper_alarm_appears(server: Server, page: Any) -> None:
    _log_in(page, server.url, "admin")
    page.wait_for_selector("#fleet-cards .card")
    page.goto(f"{server.url}/#/meter/MA1")
    page.wait_for_selector("#meter-alarms")
    # The consumption charts are drawn (plotly renders an SVG per chart).
    page.wait_for_selector(".chart .main-svg")
    assert page.locator(".chart .main-svg").count() >= 1
    code = int(EventCode.TERMINAL_COVER_REMOVED)
    assert page.locator(f"#meter-alarms [data-alarm-code='{code}']").count() == 0
    # Injected from outside the browser, as the head-end would: the page must pick it up
    # without a reload.
    answer = httpx.post(
        f"{server.url}/api/v1/alarms",
        json={"meter": "MA1", "code": code, "detail": "terminal cover removed"},
        headers={"Authorization": f"Bearer {_admin_token(server.url)}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    row = page.locator(f"#meter-alarms [data-alarm-code='{code}']")
    row.wait_for()
    assert "terminal cover removed" in row.inner_text()
    page.goto(f"{server.url}/#/fleet")
    page.locator(f"#alarms [data-alarm-code='{code}']").wait_for()
    assert int(page.locator("#open-alarms").inner_text()) >= 1


def test_a_customer_cannot_open_another_customers_meter(server: Server, page: Any) -> None:
    _log_in(page, server.url, "alice")
    page.wait_for_selector("text=My meters")
    assert page.locator("main tbody tr").all_inner_texts()[0].startswith("MA1")
    assert page.locator("main tbody tr").count() == 1
    page.goto(f"{server.url}/#/meter/MB1")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "MB1" in error.inner_text() or "not" in error.inner_text()


def test_run_grid_analytics_and_see_the_outage_and_the_suspect(server: Server, page: Any) -> None:
    grid, net = server.grid, server.grid.network
    # What the simulator injected: an outage of a whole transformer, and a thief whose
    # meter logged fraud events (the list shows them among its reasons).
    outage = next(o for o in grid.outages if o.level == "transformer")
    transformer = net.transformers[outage.transformer]
    thief = next(i for i in grid.thieves if any(v[i] for v in grid.fraud_events.values()))
    serial = net.meters[thief]

    _log_in(page, server.url, "admin")
    page.wait_for_selector("#fleet-cards .card")
    assert page.locator("#nav-grid").is_visible()
    page.click("#nav-grid")
    page.wait_for_selector("#grid-empty")  # no report before the first run
    page.fill("#grid-from", GRID_START.date().isoformat())
    page.fill("#grid-to", (GRID_START + timedelta(days=GRID_DAYS)).date().isoformat())
    with page.expect_response(lambda r: r.url.endswith("/api/v1/analytics/run")) as answer:
        page.click("#run-analytics")
    assert answer.value.status == 200
    row = page.locator(f"#grid-outages tr[data-transformer='{transformer}']")
    row.first.wait_for()
    assert str(outage.meters.size) in row.first.inner_text()  # its customers
    suspect = page.locator(f"#grid-inspection tr[data-serial='{serial}']")
    suspect.wait_for()
    assert "fraud events" in suspect.inner_text()
    assert "balance" in suspect.inner_text()
    assert float(page.locator("#saifi").inner_text()) > 0
    # The energy balance is drawn with plotly.
    page.wait_for_selector("[data-chart='Non-technical loss by transformer'] .main-svg")


def test_the_grid_page_is_for_staff_only(server: Server, page: Any) -> None:
    _log_in(page, server.url, "alice")
    page.wait_for_selector("text=My meters")
    assert page.locator("#nav-grid").is_hidden()
    page.goto(f"{server.url}/#/grid")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "admin or operator" in error.inner_text()
