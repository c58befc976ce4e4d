"""A distribution network with ground truth, for scoring the grid analytics.

:func:`generate_grid` takes a fleet's load shapes (or makes them), hangs the meters on
transformers and feeders, and injects what the analytics must find, recording it as ground
truth:

* **thieves** who bypass a share of their load (30-70 % by default), some from the first
  day, some from a day within the period, some with a fraud event in their meter's log
  (a magnet, an opened cover), while honest customers also show an occasional cover
  event (a technician's visit);
* **outages** of transformers, of whole feeders and of single premises, momentary and
  sustained, with the last gasps and restores the meters send: a few lost, a few sent
  twice, each stamped by the meter's slightly wrong clock;
* **over-voltage** on some transformers (a tap set high under midday solar), which breaks
  EN 50160 for every customer on them;
* **undersized transformers** that run above their rating at the evening peak.

The check meter of each transformer measures the true load of its customers (what the
thieves take included) plus the LV network's technical losses, computed with parameters
that differ from the analytics' defaults by up to 20 % (no model is exact), plus the check
meter's own error (class 0.5). Everything is drawn from one seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from meterstack.analytics import NetworkModel, PowerEventKind, PowerEvents, TechnicalLossModel
from meterstack.core.errors import InvalidInputError
from meterstack.sim.loadshapes import CustomerClass, LoadShapes, generate_load_shapes

Float32Array = npt.NDArray[np.float32]

#: Standard distribution transformer ratings (IEC 60076 preferred values). [kVA]
STANDARD_KVA = np.array(
    [25, 50, 100, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000, 2500, 3150]
)
FRAUD_KINDS = ("terminal_cover", "magnet", "reverse_current", "neutral_missing")


@dataclass(frozen=True)
class OutageTruth:
    """An injected outage: the meters that lost supply, from ``start`` to ``end``. [s]"""

    level: str  # "feeder", "transformer" or "premise"
    transformer: int  # -1 for a feeder outage
    feeder: int
    start: float
    end: float
    meters: npt.NDArray[np.int32]


@dataclass
class GridScenario:
    """A network, its interval data as recorded, and the ground truth injected."""

    network: NetworkModel
    interval_s: int
    start: float  # epoch of the first interval's start [s]
    true_import_wh: Float32Array
    customer_wh: Float32Array  # recorded import (thieves' meters see less)
    export_wh: Float32Array
    check_wh: Float32Array  # NaN rows: no check meter
    voltage_v: Float32Array
    stolen_share: npt.NDArray[np.float64]  # per meter, 0 for honest customers
    theft_onset: npt.NDArray[np.int64]  # first stolen interval, -1 for honest customers
    fraud_events: dict[str, npt.NDArray[np.int64]]
    outages: list[OutageTruth]
    power_events: PowerEvents
    last_heard: npt.NDArray[np.float64]
    as_of: float
    over_voltage_transformers: npt.NDArray[np.int32]
    undersized_transformers: npt.NDArray[np.int32]
    notes: list[str] = field(default_factory=list)

    @property
    def thieves(self) -> npt.NDArray[np.intp]:
        return np.flatnonzero(self.stolen_share > 0)


def generate_grid(
    n_meters: int,
    start: datetime,
    days: int,
    *,
    seed: int = 0,
    interval_s: int = 1800,
    shapes: LoadShapes | None = None,
    customers_per_transformer: tuple[int, int] = (8, 40),
    transformers_per_feeder: tuple[int, int] = (4, 16),
    thief_share: float = 0.04,
    theft_range: tuple[float, float] = (0.3, 0.7),
    check_meter_share: float = 1.0,
    outages_per_week: float = 6.0,
    over_voltage_share: float = 0.03,
    undersized_share: float = 0.03,
) -> GridScenario:
    """Generate a network with injected thefts, outages and power-quality problems."""
    if shapes is None:
        shapes = generate_load_shapes(n_meters, start, days, interval_s=interval_s, seed=seed)
    n, n_int = shapes.import_wh.shape
    if n != n_meters:
        raise InvalidInputError("shapes", n, f"must hold {n_meters} meters")
    if not 0 <= thief_share < 0.5:
        raise InvalidInputError("thief_share", thief_share, "in [0, 0.5)")
    lo_f, hi_f = theft_range
    if not 0 < lo_f <= hi_f < 1:
        raise InvalidInputError("theft_range", theft_range, "0 < low <= high < 1")
    rng = np.random.default_rng([seed, 0x6E7])
    interval_s = shapes.interval_s
    dt_h = interval_s / 3600.0
    t0 = float(shapes.interval_end[0].astype("datetime64[s]").astype(np.int64)) - interval_s

    network = _network(shapes, rng, customers_per_transformer, transformers_per_feeder)
    true_import = shapes.import_wh.copy()
    export = shapes.export_wh.copy()
    voltage = shapes.voltage_v.copy()

    # Outages: no energy flows while a meter is off supply.
    outages = _outages(
        network, rng, t0=t0, n_int=n_int, interval_s=interval_s, per_week=outages_per_week
    )
    for outage in outages:
        share = _interval_overlap(t0, n_int, interval_s, outage.start, outage.end)
        on = 1.0 - share
        true_import[outage.meters] *= on
        export[outage.meters] *= on
    power_events, last_heard, as_of = _power_events(
        network, rng, outages, t0=t0, n_int=n_int, interval_s=interval_s
    )

    # Thieves: residential and commercial customers; the bypass starts at their onset.
    eligible = np.flatnonzero(shapes.customer_class != CustomerClass.INDUSTRIAL)
    count = round(thief_share * n)
    thieves = rng.choice(eligible, size=min(count, eligible.size), replace=False)
    stolen_share = np.zeros(n)
    stolen_share[thieves] = rng.uniform(lo_f, hi_f, thieves.size)
    onset = np.full(n, -1, dtype=np.int64)
    late = rng.random(thieves.size) < 0.5
    per_day = 86400 // interval_s
    onset[thieves] = np.where(late, rng.integers(0, max(n_int // 2, 1), thieves.size), 0)
    onset[thieves] = (onset[thieves] // per_day) * per_day
    recorded = true_import.copy()
    columns = np.arange(n_int)
    for meter in thieves:
        stolen = columns >= onset[meter]
        recorded[meter, stolen] *= np.float32(1.0 - stolen_share[meter])

    fraud = {kind: np.zeros(n, dtype=np.int64) for kind in FRAUD_KINDS}
    with_event = thieves[rng.random(thieves.size) < 0.4]
    for meter in with_event:
        fraud[FRAUD_KINDS[int(rng.integers(0, 2))]][meter] += int(rng.integers(1, 4))
    honest = np.setdiff1d(np.arange(n), thieves)
    visited = rng.choice(honest, size=int(0.01 * honest.size), replace=False)
    fraud["terminal_cover"][visited] += 1

    # Check meters: the truth plus technical losses (not quite the analytics' model).
    nominal = TechnicalLossModel()
    true_losses = TechnicalLossModel(
        meter_self_w=nominal.meter_self_w * float(rng.uniform(0.8, 1.2)),
        line_loss_at_rated=nominal.line_loss_at_rated * float(rng.uniform(0.8, 1.2)),
    )
    order = network.meters_by_transformer
    offsets = network.transformer_offsets
    net_true = true_import - export
    delivered = np.add.reduceat(net_true[order], offsets[:-1], axis=0)
    rating, undersized = _ratings(rng, delivered, interval_s, undersized_share)
    network = replace(network, rating_kva=rating)
    delivered += true_losses.losses_wh(
        delivered, network.customers_per_transformer(), network.rating_kva, interval_s
    )
    delivered *= (1.0 + rng.normal(0.0, 0.002, delivered.shape)).astype(np.float32)
    without = rng.random(network.n_transformers) >= check_meter_share
    delivered[without] = np.nan
    network = replace(
        network,
        check_meters=tuple(
            f"CHK{t:05d}" if not without[t] else None for t in range(network.n_transformers)
        ),
    )

    over_voltage = rng.choice(
        network.n_transformers,
        size=round(over_voltage_share * network.n_transformers),
        replace=False,
    ).astype(np.int32)
    if over_voltage.size:
        hours = ((columns * dt_h) + (t0 % 86400) / 3600.0) % 24
        midday = (hours >= 10) & (hours < 16)
        lift = np.where(midday, 1.13, 1.02).astype(np.float32)
        hit = np.isin(network.meter_transformer, over_voltage)
        voltage[hit] *= lift

    return GridScenario(
        network=network,
        interval_s=interval_s,
        start=t0,
        true_import_wh=true_import,
        customer_wh=recorded,
        export_wh=export,
        check_wh=delivered.astype(np.float32),
        voltage_v=voltage,
        stolen_share=stolen_share,
        theft_onset=onset,
        fraud_events=fraud,
        outages=outages,
        power_events=power_events,
        last_heard=last_heard,
        as_of=as_of,
        over_voltage_transformers=np.sort(over_voltage),
        undersized_transformers=undersized,
        notes=[f"true losses: {true_losses}"],
    )


def _network(
    shapes: LoadShapes,
    rng: np.random.Generator,
    per_transformer: tuple[int, int],
    per_feeder: tuple[int, int],
) -> NetworkModel:
    """Industrial customers on their own transformers, the rest in groups by class."""
    n = shapes.n_meters
    assignment = np.empty(n, dtype=np.int32)
    next_t = 0
    for klass in (CustomerClass.RESIDENTIAL, CustomerClass.COMMERCIAL, CustomerClass.INDUSTRIAL):
        members = rng.permutation(np.flatnonzero(shapes.customer_class == klass))
        position = 0
        while position < members.size:
            if klass == CustomerClass.INDUSTRIAL:
                size = 1
            elif klass == CustomerClass.COMMERCIAL:
                size = int(rng.integers(2, 9))
            else:
                size = int(rng.integers(per_transformer[0], per_transformer[1] + 1))
            assignment[members[position : position + size]] = next_t
            position += size
            next_t += 1
    n_t = next_t
    feeder = np.empty(n_t, dtype=np.int32)
    position = f = 0
    shuffled = rng.permutation(n_t)
    while position < n_t:
        size = int(rng.integers(per_feeder[0], per_feeder[1] + 1))
        feeder[shuffled[position : position + size]] = f
        position += size
        f += 1
    network = NetworkModel(
        meters=tuple(f"SIM{i:06d}" for i in range(n)),
        transformers=tuple(f"TX{t:05d}" for t in range(n_t)),
        feeders=tuple(f"FDR{k:03d}" for k in range(f)),
        meter_transformer=assignment,
        transformer_feeder=feeder,
        rating_kva=np.full(n_t, np.nan),
        check_meters=tuple(None for _ in range(n_t)),
    )
    return network


def _ratings(
    rng: np.random.Generator, delivered_wh: Float32Array, interval_s: int, undersized_share: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Standard ratings with 10-60 % headroom over the peak; a few transformers too small.

    An undersized transformer is rated at most 90 % of the load it carries for its ninth
    busiest interval of the first week, so it runs above its rating for over 4 hours that
    week: what :func:`~meterstack.analytics.transformer_loading` calls overloaded.
    """
    n_t = delivered_wh.shape[0]
    load_kva = delivered_wh.astype(np.float64) / (interval_s / 3600.0) / 1000.0 / 0.95
    peak = load_kva.max(axis=1)
    needed = peak * rng.uniform(1.1, 1.6, n_t)
    # The next standard size up; above the largest, whole hundreds of kVA.
    position = np.searchsorted(STANDARD_KVA, needed)
    rating = np.where(
        position < STANDARD_KVA.size,
        STANDARD_KVA[np.minimum(position, STANDARD_KVA.size - 1)],
        np.ceil(needed / 100.0) * 100.0,
    ).astype(np.float64)
    week = min(load_kva.shape[1], 7 * 86400 // interval_s)
    ninth = -np.sort(-load_kva[:, :week], axis=1)[:, min(8, week - 1)]
    loaded = np.flatnonzero(ninth > 1.0)
    count = min(round(undersized_share * n_t), loaded.size)
    undersized = np.sort(rng.choice(loaded, size=count, replace=False))
    # The largest standard size at most 90 % of that load (the load itself if none is).
    cap = 0.9 * ninth[undersized]
    below = np.searchsorted(STANDARD_KVA, cap, side="right") - 1
    rating[undersized] = np.where(below >= 0, STANDARD_KVA[np.maximum(below, 0)], cap)
    return rating, undersized.astype(np.int32)


def _outages(
    network: NetworkModel,
    rng: np.random.Generator,
    *,
    t0: float,
    n_int: int,
    interval_s: int,
    per_week: float,
) -> list[OutageTruth]:
    span = n_int * interval_s
    count = int(rng.poisson(per_week * span / (7 * 86400)))
    result: list[OutageTruth] = []
    busy_until = np.full(network.n_meters, -np.inf)
    for _ in range(count):
        start = t0 + float(rng.uniform(0.05, 0.9)) * span
        momentary = rng.random() < 0.2
        duration = float(rng.uniform(60, 240)) if momentary else float(rng.uniform(900, 6 * 3600))
        end = start + duration
        roll = rng.random()
        if roll < 0.15:
            f = int(rng.integers(0, len(network.feeders)))
            transformers = np.flatnonzero(network.transformer_feeder == f)
            meters = np.concatenate([network.meters_of(int(t)) for t in transformers])
            level, t = "feeder", -1
        elif roll < 0.8:
            t = int(rng.integers(0, network.n_transformers))
            meters = network.meters_of(t)
            f, level = int(network.transformer_feeder[t]), "transformer"
        else:
            meter = int(rng.integers(0, network.n_meters))
            t = int(network.meter_transformer[meter])
            meters = np.array([meter], dtype=np.int32)
            f, level = int(network.transformer_feeder[t]), "premise"
        if meters.size == 0 or np.any(busy_until[meters] > start - 3600):
            continue  # keep injected outages apart, so the truth is unambiguous
        busy_until[meters] = end
        result.append(OutageTruth(level, t, f, start, end, meters.astype(np.int32)))
    result.sort(key=lambda o: o.start)
    return result


def _interval_overlap(
    t0: float, n_int: int, interval_s: int, start: float, end: float
) -> Float32Array:
    lo = t0 + np.arange(n_int) * interval_s
    overlap = np.clip(np.minimum(lo + interval_s, end) - np.maximum(lo, start), 0, interval_s)
    share: Float32Array = (overlap / interval_s).astype(np.float32)
    return share


def _power_events(
    network: NetworkModel,
    rng: np.random.Generator,
    outages: list[OutageTruth],
    *,
    t0: float,
    n_int: int,
    interval_s: int,
) -> tuple[PowerEvents, npt.NDArray[np.float64], float]:
    """Last gasps and restores as the head-end receives them; when each meter was last read."""
    as_of = t0 + n_int * interval_s
    meters: list[npt.NDArray[np.int32]] = []
    times: list[npt.NDArray[np.float64]] = []
    kinds: list[npt.NDArray[np.int8]] = []
    # Meters are read every interval; a meter off supply at as_of was last heard at its gasp.
    last_heard = np.full(network.n_meters, as_of)
    for outage in outages:
        m = outage.meters
        clock_error = rng.normal(0.0, 1.0, m.size)
        gasp_at = outage.start + np.abs(rng.normal(0.0, 0.5, m.size)) + clock_error
        restore_at = outage.end + rng.uniform(0.0, 5.0, m.size) + clock_error
        gasp_kept = rng.random(m.size) >= 0.02
        restore_kept = (rng.random(m.size) >= 0.01) & (restore_at < as_of)
        twice = rng.random(m.size) < 0.05
        for keep, at, kind in (
            (gasp_kept, gasp_at, PowerEventKind.LAST_GASP),
            (restore_kept, restore_at, PowerEventKind.RESTORE),
            (gasp_kept & twice, gasp_at, PowerEventKind.LAST_GASP),
        ):
            meters.append(m[keep])
            times.append(at[keep])
            kinds.append(np.full(int(keep.sum()), kind, dtype=np.int8))
        if outage.end >= as_of:
            last_heard[m] = outage.start - float(rng.uniform(0, interval_s))
    if meters:
        events = PowerEvents(
            np.concatenate(meters).astype(np.int32),
            np.concatenate(times),
            np.concatenate(kinds),
        )
    else:
        events = PowerEvents(np.empty(0, np.int32), np.empty(0, np.float64), np.empty(0, np.int8))
    return events, last_heard, as_of
