"""Grid analytics over the REST API: who may run and read them, the problems they answer,
and a run on seeded data scored against what the simulator injected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from meterstack.analytics import analyse
from meterstack.api import create_app
from meterstack.sim.grid import GridScenario, generate_grid
from tests.analytics.test_from_store import write_scenario

from .conftest import NOW, AnchoredClock, Api, settings_for
from .test_authorisation import assert_problem

DAYS = 8
# A fixed period (the simulated weather follows the date): the runs name it explicitly.
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=DAYS)


@pytest.fixture(scope="module")
def scenario() -> GridScenario:
    return generate_grid(120, START, DAYS, seed=15, outages_per_week=5)


@pytest.fixture
def grid(api: Api, tmp_path: Path, scenario: GridScenario) -> Iterator[tuple[Api, TestClient]]:
    """The same stores and logins, served by an app that was given the network."""
    write_scenario(scenario, api.store, api.engine)
    app = create_app(
        settings_for(tmp_path),
        engine=api.engine,
        store=api.store,
        clock=AnchoredClock(),
        run_webhooks=False,
        network=scenario.network,
    )
    with TestClient(app) as client:
        yield api, client


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def period(**extra: object) -> dict[str, object]:
    return {"start": START.isoformat(), "end": END.isoformat(), **extra}


def test_only_admins_and_operators_see_grid_analytics(grid: tuple[Api, TestClient]) -> None:
    api, client = grid
    for who in ("vendor", "alice"):
        body = assert_problem(client.get("/api/v1/analytics/report", headers=api.as_(who)), 403)
        assert "admin or operator" in body["detail"]
        assert_problem(client.post("/api/v1/analytics/run", headers=api.as_(who)), 403)
        assert_problem(client.get("/api/v1/analytics/report/outages", headers=api.as_(who)), 403)
    assert_problem(client.get("/api/v1/analytics/report"), 401)
    assert_problem(client.post("/api/v1/analytics/run"), 401)
    # Before any run: a 404 that says how to make one.
    body = assert_problem(client.get("/api/v1/analytics/report", headers=api.as_("admin")), 404)
    assert "/api/v1/analytics/run" in body["detail"]


def test_without_a_network_model_a_run_says_how_to_start_the_server(api: Api) -> None:
    body = assert_problem(
        api.client.post("/api/v1/analytics/run", headers=api.as_("operator")), 409
    )
    assert "--network FILE" in body["detail"]


def test_a_run_on_seeded_data_finds_the_injected_outages_and_thieves(
    grid: tuple[Api, TestClient], scenario: GridScenario, tmp_path: Path
) -> None:
    api, client = grid
    s, net = scenario, scenario.network
    response = client.post("/api/v1/analytics/run", params=period(), headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["period"] == {
        "start": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": END.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "interval_s": 1800,
    }
    assert report["generated_by"] == "user:operator"
    assert report["network"]["meters"] == 120

    # Every injected outage, on each of its transformers, at its start and end.
    assert s.outages
    outages = report["outages"]
    assert report["totals"]["outages"] == len(outages)
    for truth in s.outages:
        names = {net.transformers[t] for t in np.unique(net.meter_transformer[truth.meters])}
        hits = [
            o
            for o in outages
            if o["transformer"] in names and abs(seconds(o["start"]) - truth.start) < 10
        ]
        assert len(hits) == len(names)
        assert all(abs(seconds(o["end"]) - truth.end) < 10 for o in hits)
    assert report["indices"]["saifi"] > 0

    # The thieves lead the inspection list, each with its reasons.
    thieves = {net.meters[i] for i in s.thieves}
    suspects = client.get(
        "/api/v1/analytics/report/inspection",
        params={"page_size": 1000},
        headers=api.as_("admin"),
    ).json()
    listed = [row["serial"] for row in suspects["items"]]
    assert suspects["total"] == len(listed) == report["totals"]["inspection"]
    assert len(thieves & set(listed)) >= 0.8 * len(thieves)
    assert len(thieves & set(listed)) >= 0.8 * len(listed)
    # ... the same list as the simulator's own arrays give, read through no store.
    direct = analyse(
        net,
        interval_s=s.interval_s,
        customer_wh=s.customer_wh,
        export_wh=s.export_wh,
        check_wh=s.check_wh,
        voltage_v=s.voltage_v,
        power_events=s.power_events,
        last_heard=s.last_heard,
        as_of=s.as_of,
        fraud_events=s.fraud_events,
    )
    assert listed == [suspect.serial for suspect in direct.inspection.suspects]  # type: ignore[union-attr]
    assert all(row["reasons"] for row in suspects["items"])

    # Pages of a section follow each other, with links.
    first = client.get(
        "/api/v1/analytics/report/inspection",
        params={"page": 1, "page_size": 2},
        headers=api.as_("admin"),
    )
    second = client.get(first.json()["links"]["next"], headers=api.as_("admin")).json()
    assert [r["serial"] for r in first.json()["items"] + second["items"]] == listed[:4]
    assert 'rel="next"' in first.headers["Link"]
    assert_problem(client.get("/api/v1/analytics/report/nonsense", headers=api.as_("admin")), 404)

    # The report stays: GET answers it, cut to the preview asked for.
    latest = client.get(
        "/api/v1/analytics/report", params={"preview": 1}, headers=api.as_("admin")
    ).json()
    assert latest["indices"] == report["indices"]
    assert len(latest["inspection"]) == 1
    assert latest["totals"] == report["totals"]
    # ... also for a server started afresh on the same data directory.
    fresh = create_app(
        settings_for(tmp_path), engine=api.engine, store=api.store, run_webhooks=False
    )
    with TestClient(fresh) as other:
        again = other.get("/api/v1/analytics/report", headers=api.as_("admin")).json()
    assert again["indices"] == report["indices"]


def test_bad_periods_are_refused_naming_the_field(grid: tuple[Api, TestClient]) -> None:
    api, client = grid
    staff = api.as_("admin")
    backwards = {"start": END.isoformat(), "end": START.isoformat()}
    body = assert_problem(
        client.post("/api/v1/analytics/run", params=backwards, headers=staff), 422
    )
    assert body["field"] == "end"
    body = assert_problem(client.post("/api/v1/analytics/run", json=backwards, headers=staff), 422)
    assert body["field"] == "end"
    naive = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
    body = assert_problem(client.post("/api/v1/analytics/run", json=naive, headers=staff), 422)
    assert body["field"] == "start"
    body = assert_problem(
        client.post("/api/v1/analytics/run", params={"start": "yesterday"}, headers=staff), 422
    )
    assert body["errors"][0]["field"].endswith("start")
    too_long = {"start": (END - timedelta(days=500)).isoformat(), "end": END.isoformat()}
    assert_problem(client.post("/api/v1/analytics/run", json=too_long, headers=staff), 422)
    # A JSON body is read as well as the query.
    one_day = {"start": (END - timedelta(days=1)).isoformat(), "end": END.isoformat()}
    response = client.post("/api/v1/analytics/run", json=one_day, headers=staff)
    assert response.status_code == 200, response.text
    assert response.json()["period"]["start"] == "2026-03-09T00:00:00Z"
    # Without dates: the 28 days up to the app's clock.
    response = client.post("/api/v1/analytics/run", headers=staff)
    assert response.status_code == 200, response.text
    assert seconds(response.json()["period"]["end"]) >= NOW.timestamp()
