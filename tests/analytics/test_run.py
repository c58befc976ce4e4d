"""One analytics run over a simulated grid, scored against the ground truth it injected."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.analytics.run import analyse, iso_utc
from meterstack.core.errors import InvalidInputError
from meterstack.sim.grid import GridScenario, generate_grid


@pytest.fixture(scope="module")
def scenario() -> GridScenario:
    return generate_grid(400, datetime(2026, 1, 5, tzinfo=UTC), 14, seed=3, outages_per_week=3)


def run(s: GridScenario, **changes: object) -> dict:  # type: ignore[type-arg]
    arguments: dict[str, object] = {
        "interval_s": s.interval_s,
        "customer_wh": s.customer_wh,
        "export_wh": s.export_wh,
        "check_wh": s.check_wh,
        "voltage_v": s.voltage_v,
        "power_events": s.power_events,
        "last_heard": s.last_heard,
        "as_of": s.as_of,
        "fraud_events": s.fraud_events,
    }
    arguments.update(changes)
    report = analyse(s.network, **arguments)  # type: ignore[arg-type]
    summary = report.to_dict()
    # JSON-able as it is: no NaN, no numpy scalars.
    return json.loads(json.dumps(summary, allow_nan=False))  # type: ignore[no-any-return]


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_summary_finds_the_injected_outages_thieves_and_pq_faults(
    scenario: GridScenario,
) -> None:
    s, net = scenario, scenario.network
    d = run(s)
    assert d["period"] == {
        "start": "2026-01-05T00:00:00Z",
        "end": "2026-01-19T00:00:00Z",
        "interval_s": 1800,
    }
    assert d["network"]["meters"] == 400

    # Every injected outage is in the list, on its transformer, at its start (to the
    # meters' clock error) and, once restored, with its end.
    assert len(s.outages) >= 3
    for truth in s.outages:
        transformers = {net.transformers[t] for t in np.unique(net.meter_transformer[truth.meters])}
        hits = [
            o
            for o in d["outages"]
            if o["transformer"] in transformers and abs(seconds(o["start"]) - truth.start) < 10
        ]
        assert len(hits) == len(transformers), (truth, d["outages"])
        for hit in hits:
            assert hit["open"] is False
            assert abs(seconds(hit["end"]) - truth.end) < 10
            assert hit["level"] == ("premise" if truth.level == "premise" else "transformer")

    # IEEE 1366-2012 3.1: SAIFI = customers interrupted (sustained, > 5 min) / served;
    # 3.3: MAIFI the same for momentary ones; CAIDI = SAIDI / SAIFI.
    sustained = sum(
        o["customers"] for o in d["outages"] if seconds(o["end"]) - seconds(o["start"]) > 300
    )
    momentary = sum(o["customers"] for o in d["outages"]) - sustained
    indices = d["indices"]
    assert indices["saifi"] == pytest.approx(sustained / 400, abs=1e-6)
    assert indices["maifi"] == pytest.approx(momentary / 400, abs=1e-6)
    assert indices["caidi_min"] == pytest.approx(indices["saidi_min"] / indices["saifi"], rel=1e-3)

    # The inspection list: ranked by score, each suspect with its reasons, and the big
    # thieves (at least 30 % bypassed) nearly all on it.
    listed = [row["serial"] for row in d["inspection"]]
    scores = [row["score"] for row in d["inspection"]]
    assert scores == sorted(scores, reverse=True)
    assert all(row["reasons"] for row in d["inspection"])
    thieves = {net.meters[i] for i in s.thieves}
    found = thieves & set(listed)
    assert len(found) / len(thieves) >= 0.8
    assert len(found) / len(listed) >= 0.8
    for row in d["inspection"]:
        if row["serial"] in thieves:
            truth_share = s.stolen_share[net.meters.index(row["serial"])]
            assert row["stolen_share"] == pytest.approx(truth_share, abs=0.2)

    # EN 50160: every meter on an over-voltage transformer fails a week, and its worst
    # week's share within +/-10 % is below 95 %; undersized transformers are overloaded.
    failed = {row["serial"]: row for row in d["pq"]["non_compliant"]}
    for t in s.over_voltage_transformers:
        for meter in net.meters_of(int(t)):
            row = failed[net.meters[meter]]
            assert row["within_10_pct"] < 0.95
            assert row["max_v"] > 1.1 * 230
    overloaded = {row["transformer"]: row for row in d["pq"]["overloaded"]}
    for t in s.undersized_transformers:
        row = overloaded[net.transformers[t]]
        assert row["peak_pct"] > 100 or row["hours_over"] >= 2
    assert d["pq"]["weeks"] == 2

    # The energy balance: transformers with thieves lose more than those without.
    with_thief = {net.transformers[t] for t in net.meter_transformer[s.thieves]}
    shares = {row["transformer"]: row["ntl_share"] for row in d["energy_balance"]}
    assert len(shares) == net.n_transformers
    thief_shares = [v for k, v in shares.items() if k in with_thief]
    honest_shares = [v for k, v in shares.items() if k not in with_thief]
    assert min(thief_shares) > np.median(honest_shares)


def test_a_short_period_says_what_could_not_run(scenario: GridScenario) -> None:
    s = scenario
    two_days = 96
    d = run(
        s,
        customer_wh=s.customer_wh[:, :two_days],
        export_wh=s.export_wh[:, :two_days],
        check_wh=s.check_wh[:, :two_days],
        voltage_v=s.voltage_v[:, :two_days],
        start=s.start,
    )
    assert d["period"]["start"] == iso_utc(s.start)
    assert d["pq"]["non_compliant"] == []
    assert d["pq"]["weeks"] == 0
    assert any("one complete week" in note for note in d["notes"])
    assert any("2-day windows" in note for note in d["notes"])
    d = run(s, voltage_v=None)
    assert "power quality: no voltage data" in d["notes"]


def test_bad_shapes_are_refused_naming_the_array(scenario: GridScenario) -> None:
    s = scenario
    with pytest.raises(InvalidInputError, match="check_wh"):
        run(s, check_wh=s.check_wh[:, :10])
    with pytest.raises(InvalidInputError, match="voltage_v"):
        run(s, voltage_v=s.voltage_v[:5])
    with pytest.raises(InvalidInputError, match="interval_s"):
        run(s, interval_s=7)


def test_no_voltage_during_an_outage_is_not_a_breach(scenario: GridScenario) -> None:
    """EN 50160 leaves out intervals that overlap an interruption: a meter reading 0 V
    while its transformer is out is not out of limits."""
    s = scenario
    sustained = [o for o in s.outages if o.end - o.start > 3600 and o.level != "premise"]
    assert sustained
    outage = sustained[0]
    voltage = s.voltage_v.copy()
    first = int((outage.start - s.start) // s.interval_s)
    last = int(np.ceil((outage.end - s.start) / s.interval_s))
    voltage[outage.meters, first:last] = 0.0
    failing = {row["serial"] for row in run(s, voltage_v=voltage)["pq"]["non_compliant"]}
    honest = {s.network.meters[m] for m in outage.meters} - {
        s.network.meters[m]
        for m in np.flatnonzero(np.isin(s.network.meter_transformer, s.over_voltage_transformers))
    }
    assert honest
    assert not honest & failing
    # Without the outage's events the zero readings still count as an interruption.
    events = s.power_events
    keep = ~np.isin(events.meter, outage.meters)
    silent = type(events)(events.meter[keep], events.at[keep], events.kind[keep])
    failing = {
        row["serial"]
        for row in run(s, voltage_v=voltage, power_events=silent)["pq"]["non_compliant"]
    }
    assert not honest & failing
