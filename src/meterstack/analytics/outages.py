"""Outages from last-gasp and power-restore events and missed reads, grouped on the network.

A meter that loses supply sends a last gasp (power-failure event, IDIS code 1 in the
power-failure log) and, when supply returns, a power-restore event (code 2). Storms bring
them by the ten thousand, some twice (a resend after failover), some never (a last gasp
lost on a congested cell). :func:`find_outages` turns them into outages the way an outage
management system does:

1. **Clean.** Exact duplicates are dropped; per meter, a repeated last gasp without a
   restore in between is the same outage reported again and is dropped too.
2. **Pair.** Each meter's last gasp is paired with its next restore: a meter outage
   ``[start, end)``, open (``end = NaN``) while no restore has come.
3. **Group.** Meter outages on one transformer whose starts follow each other by at most
   ``group_gap_s`` are one event. If it takes at least ``min_share`` of the transformer's
   customers (and at least two meters, or the only one), it is a transformer outage;
   otherwise each meter is a single-premise outage (a blown service fuse, a tripped
   customer breaker).
4. **Infer.** A customer of a transformer that is out, who sent nothing but has not been
   heard from since before the outage began (``last_heard``: missed reads), is counted as
   out too, flagged ``inferred``; it is restored with the transformer.
5. **Roll up.** Transformer outages that take every transformer of a feeder within one
   group gap point at the feeder (its breaker or a fault upstream): they share a
   ``feeder_event`` number.

Reliability indices follow IEEE 1366-2012 [1]_: an interruption longer than
``momentary_s`` (5 min) is sustained and counts in SAIFI and SAIDI; a shorter one counts in
MAIFI.

References
----------
.. [1] IEEE Std 1366-2012, IEEE Guide for Electric Power Distribution Reliability Indices,
   2.2 (sustained and momentary interruptions), 3.1 (SAIFI, SAIDI, CAIDI), 3.3 (MAIFI).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt

from meterstack.analytics.network import NetworkModel
from meterstack.core.errors import InvalidInputError
from meterstack.meter.events import EventCode

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]


class PowerEventKind(IntEnum):
    """The two events outage inference reads (IDIS power-failure log codes)."""

    LAST_GASP = EventCode.POWER_DOWN
    RESTORE = EventCode.POWER_UP


class OutageLevel(StrEnum):
    TRANSFORMER = "transformer"
    PREMISE = "premise"


@dataclass(frozen=True)
class PowerEvents:
    """Last gasps and restores as parallel arrays (duplicates and any order allowed).

    Attributes
    ----------
    meter : int32 array
        Meter index in the network model.
    at : float64 array
        When the meter recorded the event (not when it arrived). [s since the epoch, UTC]
    kind : int8 array
        :class:`PowerEventKind` values.
    """

    meter: IntArray
    at: FloatArray
    kind: npt.NDArray[np.int8]

    def __post_init__(self) -> None:
        n = self.meter.shape
        if len(n) != 1 or self.at.shape != n or self.kind.shape != n:
            raise InvalidInputError(
                "events",
                (self.meter.shape, self.at.shape, self.kind.shape),
                "meter, at and kind must be 1-D arrays of one length",
            )
        if n[0] and not np.all(np.isfinite(self.at)):
            bad = int(np.flatnonzero(~np.isfinite(self.at))[0])
            raise InvalidInputError(f"events.at[{bad}]", float(self.at[bad]), "must be finite")
        known = np.isin(self.kind, [k.value for k in PowerEventKind])
        if not np.all(known):
            bad = int(np.flatnonzero(~known)[0])
            raise InvalidInputError(
                f"events.kind[{bad}]", int(self.kind[bad]), "1 (last gasp) or 2 (restore)"
            )

    @classmethod
    def from_records(
        cls, network: NetworkModel, records: list[tuple[str, float, int]]
    ) -> PowerEvents:
        """From ``(serial, at, kind)`` tuples; an unknown serial raises."""
        serials = [r[0] for r in records]
        return cls(
            network.meter_index(serials),
            np.asarray([r[1] for r in records], dtype=np.float64),
            np.asarray([r[2] for r in records], dtype=np.int8),
        )


@dataclass(frozen=True)
class Outage:
    """One outage: a transformer's, or a single premise's.

    ``end`` is NaN while the outage is open; ``customer_minutes`` then runs to ``as_of``.
    """

    id: int
    level: OutageLevel
    transformer: int
    feeder: int
    start: float
    end: float
    meters: IntArray
    inferred: IntArray
    customer_minutes: float
    feeder_event: int | None

    @property
    def open(self) -> bool:
        return bool(np.isnan(self.end))

    @property
    def customers(self) -> int:
        return int(self.meters.size + self.inferred.size)


@dataclass(frozen=True)
class ReliabilityIndices:
    """IEEE 1366 indices over the analysed period (per customer served)."""

    customers_served: int
    saifi: float
    saidi_min: float
    caidi_min: float
    maifi: float
    sustained_interruptions: int
    momentary_interruptions: int


@dataclass(frozen=True)
class OutageReport:
    outages: list[Outage]
    indices: ReliabilityIndices
    #: Events left after cleaning, and how many were dropped as repeats.
    events_used: int
    events_repeated: int
    #: Restores with no last gasp before them and no outage to join (a lost gasp on a
    #: premise nobody else saw): reported, not guessed into an outage.
    orphan_restores: IntArray


def find_outages(
    network: NetworkModel,
    events: PowerEvents,
    *,
    as_of: float,
    last_heard: FloatArray | None = None,
    group_gap_s: float = 120.0,
    min_share: float = 0.5,
    momentary_s: float = 300.0,
) -> OutageReport:
    """Group power events into outages and compute reliability indices.

    Parameters
    ----------
    network : NetworkModel
    events : PowerEvents
    as_of : float
        The time of the analysis; open outages count up to it. [s since the epoch]
    last_heard : float64 array (n_meters,), optional
        When each meter last communicated (a read or any message); NaN if never. Meters
        silent since before an outage on their transformer are inferred to be out. [s]
    group_gap_s : float
        Largest gap between consecutive last gasps of one transformer outage. [s]
    min_share : float
        Share of a transformer's customers that must be out for a transformer outage.
    momentary_s : float
        Interruptions up to this long are momentary (IEEE 1366: 5 min). [s]
    """
    if not 0 < min_share <= 1:
        raise InvalidInputError("min_share", min_share, "a share in (0, 1]")
    if group_gap_s <= 0:
        raise InvalidInputError("group_gap_s", group_gap_s, "must be positive")
    if events.meter.size and int(events.meter.max()) >= network.n_meters:
        raise InvalidInputError("events.meter", int(events.meter.max()), "not in the network")
    if last_heard is not None and last_heard.shape != (network.n_meters,):
        raise InvalidInputError("last_heard", last_heard.shape, f"shape ({network.n_meters},)")

    meter, at, kind, repeated = _clean(events)
    starts_m, starts_t, ends_t, orphan = _pair(meter, at, kind)

    transformer = network.meter_transformer[starts_m]
    order = np.lexsort((starts_t, transformer))
    starts_m, starts_t, ends_t, transformer = (
        starts_m[order],
        starts_t[order],
        ends_t[order],
        transformer[order],
    )
    new_group = np.ones(starts_m.size, dtype=bool)
    if starts_m.size > 1:
        new_group[1:] = (transformer[1:] != transformer[:-1]) | (np.diff(starts_t) > group_gap_s)
    bounds = np.flatnonzero(np.r_[new_group, True])
    customers = network.customers_per_transformer()

    outages: list[Outage] = []
    restored_orphans = np.zeros(orphan.shape[0], dtype=bool)
    for g in range(bounds.size - 1):
        lo, hi = bounds[g], bounds[g + 1]
        t = int(transformer[lo])
        members = starts_m[lo:hi]
        distinct = np.unique(members)
        served = int(customers[t])
        needed = max(min(2, served), int(np.ceil(min_share * served)))
        if distinct.size >= needed:
            outages.append(
                _transformer_outage(
                    network,
                    t,
                    members,
                    starts_t[lo:hi],
                    ends_t[lo:hi],
                    last_heard,
                    orphan,
                    restored_orphans,
                    as_of,
                )
            )
        else:
            for k in range(lo, hi):
                end = float(ends_t[k])
                outages.append(
                    Outage(
                        id=0,
                        level=OutageLevel.PREMISE,
                        transformer=t,
                        feeder=int(network.transformer_feeder[t]),
                        start=float(starts_t[k]),
                        end=end,
                        meters=starts_m[k : k + 1].copy(),
                        inferred=np.empty(0, dtype=np.int32),
                        customer_minutes=_minutes(float(starts_t[k]), end, as_of),
                        feeder_event=None,
                    )
                )
    outages.sort(key=lambda o: (o.start, o.transformer, int(o.meters[0]) if o.meters.size else -1))
    outages = _roll_up_feeders(network, outages, group_gap_s)
    indices = _indices(network, outages, as_of, momentary_s)
    return OutageReport(
        outages=outages,
        indices=indices,
        events_used=int(meter.size),
        events_repeated=repeated,
        orphan_restores=orphan[~restored_orphans][:, 0].astype(np.int32)
        if orphan.size
        else np.empty(0, dtype=np.int32),
    )


def _clean(
    events: PowerEvents,
) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8], int]:
    """Drop exact repeats and, per meter, consecutive events of the same kind."""
    n = events.meter.size
    order = np.lexsort((events.kind, events.at, events.meter))
    meter, at, kind = events.meter[order], events.at[order], events.kind[order]
    keep = np.ones(n, dtype=bool)
    if n > 1:
        same_meter = meter[1:] == meter[:-1]
        # Same meter, same kind as the previous event: a resend, or a second gasp of one
        # outage. A repeated restore keeps the first (the supply came back then).
        keep[1:] = ~(same_meter & (kind[1:] == kind[:-1]))
    return meter[keep], at[keep], kind[keep], int(n - keep.sum())


def _pair(
    meter: IntArray, at: FloatArray, kind: npt.NDArray[np.int8]
) -> tuple[IntArray, FloatArray, FloatArray, npt.NDArray[np.float64]]:
    """Meter outages (meter, start, end or NaN) and orphan restores ``[[meter, at], ...]``."""
    gasp = kind == PowerEventKind.LAST_GASP
    n = meter.size
    nxt_same = np.zeros(n, dtype=bool)
    if n > 1:
        nxt_same[:-1] = meter[1:] == meter[:-1]
    # After cleaning, kinds alternate per meter: a gasp's next event, if any, is its restore.
    has_restore = gasp & nxt_same
    idx = np.flatnonzero(gasp)
    ends = np.full(idx.size, np.nan)
    paired = has_restore[idx]
    ends[paired] = at[idx[paired] + 1]
    # A restore not preceded by a gasp of the same meter lost its gasp.
    prev_same = np.zeros(n, dtype=bool)
    if n > 1:
        prev_same[1:] = meter[1:] == meter[:-1]
    orphan_mask = (~gasp) & ~prev_same
    orphan = np.column_stack((meter[orphan_mask].astype(np.float64), at[orphan_mask]))
    return meter[idx], at[idx], ends, orphan


def _transformer_outage(  # noqa: PLR0917 - one call site, every argument named there
    network: NetworkModel,
    t: int,
    members: IntArray,
    starts: FloatArray,
    ends: FloatArray,
    last_heard: FloatArray | None,
    orphan: npt.NDArray[np.float64],
    restored_orphans: npt.NDArray[np.bool_],
    as_of: float,
) -> Outage:
    start = float(starts.min())
    restored = ~np.isnan(ends)
    if restored.any() and restored.mean() >= 0.5:
        # Supply returns to a whole transformer at once: a member whose restore was lost is
        # taken to be back with the last of the others.
        ends = np.where(restored, ends, ends[restored].max())
    end = float("nan") if np.isnan(ends).any() else float(ends.max())
    minutes = sum(_minutes(float(s), float(e), as_of) for s, e in zip(starts, ends, strict=True))
    on_transformer = network.meters_of(t)
    silent = np.setdiff1d(on_transformer, members)
    inferred = np.empty(0, dtype=np.int32)
    if silent.size:
        # A customer whose gasp was lost but whose restore arrived joins with its restore.
        if orphan.size:
            in_window = (
                np.isin(orphan[:, 0].astype(np.int32), silent)
                & (orphan[:, 1] >= start)
                & (np.isnan(end) | (orphan[:, 1] <= end + 3600.0))
                & ~restored_orphans
            )
            for k in np.flatnonzero(in_window):
                restored_orphans[k] = True
                minutes += _minutes(start, float(orphan[k, 1]), as_of)
            joined = orphan[in_window, 0].astype(np.int32)
            inferred = np.union1d(inferred, joined).astype(np.int32)
            silent = np.setdiff1d(silent, joined)
        if last_heard is not None and silent.size:
            quiet = silent[~(last_heard[silent] >= start)]  # NaN (never heard) counts as quiet
            inferred = np.union1d(inferred, quiet).astype(np.int32)
            minutes += quiet.size * _minutes(start, end, as_of)
    return Outage(
        id=0,
        level=OutageLevel.TRANSFORMER,
        transformer=t,
        feeder=int(network.transformer_feeder[t]),
        start=start,
        end=end,
        meters=np.unique(members).astype(np.int32),
        inferred=inferred,
        customer_minutes=minutes,
        feeder_event=None,
    )


def _minutes(start: float, end: float, as_of: float) -> float:
    stop = as_of if np.isnan(end) else end
    return max(stop - start, 0.0) / 60.0


def _roll_up_feeders(
    network: NetworkModel, outages: list[Outage], group_gap_s: float
) -> list[Outage]:
    """Number the outages and give a feeder event to sets that take a whole feeder."""
    transformers_on = np.bincount(network.transformer_feeder, minlength=len(network.feeders))
    result: list[Outage] = []
    by_feeder: dict[int, list[int]] = {}
    for number, outage in enumerate(outages, start=1):
        result.append(replace(outage, id=number))
        if outage.level is OutageLevel.TRANSFORMER:
            by_feeder.setdefault(outage.feeder, []).append(number - 1)
    event = 0
    for feeder, positions in sorted(by_feeder.items()):
        run: list[int] = []
        for position in [*positions, -1]:
            if position >= 0 and (
                not run or result[position].start - result[run[-1]].start <= group_gap_s
            ):
                run.append(position)
                continue
            if run and len({result[p].transformer for p in run}) == transformers_on[feeder] > 1:
                event += 1
                for p in run:
                    result[p] = replace(result[p], feeder_event=event)
            run = [position] if position >= 0 else []
    return result


def _indices(
    network: NetworkModel, outages: list[Outage], as_of: float, momentary_s: float
) -> ReliabilityIndices:
    served = max(network.n_meters, 1)
    sustained = momentary = 0
    minutes = 0.0
    for outage in outages:
        stop = as_of if outage.open else outage.end
        if stop - outage.start > momentary_s:
            sustained += outage.customers
            minutes += outage.customer_minutes
        else:
            momentary += outage.customers
    saifi = sustained / served
    saidi = minutes / served
    return ReliabilityIndices(
        customers_served=network.n_meters,
        saifi=saifi,
        saidi_min=saidi,
        caidi_min=saidi / saifi if saifi else 0.0,
        maifi=momentary / served,
        sustained_interruptions=sustained,
        momentary_interruptions=momentary,
    )
