"""Benchmark: meter-months rated per second, and the per-meter speed ratio to NREL PySAM.

One tariff, given as a URDB rate object so that both engines read the same definition:
time of use with three periods, three monthly energy blocks in each, time-of-use demand
(three periods) and flat demand on a 30-minute window, a fixed monthly charge. Load: the
project's fleet simulator (residential, commercial and industrial meters), 30-min data.

What is timed
-------------
ours
    ``rate_with_plan`` on chunks of meters of one month of 30-min data (1488 intervals):
    input checks, energy by period and block, demand peaks, every charge component, per
    meter and cycle, as floats. The plan (calendar, periods, runs, demand windows: what no
    meter changes) is built once per tariff and interval grid and timed on its own line;
    load generation is not timed. One process with one BLAS thread ("one core"), then the
    same work split over ``--processes`` worker processes (wall clock, all of them).
PySAM
    Per meter, the whole path a caller pays to bill one meter with PySAM: create the
    Utilityrate5 model, assign the tariff (converted from URDB once, outside the timing, as
    our plan is), assign the meter's year of load and zero generation, execute, read the
    monthly bill outputs. PySAM bills only whole years (8760 x steps records), so its time
    per meter-month is its time per meter-year / 12. The median over a sample of meters.

The ratio is PySAM's seconds per meter-month over ours on one core. On the sampled meters
our engine is also run in PySAM-compatible mode (``rate_pysam``) and its monthly charges are
compared with PySAM's to the cent; the check is printed.

Prints JSON lines. ``python bench/billing.py [--meter-months N] [--processes P]
[--pysam-sample S]``; ``--meter-months 1000000`` is the issue's full run.
"""

from __future__ import annotations

import os

# One BLAS thread per process: "one core" must mean one core.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from meterstack.sim.loadshapes import generate_load_shapes  # noqa: E402
from meterstack.tariff.plan import RatingPlan, plan_rating  # noqa: E402
from meterstack.tariff.pysam_compat import rate_pysam  # noqa: E402
from meterstack.tariff.rating import rate_with_plan  # noqa: E402
from meterstack.tariff.segments import compiled_segment_pass  # noqa: E402
from meterstack.tariff.urdb import tariff_from_urdb  # noqa: E402

STEP_H = 0.5
MONTH_START = datetime(2024, 3, 1, tzinfo=UTC)  # 31 days: 1488 intervals
PYSAM_YEAR = datetime(2018, 1, 1, tzinfo=UTC)  # a Monday of a 365-day year, as PySAM assumes


def bench_rate() -> dict[str, Any]:
    """The benchmark tariff as a URDB rate object (fresh lists: PySAM's converter edits)."""
    weekday = [[0] * 7 + [1] * 10 + [2] * 3 + [1] * 2 + [0] * 2 for _ in range(12)]
    weekend = [[0] * 24 for _ in range(12)]
    blocks = (1000.0, 10000.0)
    prices = ((0.071, 0.066, 0.060), (0.112, 0.104, 0.095), (0.186, 0.171, 0.158))
    return {
        "name": "bench TOU 3 periods x 3 blocks, TOU and flat demand",
        "energyratestructure": [
            [{"max": blocks[0], "rate": p[0]}, {"max": blocks[1], "rate": p[1]}, {"rate": p[2]}]
            for p in prices
        ],
        "energyweekdayschedule": weekday,
        "energyweekendschedule": weekend,
        "demandratestructure": [[{"rate": 0.0}], [{"rate": 4.0}], [{"rate": 16.5}]],
        "demandweekdayschedule": [row[:] for row in weekday],
        "demandweekendschedule": [row[:] for row in weekend],
        "flatdemandstructure": [[{"rate": 7.2}]],
        "flatdemandmonths": [0] * 12,
        "fixedchargefirstmeter": 45.0,
        "fixedchargeunits": "$/month",
        "demandwindow": 30,
        "dgrules": "Net Billing Instantaneous",
    }


def fleet_kwh(n_meters: int, start: datetime, days: int, seed: int) -> np.ndarray:
    """Imported energy (M, T) [kWh] of a simulated fleet, 30-min intervals.

    Rounded to 1/128 kWh (1/64 kW) so that PySAM's float32 inputs hold the same numbers.
    """
    shapes = generate_load_shapes(n_meters, start, days, interval_s=1800, seed=seed)
    kwh = shapes.import_wh.astype(np.float64) / 1000.0
    rounded: np.ndarray = np.round(kwh * 128.0) / 128.0
    return rounded


def _rate_share(
    plan: RatingPlan,
    block: np.ndarray,
    meter_months: int,
    chunk: int,
    compiled: bool | None = None,
) -> float:
    done = 0
    start = time.perf_counter()
    while done < meter_months:
        n = min(chunk, meter_months - done)
        first = done % block.shape[0]
        n = min(n, block.shape[0] - first)
        rate_with_plan(plan, block[first : first + n], compiled=compiled)
        done += n
    return time.perf_counter() - start


_SHARED: dict[str, Any] = {}


def _worker(barrier: Any, results: Any, share: int, chunk: int) -> None:
    barrier.wait()
    cpu = time.process_time()
    _rate_share(_SHARED["plan"], _SHARED["block"], share, chunk)
    results.put(time.process_time() - cpu)


def rate_in_processes(
    plan: RatingPlan, block: np.ndarray, meter_months: int, chunk: int, processes: int
) -> tuple[float, list[float]]:
    """Wall-clock seconds for ``processes`` forked workers to rate ``meter_months``, and
    the CPU seconds each worker got (less than the wall time when others share the cores).
    """
    _SHARED.update(plan=plan, block=block)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    shares = [meter_months // processes + (i < meter_months % processes) for i in range(processes)]
    workers = [
        ctx.Process(target=_worker, args=(barrier, results, share, chunk)) for share in shares
    ]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    cpu = [results.get() for _ in workers]
    elapsed = time.perf_counter() - start
    for w in workers:
        w.join()
    return elapsed, cpu


def pysam_bills(
    rates: dict[str, Any], load_kwh: np.ndarray
) -> tuple[list[float], list[float], np.ndarray]:
    """Per meter: full-path and execute-only seconds, and the (M, 12) monthly bills."""
    import PySAM.Utilityrate5 as Ur5

    full, execute_only, totals = [], [], []
    for row in load_kwh:
        start = time.perf_counter()
        model = Ur5.new()
        model.ElectricityRates.assign(rates)
        model.ElectricityRates.ur_metering_option = 2
        model.ElectricityRates.rate_escalation = [0]
        model.Lifetime.analysis_period = 1
        model.Lifetime.system_use_lifetime_output = 0
        model.Lifetime.inflation_rate = 0
        model.SystemOutput.degradation = [0]
        model.Load.load = (row / STEP_H).tolist()
        model.SystemOutput.gen = [0.0] * row.shape[0]
        before = time.perf_counter()
        model.execute()
        after = time.perf_counter()
        bill = np.array(model.Outputs.utility_bill_w_sys_ym)[1]
        full.append(time.perf_counter() - start)
        execute_only.append(after - before)
        totals.append(bill)
    return full, execute_only, np.array(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meter-months", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=2048, help="meters per call")
    parser.add_argument("--fleet", type=int, default=4096, help="distinct simulated meters")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pysam-sample", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved ratio rounds")
    parser.add_argument("--round-meter-months", type=int, default=10_000)
    parser.add_argument("--year-meters", type=int, default=256, help="meters rated for a year")
    args = parser.parse_args()

    rate_doc = bench_rate()
    tariff = tariff_from_urdb(copy.deepcopy(rate_doc))
    block = fleet_kwh(min(args.fleet, args.meter_months), MONTH_START, 31, seed=1)
    ends = np.datetime64("2024-03-01T00:30") + np.arange(block.shape[1]) * np.timedelta64(30, "m")
    t0 = time.perf_counter()
    plan = plan_rating(tariff, ends)
    plan_s = time.perf_counter() - t0
    rate_with_plan(plan, block[: args.chunk])  # warm-up: caches, first allocations

    cpu_start = time.process_time()
    one = _rate_share(plan, block, args.meter_months, args.chunk)
    one_cpu = time.process_time() - cpu_start
    ours_s = one / args.meter_months
    print(
        json.dumps(
            {
                "bench": "billing",
                "tariff": "TOU 3 periods x 3 blocks + TOU and flat demand (30 min), fixed",
                "data": "30-min, 1488 intervals per meter-month",
                "path": "compiled" if compiled_segment_pass() is not None else "numpy",
                "meter_months": args.meter_months,
                "processes": 1,
                "seconds": round(one, 3),
                "cpu_seconds": round(one_cpu, 3),
                "meter_months_per_s": round(args.meter_months / one),
                "s_per_meter_month": ours_s,
                "plan_s_once_per_grid": round(plan_s, 4),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )
    numpy_n = min(args.meter_months, 50_000)
    rate_with_plan(plan, block[: args.chunk], compiled=False)
    numpy_s = _rate_share(plan, block, numpy_n, args.chunk, compiled=False)
    print(
        json.dumps(
            {
                "bench": "billing",
                "path": "numpy (no compiled kernels)",
                "meter_months": numpy_n,
                "processes": 1,
                "seconds": round(numpy_s, 3),
                "meter_months_per_s": round(numpy_n / numpy_s),
                "s_per_meter_month": numpy_s / numpy_n,
            }
        )
    )
    # The same engine on year-long data, the shape PySAM rates (12 cycles per meter).
    year_block = fleet_kwh(args.year_meters, PYSAM_YEAR, 365, seed=3)
    year_ends = np.datetime64("2018-01-01T00:30") + np.arange(year_block.shape[1]) * np.timedelta64(
        30, "m"
    )
    year_plan = plan_rating(tariff, year_ends)
    year_result = rate_with_plan(year_plan, year_block)  # warm-up
    year_times = []
    for _ in range(3):
        start = time.perf_counter()
        rate_with_plan(year_plan, year_block)
        year_times.append(time.perf_counter() - start)
    year_s = min(year_times) / year_block.shape[0] / 12
    print(
        json.dumps(
            {
                "bench": "billing",
                "data": "30-min, one 365-day year per meter (17520 intervals, 12 cycles)",
                "meters": int(year_block.shape[0]),
                "cycles": len(year_result.cycle_labels),
                "processes": 1,
                "s_per_meter_month": year_s,
                "timed": "best of 3 calls",
            }
        )
    )
    if args.processes > 1:
        wall, cpus = rate_in_processes(plan, block, args.meter_months, args.chunk, args.processes)
        print(
            json.dumps(
                {
                    "bench": "billing",
                    "meter_months": args.meter_months,
                    "processes": args.processes,
                    "seconds": round(wall, 3),
                    "cpu_seconds_per_process": [round(c, 3) for c in cpus],
                    "meter_months_per_s": round(args.meter_months / wall),
                    "projected_s_for_1m": round(wall * 1_000_000 / args.meter_months, 2),
                    "goal": "1,000,000 meter-months in under 60 s on 2 cores",
                    "goal_met": wall * 1_000_000 / args.meter_months < 60,
                    "load_average_1min": round(os.getloadavg()[0], 2),
                }
            )
        )

    try:
        import PySAM.UtilityRateTools as Urt
    except ImportError:
        print(json.dumps({"bench": "pysam_baseline", "skipped": "nrel-pysam is not installed"}))
        return
    sample = fleet_kwh(args.pysam_sample, PYSAM_YEAR, 365, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rates = Urt.URDBv8_to_ElectricityRates(copy.deepcopy(rate_doc))
    pysam_bills(rates, sample[:1])  # warm-up: loading the library
    # Interleaved rounds, so that both sides meet the same load on a shared machine: each
    # round times our engine on --round-meter-months and PySAM on its share of the sample.
    full: list[float] = []
    execute_only: list[float] = []
    bills = []
    ours_rounds: list[float] = []
    ratios: list[float] = []
    numpy_ratios: list[float] = []
    numpy_round = max(args.round_meter_months // 4, 1)
    for part in np.array_split(np.arange(args.pysam_sample), args.rounds):
        if not part.size:
            continue
        ours_r = _rate_share(plan, block, args.round_meter_months, args.chunk)
        ours_r /= args.round_meter_months
        numpy_r = _rate_share(plan, block, numpy_round, args.chunk, compiled=False)
        numpy_r /= numpy_round
        full_r, execute_r, bills_r = pysam_bills(rates, sample[part])
        full += full_r
        execute_only += execute_r
        bills.append(bills_r)
        ours_rounds.append(ours_r)
        ratios.append(statistics.median(full_r) / 12 / ours_r)
        numpy_ratios.append(statistics.median(full_r) / 12 / numpy_r)
    theirs = np.concatenate(bills)
    pysam_s = statistics.median(full) / 12
    ratio = statistics.median(ratios)
    print(
        json.dumps(
            {
                "bench": "pysam_baseline",
                "sample_meters": args.pysam_sample,
                "rounds": len(ratios),
                "pysam_timed": "new model + assign tariff + assign load + execute + read "
                "monthly bills, per meter-year / 12, median",
                "ours_timed": "rate_with_plan per meter-month, one process, one BLAS thread",
                "pysam_s_per_meter_month": pysam_s,
                "pysam_execute_only_s_per_meter_month": statistics.median(execute_only) / 12,
                "ours_s_per_meter_month": statistics.median(ours_rounds),
                "speed_ratio_per_meter": round(ratio, 1),
                "speed_ratio_rounds": [round(r, 1) for r in ratios],
                "speed_ratio_per_meter_numpy_path": round(statistics.median(numpy_ratios), 1),
                "goal": "at least 100x PySAM per meter",
                "goal_met": ratio >= 100,
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )
    ours = rate_pysam(tariff, sample, None).total
    cents_ours = np.round(ours * 100).astype(np.int64)
    cents_theirs = np.round(theirs * 100).astype(np.int64)
    print(
        json.dumps(
            {
                "bench": "pysam_check",
                "what": "monthly totals, our PySAM-compatible mode vs PySAM, same loads",
                "meters": args.pysam_sample,
                "months": int(cents_ours.size),
                "months_equal_to_the_cent": int((cents_ours == cents_theirs).sum()),
                "max_abs_difference": float(np.abs(ours - theirs).max()),
                "equal_to_the_cent": bool((cents_ours == cents_theirs).all()),
            }
        )
    )


if __name__ == "__main__":
    main()
