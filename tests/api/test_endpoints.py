"""The API's operations end to end: vending, tokens, tariffs, bills, readings for charts,
alarms, commands, write-back, smart prepay, and the ``serve`` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.sts import MeterPan, MeterRecord, TokenIssuer, VendingKey
from meterstack.vending import StsParameters

from .conftest import VENDING_KEY, Api
from .test_authorisation import assert_problem


def test_vend_reprint_reverse_and_balanced_books(api: Api) -> None:
    seller = api.as_("vendor")
    first = api.client.post(
        "/api/v1/vends", json={"request_id": "e1", "meter": "MA1", "amount": "100"}, headers=seller
    )
    assert first.status_code == 201
    vend = first.json()
    assert vend["kwh"] == "91.4"  # 50 kWh free basic + 100 / (2.10 * 1.15) rounded down
    lines = {line["component"]: line for line in vend["receipt"]["lines"]}
    assert lines["free_basic"]["kwh"] == "50"
    assert lines["tax"]["amount"] == "13.04"
    # the token decodes under the meter's key to the kWh sold
    record = StsParameters("600727", "00000000001", "123456", "01", 1).record()
    issuer = TokenIssuer(VendingKey.from_hex(VENDING_KEY), "Africa/Johannesburg")
    decoded = issuer.decode(record, vend["token"])
    assert decoded.crc_ok
    assert decoded.token.tid == vend["tid"]  # type: ignore[attr-defined]
    other = MeterRecord(MeterPan("600727", "00000000017"), record.keys)
    assert not issuer.decode(other, vend["token"]).crc_ok
    quote = api.client.post(
        "/api/v1/vend-quotes", json={"meter": "MA1", "kwh": "10"}, headers=seller
    )
    # 10 kWh in block 2: 21.00 + VAT 3.15, less the 0.02 change carried from the first vend
    assert quote.json()["tendered"] == "24.13"
    reprint = api.client.post(f"/api/v1/vends/{vend['id']}/reprint", headers=seller).json()
    assert (reprint["prints"], reprint["token"]) == (2, vend["token"])
    reversed_ = api.client.post(
        f"/api/v1/vends/{vend['id']}/reverse",
        json={"reason": "wrong meter"},
        headers=api.as_("operator"),
    ).json()
    assert reversed_["status"] == "reversed"
    account = api.client.get(
        f"/api/v1/accounts/{api.ids['acc_a']}", headers=api.as_("alice")
    ).json()
    assert account["month_kwh_sold"] == "0"
    books = api.client.get("/api/v1/ledger/trial-balance", headers=api.as_("admin")).json()
    assert books["balanced"]
    assert books["total"] == "0.00"
    vendor = api.client.get(f"/api/v1/vendors/{api.ids['vendor']}", headers=seller).json()
    assert vendor["float_balance"] == "10000.00"
    day = reversed_["vended_at"][:10]
    report = api.client.post(
        "/api/v1/reconciliations",
        json={"vendor_id": api.ids["vendor"], "day": day},
        headers=api.as_("operator"),
    ).json()
    assert report["balanced"]
    assert api.client.get("/api/v1/reconciliations", headers=api.as_("admin")).json()["total"] == 1


def test_management_tokens(api: Api) -> None:
    staff = api.as_("operator")
    made = api.client.post(
        "/api/v1/tokens/management", json={"meter": "MA1", "kind": "clear_tamper"}, headers=staff
    )
    assert made.status_code == 201
    second = api.client.post(
        "/api/v1/tokens/management",
        json={"meter": "MA1", "kind": "maximum_power_limit", "value": 4000},
        headers=staff,
    ).json()
    assert second["tid"] == made.json()["tid"] + 1
    assert len(second["token"]) == 20
    assert_problem(
        api.client.post(
            "/api/v1/tokens/management",
            json={"meter": "MA1", "kind": "maximum_power_limit"},
            headers=staff,
        ),
        422,
    )


def test_tariffs_templates_blocks_and_composition(api: Api) -> None:
    staff = api.as_("operator")
    listed = api.client.get("/api/v1/tariffs?page_size=100", headers=api.as_("alice")).json()
    assert listed["total"] >= 57
    blocks = api.client.get("/api/v1/tariff-blocks", headers=staff).json()
    assert {b["kind"] for b in blocks} >= {"time_of_use", "free_basic_electricity"}
    composed = api.client.post(
        "/api/v1/tariff-compositions",
        json={
            "name": "village-step",
            "currency": "ZAR",
            "timezone": "Africa/Johannesburg",
            "save": True,
            "blocks": [
                {"kind": "inclining_blocks", "params": {"limits": [100], "rates": [1.5, 2.5]}},
                {"kind": "free_basic_electricity", "params": {"kwh": 20}},
                {"kind": "fixed_monthly", "params": {"amount": 30, "name": "service"}},
                {"kind": "percent_tax", "params": {"percent": 15, "name": "VAT"}},
            ],
        },
        headers=staff,
    )
    assert composed.status_code == 200, composed.text
    assert composed.json()["document"]["prepaid"]["free_basic_kwh"] == 20
    saved = api.client.get("/api/v1/tariffs/village-step", headers=staff).json()
    assert saved["source"] == "saved"
    tou = api.client.post(
        "/api/v1/tariff-compositions",
        json={
            "name": "tou",
            "blocks": [
                {
                    "kind": "time_of_use",
                    "params": {
                        "default": "off",
                        "periods": {
                            "off": {"rate": 0.1},
                            "peak": {"rate": 0.4, "hours": ["17-21"]},
                        },
                    },
                }
            ],
        },
        headers=staff,
    )
    assert tou.status_code == 200, tou.text
    assert_problem(
        api.client.post(
            "/api/v1/tariff-compositions",
            json={"name": "bad", "blocks": [{"kind": "percent_tax", "params": {"percent": 5}}]},
            headers=staff,
        ),
        422,
    )
    # an account on the composed tariff sells through its blocks
    customer = api.client.post("/api/v1/customers", json={"name": "Dora"}, headers=staff).json()
    account = api.client.post(
        "/api/v1/accounts",
        json={
            "customer_id": customer["id"],
            "number": "ACC-D",
            "mode": "meter",
            "tariff": "village-step",
        },
        headers=staff,
    ).json()
    meter = api.client.post(
        "/api/v1/meters",
        json={
            "serial": "MD1",
            "account_id": account["id"],
            "sts": {"drn": "00000000002", "supply_group_code": "123456"},
        },
        headers=staff,
    )
    assert meter.status_code == 201, meter.text
    vend = api.client.post(
        "/api/v1/vends",
        json={"request_id": "d1", "meter": "MD1", "amount": "100"},
        headers=api.as_("vendor"),
    ).json()
    # fixed 30 * 1.15 = 34.50; 65.50 / (1.5 * 1.15) = 37.97 kWh -> 37.9; plus 20 kWh free
    assert vend["kwh"] == "57.9"


def test_bills_for_an_account(api: Api) -> None:
    month = time.strftime("%Y-%m", time.gmtime())
    run = api.client.post(
        f"/api/v1/accounts/{api.ids['acc_b']}/bills",
        json={"month": month},
        headers=api.as_("admin"),
    )
    assert run.status_code == 201, run.text
    bill = run.json()
    kwh = bill["document"]["kwh"]
    assert kwh > 0
    assert Decimal(bill["total"]) == Decimal(str(round(kwh * 2.3, 2)))  # 2.30/kWh below 600 kWh
    assert api.client.get(f"/api/v1/bills/{bill['id']}", headers=api.as_("bob")).status_code == 200
    assert_problem(api.client.get(f"/api/v1/bills/{bill['id']}", headers=api.as_("alice")), 403)
    assert api.client.get("/api/v1/bills", headers=api.as_("alice")).json()["total"] == 0


def test_chart_series_and_habits(api: Api) -> None:
    alice = api.as_("alice")
    raw = api.client.get("/api/v1/meters/MA1/consumption?resolution=30min", headers=alice).json()
    assert {p["kwh"] for p in raw["series"]} == {0.5}
    daily = api.client.get("/api/v1/meters/MA1/consumption?resolution=day", headers=alice).json()
    assert sum(p["kwh"] for p in daily["series"]) == 72.0  # 3 days at 1 kW
    monthly = api.client.get("/api/v1/meters/MA1/consumption?resolution=month", headers=alice)
    assert sum(p["kwh"] for p in monthly.json()["series"]) == 72.0
    habits = api.client.get("/api/v1/meters/MA1/habits", headers=alice).json()
    assert habits["kwh_per_day"] == 24.0  # 1 kW all day
    assert habits["by_hour_kwh"] == [1.0] * 24
    assert habits["similar_homes"]["count"] == 1  # MB1, at 2 kW
    assert habits["similar_homes"]["median_kwh_per_day"] == 48.0
    assert habits["similar_homes"]["ratio_to_median"] == 0.5
    assert habits["similar_homes"]["percentile"] == 0.0
    intervals = api.client.get("/api/v1/meters/MA1/intervals", headers=alice).json()
    assert len(intervals["points"]) == 96


def test_alarms_commands_writeback_and_settlement(api: Api) -> None:
    staff = api.as_("operator")
    alarm = api.client.post(
        "/api/v1/alarms", json={"meter": "MB1", "code": 42, "detail": "magnet"}, headers=staff
    ).json()
    assert api.client.get("/api/v1/alarms", headers=api.as_("bob")).json()["total"] == 1
    assert api.client.get("/api/v1/alarms", headers=api.as_("alice")).json()["total"] == 0
    acked = api.client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", headers=staff).json()
    assert acked["acknowledged_by"] == "user:operator"
    command = api.client.post(
        "/api/v1/meters/MB1/commands", json={"name": "remote_disconnect"}, headers=staff
    )
    assert command.status_code == 202
    assert command.json()["status"] == "not_sent"  # no head-end wired to this app
    written = api.client.post(
        "/api/v1/writeback",
        json={
            "inquiries": [
                {
                    "serial": "MA1",
                    "cumulative_consumption_kwh": "72",
                    "credit_unit": "kWh",
                    "total_purchased": "10",
                    "remaining_credit": "3.5",
                    "purchase_count": 1,
                }
            ]
        },
        headers=staff,
    ).json()
    assert written["readbacks"] == 1
    credit = api.client.get("/api/v1/meters/MA1/credit", headers=api.as_("alice")).json()
    assert credit["last_readback"]["remaining_credit"] == "3.5"
    sampling = api.client.get("/api/v1/sampling", headers=staff).json()
    assert sampling[0]["meters"] == ["MA1"]  # 10 kWh on the meter were never sold
    api.client.post(
        "/api/v1/vends",
        json={"request_id": "s1", "meter": "MB1", "amount": "30"},
        headers=api.as_("vendor"),
    )
    settled = api.client.post("/api/v1/prepay/settle", headers=staff).json()
    assert settled["accounts"] == 1
    notices = api.client.get(
        f"/api/v1/accounts/{api.ids['acc_b']}/notices", headers=api.as_("bob")
    ).json()
    assert [n["kind"] for n in notices["items"]] == ["disconnected"]
    overview = api.client.get("/api/v1/fleet/overview", headers=staff).json()
    assert overview["meters"]["total"] == 2
    assert overview["prepaid_supply"] == {"on": 1, "off": 1}


def test_user_command_and_serve_subprocess(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "METERSTACK_DATA_DIR": str(tmp_path / "data"),
        "METERSTACK_PASSWORD": "a long enough password",
    }
    env.pop("METERSTACK_CONFIG", None)
    result = CliRunner().invoke(app, ["user", "add", "root", "--role", "admin"], env=env)
    assert result.exit_code == 0, result.output
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from meterstack.cli import main; main()", "serve",
         "--port", str(port), "--log-level", "warning"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "root", "password": "a long enough password"},
        ).json()["access_token"]
        me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
        assert httpx.get(f"{base}/").status_code == 200
    finally:
        server.terminate()
        server.wait(10)
    key = (tmp_path / "data" / "secrets" / "vending.key").stat()
    assert oct(key.st_mode & 0o777) == "0o600"
    bad = CliRunner().invoke(app, ["serve", "--port", "70000"], env=env)
    assert bad.exit_code != 0


def test_parallel_vends_through_the_api(api: Api) -> None:
    """100 parallel POSTs, 25 request ids: one vend and one token per id, books balanced."""
    from concurrent.futures import ThreadPoolExecutor

    def sell(i: int) -> tuple[str, int, str]:
        answer = api.client.post(
            "/api/v1/vends",
            json={"request_id": f"par-{i % 25}", "meter": "MA1", "amount": str(10 + i % 25)},
            headers=api.as_("vendor"),
        )
        return f"par-{i % 25}", answer.status_code, answer.json()["token"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(sell, range(100)))
    tokens: dict[str, set[str]] = {}
    for request_id, status, digits in results:
        assert status in (200, 201)
        tokens.setdefault(request_id, set()).add(digits)
    assert len(tokens) == 25
    assert all(len(t) == 1 for t in tokens.values())
    assert sum(1 for _, status, _ in results if status == 201) == 25
    books = api.client.get("/api/v1/ledger/trial-balance", headers=api.as_("admin")).json()
    assert books["balanced"]
    sold = sum(Decimal(10 + i) for i in range(25))
    assert Decimal(books["accounts"][f"vendor:{api.ids['vendor']}:float"]) == -(
        Decimal(10000) - sold
    )
