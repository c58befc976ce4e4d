"""Run a simulated fleet through the meter model in accelerated time.

:func:`run_fleet` steps every meter of a :class:`~meterstack.sim.scenario.FleetPlan` through
its load shape, interval by interval, with the injected outages and tampering applied to
what each meter measures, and prepaid customers who react to their meter's alarms: they top
up, take emergency credit, insert the card after a low-credit trip. Meters checkpoint into
an SQLite non-volatile store, one transaction per interval for the whole chunk. Chunks of
meters run in parallel processes; the result does not depend on how many.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from meterstack.core.errors import CommandRefusedError, InvalidInputError
from meterstack.core.units import kwh
from meterstack.meter import (
    EventCode,
    LogKind,
    Measurement,
    Meter,
    MeterConfig,
    NonVolatileDatabase,
)
from meterstack.sim.loadshapes import LoadShapes
from meterstack.sim.scenario import FleetPlan, Habits, InjectionKind

ProgressCallback = Callable[[int], None]

#: Share of a polyphase load on L1, L2, L3 (a little unbalanced, as real sites are).
_PHASE_SHARES = (0.36, 0.33, 0.31)


@dataclass
class FleetSummary:
    """What happened to the fleet, added up."""

    meters: int = 0
    prepaid: int = 0
    intervals: int = 0
    steps: int = 0
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    events: Counter[str] = field(default_factory=Counter)
    events_by_log: Counter[str] = field(default_factory=Counter)
    alarms: int = 0
    disconnections: Counter[str] = field(default_factory=Counter)
    disconnected_at_end: int = 0
    top_ups: int = 0
    purchased: Decimal = Decimal(0)
    remaining_credit: Decimal = Decimal(0)
    debt: Decimal = Decimal(0)
    emergency_credit_taken: int = 0
    profile_checked: int = 0
    profile_mismatches: int = 0
    restored_checked: int = 0
    restore_mismatches: int = 0
    wall_s: float = 0.0

    def merge(self, other: FleetSummary) -> None:
        for name in (
            "meters",
            "prepaid",
            "steps",
            "import_kwh",
            "export_kwh",
            "alarms",
            "disconnected_at_end",
            "top_ups",
            "purchased",
            "remaining_credit",
            "debt",
            "emergency_credit_taken",
            "profile_checked",
            "profile_mismatches",
            "restored_checked",
            "restore_mismatches",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.intervals = max(self.intervals, other.intervals)
        self.events.update(other.events)
        self.events_by_log.update(other.events_by_log)
        self.disconnections.update(other.disconnections)

    def to_json(self) -> dict[str, Any]:
        return {
            "meters": self.meters,
            "prepaid": self.prepaid,
            "intervals": self.intervals,
            "steps": self.steps,
            "import_kwh": round(self.import_kwh, 3),
            "export_kwh": round(self.export_kwh, 3),
            "events": dict(sorted(self.events.items())),
            "events_by_log": dict(sorted(self.events_by_log.items())),
            "alarms": self.alarms,
            "disconnections": dict(sorted(self.disconnections.items())),
            "disconnected_at_end": self.disconnected_at_end,
            "top_ups": self.top_ups,
            "purchased": str(self.purchased),
            "remaining_credit": str(self.remaining_credit),
            "debt": str(self.debt),
            "emergency_credit_taken": self.emergency_credit_taken,
            "profile_checked": self.profile_checked,
            "profile_mismatches": self.profile_mismatches,
            "restored_checked": self.restored_checked,
            "restore_mismatches": self.restore_mismatches,
            "wall_s": round(self.wall_s, 3),
            "steps_per_s": round(self.steps / self.wall_s, 1) if self.wall_s else None,
        }


@dataclass
class _Chunk:
    """One process's share of the fleet, with its arrays already sliced."""

    first_meter: int
    configs: list[MeterConfig]
    habits: dict[int, Habits]
    interval_end: list[datetime]
    interval_s: int
    import_wh: np.ndarray
    export_wh: np.ndarray
    reactive_varh: np.ndarray
    voltage_v: np.ndarray
    measured_share: np.ndarray
    masks: dict[InjectionKind, np.ndarray]
    seed: int
    store_path: Path


class _Customer:
    """A prepaid customer reacting to the meter (times in POSIX seconds)."""

    __slots__ = ("acknowledge_at", "habits", "rng", "top_up_at")

    def __init__(self, habits: Habits, rng: random.Random) -> None:
        self.habits = habits
        self.rng = rng
        self.top_up_at = math.inf
        self.acknowledge_at = math.inf

    def delay(self, mean_hours: float) -> float:
        return self.rng.expovariate(1.0 / (mean_hours * 3600.0))


def run_fleet(
    shapes: LoadShapes,
    plan: FleetPlan,
    *,
    workers: int = 1,
    state_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> FleetSummary:
    """Step the whole fleet through ``shapes``; return the summary.

    Parameters
    ----------
    workers : int
        Processes to use; meters are split into that many chunks.
    state_dir : Path, optional
        Where the non-volatile stores go (one SQLite file per chunk). A temporary directory
        is used and removed if not given.
    progress : callable, optional
        Called with the number of intervals (per chunk, summed) completed since the last
        call.
    """
    if len(plan.configs) != shapes.n_meters:
        raise InvalidInputError(
            "plan", len(plan.configs), f"the plan has to cover {shapes.n_meters} meters"
        )
    if workers < 1:
        raise InvalidInputError("workers", workers, "at least one worker")
    started = time.perf_counter()
    workers = min(workers, shapes.n_meters)
    with tempfile.TemporaryDirectory(prefix="meterstack-") as scratch:
        directory = Path(state_dir) if state_dir is not None else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        chunks = _split(shapes, plan, workers, directory)
        summary = FleetSummary()
        if workers == 1:
            summary.merge(_run_chunk(chunks[0], progress))
        else:
            summary = _run_parallel(chunks, progress)
    summary.intervals = shapes.n_intervals
    summary.wall_s = time.perf_counter() - started
    return summary


def _split(shapes: LoadShapes, plan: FleetPlan, workers: int, directory: Path) -> list[_Chunk]:
    n = shapes.n_meters
    bounds = np.linspace(0, n, workers + 1).astype(int)
    interval_end = [
        datetime.fromtimestamp(int(stamp), UTC)
        for stamp in shapes.interval_end.astype("datetime64[s]").astype(np.int64)
    ]
    masks = plan.masks(shapes.n_intervals)
    share = plan.measured_share(shapes.n_intervals)
    chunks = []
    for index, (low_bound, high_bound) in enumerate(pairwise(bounds)):
        low, high = int(low_bound), int(high_bound)
        chunks.append(
            _Chunk(
                first_meter=low,
                configs=plan.configs[low:high],
                habits={m - low: h for m, h in plan.habits.items() if low <= m < high},
                interval_end=interval_end,
                interval_s=shapes.interval_s,
                import_wh=shapes.import_wh[low:high],
                export_wh=shapes.export_wh[low:high],
                reactive_varh=shapes.reactive_varh[low:high],
                voltage_v=shapes.voltage_v[low:high],
                measured_share=share[low:high],
                masks={kind: mask[low:high] for kind, mask in masks.items()},
                seed=plan.seed,
                store_path=directory / f"nv-{index:02d}.db",
            )
        )
    return chunks


_progress_queue: Any = None


def _worker_init(queue: Any) -> None:
    global _progress_queue  # noqa: PLW0603 - one queue per worker process
    _progress_queue = queue


def _run_in_worker(chunk: _Chunk) -> FleetSummary:
    queue = _progress_queue
    return _run_chunk(chunk, queue.put if queue is not None else None)


def _run_parallel(chunks: list[_Chunk], progress: ProgressCallback | None) -> FleetSummary:
    context = get_context("spawn")
    queue = context.Manager().Queue() if progress is not None else None
    summary = FleetSummary()
    with ProcessPoolExecutor(
        max_workers=len(chunks), mp_context=context, initializer=_worker_init, initargs=(queue,)
    ) as pool:
        futures = [pool.submit(_run_in_worker, chunk) for chunk in chunks]
        while not all(future.done() for future in futures):
            if queue is not None and progress is not None:
                with contextlib.suppress(Exception):  # queue.Empty, from the manager process
                    progress(queue.get(timeout=0.1))
            else:
                time.sleep(0.05)
        if queue is not None and progress is not None:
            while not queue.empty():
                progress(queue.get())
        for future in futures:
            summary.merge(future.result())
    return summary


def _run_chunk(chunk: _Chunk, progress: ProgressCallback | None) -> FleetSummary:
    """Run one chunk of meters in this process."""
    database = NonVolatileDatabase(chunk.store_path, synchronous="NORMAL")
    start = chunk.interval_end[0] - timedelta(seconds=chunk.interval_s)
    meters = [
        Meter(config, commissioned_at=start, store=database.store(config.serial))
        for config in chunk.configs
    ]
    customers = {
        local: _Customer(habits, random.Random(chunk.seed * 1_000_003 + chunk.first_meter + local))
        for local, habits in chunk.habits.items()
    }
    summary = FleetSummary(meters=len(meters), prepaid=len(customers))
    to_watts = 3600.0 / chunk.interval_s
    masks = chunk.masks
    intervals_per_day = max(1, 86400 // chunk.interval_s)
    reported = 0
    previous = start
    for t, at in enumerate(chunk.interval_end):
        imports = chunk.import_wh[:, t].tolist()
        exports = chunk.export_wh[:, t].tolist()
        reactives = chunk.reactive_varh[:, t].tolist()
        voltages = chunk.voltage_v[:, t].tolist()
        shares = chunk.measured_share[:, t].tolist()
        outage = masks[InjectionKind.OUTAGE][:, t].tolist()
        over = masks[InjectionKind.OVER_VOLTAGE][:, t].tolist()
        terminal = masks[InjectionKind.TERMINAL_COVER][:, t].tolist()
        main = masks[InjectionKind.MAIN_COVER][:, t].tolist()
        magnet = masks[InjectionKind.MAGNET][:, t].tolist()
        reversed_ct = masks[InjectionKind.REVERSED_CT][:, t].tolist()
        at_epoch = at.timestamp()
        with database.batch():
            for local, meter in enumerate(meters):
                customer = customers.get(local)
                if customer is not None:
                    _customer_acts(meter, customer, previous, at_epoch, summary)
                if outage[local]:
                    watts = var = voltage = 0.0
                else:
                    voltage = voltages[local] * (1.12 if over[local] else 1.0)
                    if meter.relay.output_state:
                        watts = (imports[local] - exports[local]) * to_watts * shares[local]
                        var = reactives[local] * to_watts * shares[local]
                    else:
                        watts = var = 0.0
                meter.step(
                    _measurement(
                        at,
                        meter.config.phases,
                        watts,
                        var,
                        voltage,
                        reversed_l2=reversed_ct[local],
                        terminal_cover_open=terminal[local],
                        main_cover_open=main[local],
                        magnetic_field=magnet[local],
                    )
                )
                summary.steps += 1
                alarms = meter.drain_alarms()
                if alarms:
                    summary.alarms += len(alarms)
                    if customer is not None:
                        _customer_reacts(meter, customer, alarms, at_epoch, summary)
        previous = at
        if progress is not None and (t + 1) % intervals_per_day == 0:
            progress(t + 1 - reported)
            reported = t + 1
    if progress is not None and reported < len(chunk.interval_end):
        progress(len(chunk.interval_end) - reported)
    _tally(meters, database, summary)
    database.close()
    return summary


def _measurement(
    at: datetime,
    phases: int,
    watts: float,
    var: float,
    voltage: float,
    *,
    reversed_l2: bool,
    terminal_cover_open: bool,
    main_cover_open: bool,
    magnetic_field: bool,
) -> Measurement:
    if phases == 1:
        current = math.hypot(watts, var) / voltage if voltage > 0 else 0.0
        return Measurement(
            at,
            (voltage,),
            (current,),
            (watts,),
            (var,),
            50.0 if voltage > 0 else 0.0,
            None,
            terminal_cover_open,
            main_cover_open,
            magnetic_field,
        )
    powers = [watts * share for share in _PHASE_SHARES]
    vars_ = [var * share for share in _PHASE_SHARES]
    currents = tuple(
        math.hypot(p, q) / voltage if voltage > 0 else 0.0
        for p, q in zip(powers, vars_, strict=True)
    )
    if reversed_l2:  # a current transformer fitted backwards: L2 reads negative
        powers[1] = -powers[1]
        vars_[1] = -vars_[1]
    return Measurement(
        at,
        (voltage, voltage, voltage),
        currents,
        tuple(powers),
        tuple(vars_),
        50.0 if voltage > 0 else 0.0,
        None,
        terminal_cover_open,
        main_cover_open,
        magnetic_field,
    )


def _customer_acts(
    meter: Meter, customer: _Customer, previous: datetime, now: float, summary: FleetSummary
) -> None:
    """Actions the customer takes during the interval ending ``now``, in time order."""
    due = sorted(
        (when, action)
        for when, action in (
            (customer.acknowledge_at, "acknowledge"),
            (customer.top_up_at, "top_up"),
        )
        if when <= now
    )
    for when, action in due:
        at = datetime.fromtimestamp(max(when, previous.timestamp(), meter.now.timestamp()), UTC)
        if action == "acknowledge":
            customer.acknowledge_at = math.inf
            meter.acknowledge_low_credit(at)
        else:
            customer.top_up_at = math.inf
            amount = customer.habits.top_up_amount
            meter.top_up(amount, at, reference=f"sim-{summary.top_ups + 1}")
            summary.top_ups += 1
            summary.purchased += amount


def _customer_reacts(
    meter: Meter, customer: _Customer, alarms: list[Any], now: float, summary: FleetSummary
) -> None:
    habits = customer.habits
    for alarm in alarms:
        if alarm.code == EventCode.CREDIT_LOW and customer.top_up_at == math.inf:
            customer.top_up_at = now + customer.delay(habits.top_up_delay_h)
        elif alarm.code == EventCode.LOCAL_DISCONNECTION and alarm.detail == "credit":
            causes = meter.disconnect_causes
            if "credit_low" in causes and "credit_exhausted" not in causes:
                customer.acknowledge_at = min(
                    customer.acknowledge_at, now + customer.delay(habits.acknowledge_delay_h)
                )
                continue
            if (
                habits.takes_emergency_credit
                and meter.credit is not None
                and not meter.credit.emergency_active
            ):
                try:
                    meter.activate_emergency_credit(datetime.fromtimestamp(now, UTC))
                    summary.emergency_credit_taken += 1
                except CommandRefusedError:
                    pass
            customer.top_up_at = min(
                customer.top_up_at, now + customer.delay(habits.urgent_delay_h)
            )


def _tally(meters: list[Meter], database: NonVolatileDatabase, summary: FleetSummary) -> None:
    for meter in meters:
        registers = meter.registers
        summary.import_kwh += kwh(registers.a_plus)
        summary.export_kwh += kwh(registers.a_minus)
        for kind, log in meter.event_logs.items():
            for event in log:
                summary.events[event.name] += 1
                summary.events_by_log[kind.value] += 1
        for event in meter.event_logs[LogKind.DISCONNECTOR]:
            if event.code in (
                EventCode.LOCAL_DISCONNECTION,
                EventCode.REMOTE_DISCONNECTION,
                EventCode.MANUAL_DISCONNECTION,
            ):
                summary.disconnections[event.detail] += 1
        if not meter.relay.output_state:
            summary.disconnected_at_end += 1
        if meter.credit is not None:
            summary.remaining_credit += meter.credit.credit
            summary.debt += meter.credit.debt
        # Self-checks: the profile adds up to the register, and the stored image restores.
        profile = meter.load_profile
        if len(profile) == profile.last_seq:
            summary.profile_checked += 1
            if sum(entry.a_plus_wh for entry in profile) != registers.a_plus:
                summary.profile_mismatches += 1
        meter.checkpoint()
        restored = Meter.restore(meter.config, database.store(meter.config.serial))
        summary.restored_checked += 1
        if restored is None or restored.image() != meter.image():
            summary.restore_mismatches += 1


def default_workers() -> int:
    """Processes to use by default: the CPUs this process may run on, at most 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))
