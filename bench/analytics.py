"""Benchmark: outage, theft and power-quality analytics over a whole fleet.

Generates a network of N meters x D days of 30-min data with injected ground truth
(``meterstack.sim.grid``), then times each analysis and prints JSON lines:

* ``outages``: the simulated period's last gasps and restores, and a storm in which 20 %
  of the meters send last gasps within 60 s (10 % of them twice);
* ``theft``: the energy balance of every transformer and the ranked inspection list, with
  precision and recall against the injected thieves;
* ``pq``: EN 50160 weekly voltage statistics for every meter and transformer loading;
* ``analytics``: the total, against a floor measured in the same run: one pass that reads
  every input array once (a column sum), the least any analysis of the data must do.

Usage: python bench/analytics.py [--meters N] [--days D] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

import numpy as np

from meterstack.analytics import (
    PowerEventKind,
    PowerEvents,
    detect_theft,
    energy_balance,
    find_outages,
    transformer_loading,
    voltage_compliance,
)
from meterstack.sim.grid import generate_grid


def _emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _storm(network: object, seed: int) -> PowerEvents:
    from meterstack.analytics import NetworkModel

    assert isinstance(network, NetworkModel)
    rng = np.random.default_rng(seed)
    sizes = network.customers_per_transformer()
    order = rng.permutation(network.n_transformers)
    out = order[np.cumsum(sizes[order]) <= 0.2 * network.n_meters]
    meters = np.concatenate([network.meters_of(int(t)) for t in out])
    t0 = 1.8e9
    at = t0 + rng.uniform(0, 60, meters.size)
    again = rng.random(meters.size) < 0.1
    return PowerEvents(
        np.concatenate([meters, meters[again]]).astype(np.int32),
        np.concatenate([at, at[again]]),
        np.full(meters.size + int(again.sum()), PowerEventKind.LAST_GASP, dtype=np.int8),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    scenario = generate_grid(
        args.meters, datetime(2026, 3, 2, tzinfo=UTC), args.days, seed=args.seed
    )
    generated_s = time.perf_counter() - started
    network = scenario.network
    _emit(
        bench="analytics_data",
        meters=network.n_meters,
        transformers=network.n_transformers,
        feeders=len(network.feeders),
        days=args.days,
        intervals=scenario.customer_wh.shape[1],
        thieves=int(scenario.thieves.size),
        outages=len(scenario.outages),
        generate_s=round(generated_s, 2),
    )

    start = time.perf_counter()
    floor = (
        scenario.customer_wh.sum(axis=0, dtype=np.float32).sum()
        + scenario.export_wh.sum(axis=0, dtype=np.float32).sum()
        + scenario.voltage_v.sum(axis=0, dtype=np.float32).sum()
        + np.nansum(scenario.check_wh)
    )
    floor_s = time.perf_counter() - start
    assert np.isfinite(floor)

    start = time.perf_counter()
    report = find_outages(
        network, scenario.power_events, as_of=scenario.as_of, last_heard=scenario.last_heard
    )
    outage_s = time.perf_counter() - start
    storm = _storm(network, args.seed)
    start = time.perf_counter()
    storm_report = find_outages(network, storm, as_of=1.8e9 + 3600)
    storm_s = time.perf_counter() - start
    attributed = sum(o.meters.size for o in storm_report.outages)
    _emit(
        bench="outages",
        seconds=round(outage_s, 3),
        outages=len(report.outages),
        injected=len(scenario.outages),
        storm_seconds=round(storm_s, 3),
        storm_gasps=int(storm.meter.size),
        storm_outages=len(storm_report.outages),
        storm_meters_attributed=int(attributed),
        storm_repeats_dropped=storm_report.events_repeated,
    )

    start = time.perf_counter()
    balance = energy_balance(
        network,
        scenario.customer_wh,
        scenario.check_wh,
        scenario.interval_s,
        customer_export_wh=scenario.export_wh,
    )
    inspection = detect_theft(
        network,
        scenario.customer_wh,
        balance,
        scenario.interval_s,
        fraud_events=scenario.fraud_events,
    )
    theft_s = time.perf_counter() - start
    truth = set(scenario.thieves.tolist())
    flagged = set(np.flatnonzero(inspection.flagged).tolist())
    hits = len(truth & flagged)
    _emit(
        bench="theft",
        seconds=round(theft_s, 3),
        thieves=len(truth),
        flagged=len(flagged),
        precision=round(hits / max(len(flagged), 1), 4),
        recall=round(hits / max(len(truth), 1), 4),
    )

    start = time.perf_counter()
    compliance = voltage_compliance(scenario.voltage_v, scenario.interval_s)
    loading = transformer_loading(network, scenario.check_wh, scenario.interval_s)
    pq_s = time.perf_counter() - start
    _emit(
        bench="pq",
        seconds=round(pq_s, 3),
        non_compliant_meters=int(compliance.non_compliant_meters.size),
        overloaded_transformers=int(loading.overloaded.sum()),
    )

    total = outage_s + storm_s + theft_s + pq_s
    _emit(
        bench="analytics",
        meters=network.n_meters,
        days=args.days,
        seconds=round(total, 3),
        floor_seconds=round(floor_s, 3),
        ratio_to_floor=round(total / floor_s, 1),
        meter_days_per_s=round(network.n_meters * args.days / total),
    )


if __name__ == "__main__":
    main()
