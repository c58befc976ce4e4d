"""Voltage dips, swells and interruptions from Urms(1/2) (IEC 61000-4-30, 5.4 and 5.5).

Urms(1/2) is the RMS voltage over one cycle, refreshed every half cycle: value k covers
half-cycle boundaries b_k .. b_{k+2} and is time-stamped at the end of its cycle. The
detection thresholds are percentages of the declared voltage U_din, with a hysteresis:

* dip: starts when Urms(1/2) of one or more channels falls below the dip threshold
  (90 %); ends when Urms(1/2) of all channels is at or above threshold + hysteresis;
* swell: starts when Urms(1/2) of one or more channels rises above the swell threshold
  (110 %); ends when all channels are at or below threshold - hysteresis;
* interruption: starts when Urms(1/2) of all channels falls below the interruption
  threshold (5 % or 10 %); ends when one channel is at or above threshold + hysteresis.

Duration is end minus start; the residual voltage of a dip or interruption is the lowest
Urms(1/2) on any channel during it, the depth is U_din minus the residual voltage in % of
U_din; for a swell the ``depth_pct`` is the largest rise above U_din in % of U_din.

The hysteresis state machines are vectorised: the state after value k is the state set
by the last value that crossed a start or an end threshold.

References
----------
.. [1] IEC 61000-4-30:2015, 5.4.1 (Urms(1/2)), 5.4.2 (dips, polyphase start and end),
       5.4.3 (swells), 5.5 (interruptions), 4.7 (flagging).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.core.time import from_epoch
from meterstack.metrology.record import FloatArray
from meterstack.metrology.windows import BoolArray, IntArray

__all__ = [
    "EventThresholds",
    "VoltageEvent",
    "detect_events",
    "half_cycle_rms",
    "overlaps_events",
]

EventKind = Literal["dip", "swell", "interruption"]

#: Half cycles summed per pass in :func:`half_cycle_rms` (32 k samples, 0.8 MB at 8 kHz).
_HALF_CYCLES_PER_BLOCK = 400


@dataclass(frozen=True, slots=True)
class EventThresholds:
    """Thresholds in % of the declared voltage."""

    dip_pct: float = 90.0
    swell_pct: float = 110.0
    interruption_pct: float = 5.0
    hysteresis_pct: float = 2.0

    def __post_init__(self) -> None:
        if self.interruption_pct not in (5.0, 10.0):
            raise InvalidInputError(
                "interruption_pct", self.interruption_pct, "IEC 61000-4-30 allows 5 or 10 %"
            )
        if not 0 <= self.hysteresis_pct < 10:
            raise InvalidInputError("hysteresis_pct", self.hysteresis_pct, "0 to 10 %")
        if not self.interruption_pct < self.dip_pct < 100 < self.swell_pct:
            raise InvalidInputError(
                "dip_pct", self.dip_pct, "need interruption < dip < 100 < swell thresholds"
            )


@dataclass(frozen=True, slots=True)
class VoltageEvent:
    """One dip, swell or interruption.

    Attributes
    ----------
    kind : str
        ``"dip"``, ``"swell"`` or ``"interruption"``.
    start, end : float
        POSIX times of the first value past the start threshold and of the first value
        that ended the event (the last value of the record if it had not ended). [s]
    extreme_v : float
        Residual voltage (dip, interruption) or largest voltage (swell). [V]
    depth_pct : float
        U_din - residual (dip, interruption), or maximum - U_din (swell), in % of U_din.
    channels : tuple of int
        Channels that crossed the start threshold.
    ended : bool
        False if the record ends during the event.
    """

    kind: EventKind
    start: float
    end: float
    extreme_v: float
    depth_pct: float
    channels: tuple[int, ...]
    ended: bool

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def start_time(self) -> datetime:
        return from_epoch(self.start)


def half_cycle_rms(samples: FloatArray, boundaries: IntArray) -> FloatArray:
    """Urms(1/2): one-cycle RMS values refreshed every half cycle, offset removed.

    Parameters
    ----------
    samples : array, shape (channels, samples)
        Voltage samples. [V]
    boundaries : int array
        Half-cycle boundaries (increasing sample indices, at least 3).

    Returns
    -------
    array, shape (channels, boundaries - 2)
        Value k is the RMS of samples b_k .. b_{k+2} - 1 about their mean. [V]
    """
    x = np.asarray(samples, dtype=np.float64)
    count = boundaries.size - 1
    sums = np.empty((*x.shape[:-1], count))
    squares = np.empty((*x.shape[:-1], count))
    # Blocks of whole half cycles, squared into one reused buffer that stays in cache.
    block_edges = np.append(np.arange(0, count, _HALF_CYCLES_PER_BLOCK), count)
    span = int(np.diff(boundaries[block_edges]).max())
    buffer = np.empty((*x.shape[:-1], span))
    for first, last in itertools.pairwise(block_edges.tolist()):
        begin, end = int(boundaries[first]), int(boundaries[last])
        block = x[..., begin:end]
        local = boundaries[first:last] - begin
        squared = np.square(block, out=buffer[..., : end - begin])
        sums[..., first:last] = np.add.reduceat(block, local, axis=-1)
        squares[..., first:last] = np.add.reduceat(squared, local, axis=-1)
    counts = np.diff(boundaries).astype(np.float64)
    cycle_sum = sums[..., :-1] + sums[..., 1:]
    cycle_squares = squares[..., :-1] + squares[..., 1:]
    cycle_count = counts[:-1] + counts[1:]
    mean = cycle_sum / cycle_count
    result: FloatArray = np.sqrt(np.maximum(cycle_squares / cycle_count - mean * mean, 0.0))
    return result


def _hysteresis_state(start: BoolArray, end: BoolArray) -> BoolArray:
    """State after each value: set by ``start``, cleared by ``end``, otherwise kept."""
    index = np.arange(start.size)
    marked = np.where(start | end, index, -1)
    last = np.maximum.accumulate(marked)
    result: BoolArray = np.where(last >= 0, start[np.maximum(last, 0)], False)
    return result


def _runs(state: BoolArray) -> tuple[IntArray, IntArray]:
    padded = np.concatenate([[False], state, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def detect_events(
    urms_half: FloatArray,
    times: FloatArray,
    declared_v: float,
    thresholds: EventThresholds | None = None,
) -> list[VoltageEvent]:
    """Dips, swells and interruptions in Urms(1/2) values (module docstring for the rules).

    Parameters
    ----------
    urms_half : array, shape (channels, values)
        Urms(1/2) of each voltage channel. [V]
    times : array, shape (values,)
        POSIX time of each value (the end of its cycle). [s]
    declared_v : float
        Declared supply voltage U_din. [V]
    thresholds : EventThresholds
        Thresholds in % of U_din.

    Returns
    -------
    list of VoltageEvent
        Ordered by start time.
    """
    if not np.isfinite(declared_v) or declared_v <= 0:
        raise InvalidInputError("declared_voltage_v", declared_v, "must be a positive voltage")
    rules = thresholds or EventThresholds()
    u = np.atleast_2d(np.asarray(urms_half, dtype=np.float64)) / declared_v * 100.0
    if u.shape[-1] == 0:
        return []
    hyst = rules.hysteresis_pct
    low = u.min(axis=0)
    high = u.max(axis=0)
    kinds: list[tuple[EventKind, BoolArray, BoolArray, BoolArray]] = [
        ("dip", low < rules.dip_pct, low >= rules.dip_pct + hyst, u < rules.dip_pct),
        ("swell", high > rules.swell_pct, high <= rules.swell_pct - hyst, u > rules.swell_pct),
        (
            "interruption",
            high < rules.interruption_pct,
            high >= rules.interruption_pct + hyst,
            u < rules.interruption_pct,
        ),
    ]
    events: list[VoltageEvent] = []
    for kind, start, end, per_channel in kinds:
        if not start.any():
            continue
        state = _hysteresis_state(start, end)
        first, stop = _runs(state)
        if first.size == 0:
            continue
        if kind == "swell":
            extreme = np.array([high[a:b].max() for a, b in zip(first, stop, strict=True)])
        else:
            extreme = np.array([low[a:b].min() for a, b in zip(first, stop, strict=True)])
        for run, (a, b) in enumerate(zip(first, stop, strict=True)):
            ended = b < state.size
            end_time = times[b] if ended else times[-1]
            channels = tuple(int(c) for c in np.flatnonzero(per_channel[:, a:b].any(axis=1)))
            value = float(extreme[run])
            depth = value - 100.0 if kind == "swell" else 100.0 - value
            events.append(
                VoltageEvent(
                    kind=kind,
                    start=float(times[a]),
                    end=float(end_time),
                    extreme_v=value * declared_v / 100.0,
                    depth_pct=depth,
                    channels=channels,
                    ended=bool(ended),
                )
            )
    events.sort(key=lambda event: (event.start, event.kind))
    return events


def overlaps_events(
    window_start: FloatArray, window_end: FloatArray, events: list[VoltageEvent]
) -> BoolArray:
    """True for each window [start, end) that overlaps any event [start, end].

    IEC 61000-4-30 4.7: every value measured during a dip, swell or interruption is
    flagged, and so is every aggregate that includes a flagged value.
    """
    flagged = np.zeros(np.shape(window_start), dtype=bool)
    if not events:
        return flagged
    starts = np.array([event.start for event in events])
    ends = np.array([event.end for event in events])
    order = np.argsort(starts)
    starts = starts[order]
    ends_max = np.maximum.accumulate(ends[order])
    # events that start before the window ends; the latest end among them
    count = np.searchsorted(starts, window_end, side="left")
    has = count > 0
    latest_end = np.where(has, ends_max[np.maximum(count - 1, 0)], -np.inf)
    flagged = has & (latest_end >= window_start)
    return flagged
