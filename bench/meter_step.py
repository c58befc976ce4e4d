"""Benchmark: meter steps per second of the device model, and meter-days per second of the
vectorised load-shape simulator.

Prints one JSON line. Each figure comes with a floor measured in the same run, so the
ratio holds on a noisy machine:

* the device model is compared with a bare Python loop that only builds the same
  measurements and integrates energy (what any meter model must at least do);
* the simulator is compared with drawing the same number of float32 normals with numpy
  (its data volume at the speed of the random generator).

Usage: python bench/meter_step.py [--steps N] [--meters N] [--days N]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from meterstack.meter import (
    LimiterConfig,
    Measurement,
    Meter,
    MeterConfig,
    PrepaidConfig,
)
from meterstack.sim.loadshapes import generate_load_shapes
from meterstack.sim.scenario import standard_tou

START = datetime(2024, 1, 1, tzinfo=UTC)


def _config() -> MeterConfig:
    return MeterConfig(
        serial="BENCH001",
        timezone="Europe/London",
        tou=standard_tou(),
        prepaid=PrepaidConfig(
            price_per_kwh={1: Decimal("0.12"), 2: Decimal("0.28")},
            initial_credit=Decimal(10**9),
            standing_charge_per_day=Decimal("0.30"),
        ),
        limiter=LimiterConfig(threshold_w=15_000),
    )


def _measurements(count: int, step: timedelta) -> list[Measurement]:
    rng = np.random.default_rng(1)
    watts = rng.uniform(100, 4000, count).tolist()
    return [
        Measurement(START + (k + 1) * step, (230.0,), (w / 230.0,), (w,), (0.2 * w,))
        for k, w in enumerate(watts)
    ]


def bench_meter(steps: int, step: timedelta) -> float:
    measurements = _measurements(steps, step)
    meter = Meter(_config(), commissioned_at=START)
    started = time.perf_counter()
    for measurement in measurements:
        meter.step(measurement)
    return steps / (time.perf_counter() - started)


def bench_bare_loop(steps: int, step: timedelta) -> float:
    """Build the same measurements and integrate energy: the floor of any meter model."""
    rng = np.random.default_rng(1)
    watts = rng.uniform(100, 4000, steps).tolist()
    seconds = step.total_seconds()
    started = time.perf_counter()
    energy = 0.0
    for k, w in enumerate(watts):
        measurement = Measurement(START + (k + 1) * step, (230.0,), (w / 230.0,), (w,), (0.2 * w,))
        energy += sum(measurement.active_power_w) * seconds / 3600.0
    return steps / (time.perf_counter() - started)


def bench_simulator(meters: int, days: int) -> tuple[float, float]:
    started = time.perf_counter()
    shapes = generate_load_shapes(meters, START, days, seed=7, timezone="Europe/London")
    elapsed = time.perf_counter() - started
    values = shapes.n_meters * shapes.n_intervals
    started = time.perf_counter()
    np.random.default_rng(7).standard_normal(values, dtype=np.float32)
    floor = time.perf_counter() - started
    return meters * days / elapsed, elapsed / floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="device-model steps per case")
    parser.add_argument("--meters", type=int, default=5_000, help="simulated meters")
    parser.add_argument("--days", type=int, default=31, help="simulated days")
    args = parser.parse_args()
    one_second = bench_meter(args.steps, timedelta(seconds=1))
    half_hour = bench_meter(args.steps // 10, timedelta(minutes=30))
    bare = bench_bare_loop(args.steps, timedelta(seconds=1))
    meter_days, over_floor = bench_simulator(args.meters, args.days)
    print(
        json.dumps(
            {
                "benchmark": "meter_step",
                "meter_steps_per_s": round(one_second),
                "meter_steps_per_s_30min_steps": round(half_hour),
                "bare_loop_steps_per_s": round(bare),
                "meter_vs_bare_loop": round(bare / one_second, 2),
                "sim_interval_days_per_s": round(meter_days),
                "sim_intervals_per_s": round(meter_days * 48),
                "sim_vs_rng_floor": round(over_floor, 2),
                "sim_size": f"{args.meters} meters x {args.days} days x 30 min",
            }
        )
    )


if __name__ == "__main__":
    main()
