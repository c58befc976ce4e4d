"""Framing: zero crossings, 10/12-cycle windows resynchronised at 10-min ticks, frequency.

IEC 61000-4-30 class A measures over windows of exactly 10 cycles (50 Hz) or 12 cycles
(60 Hz) of the actual supply frequency, contiguous and not overlapping, and restarts the
sequence at every 10-min UTC tick: the last window before a tick may overlap the first
window after it. The windows here start at positive-going zero crossings of the filtered
reference voltage (the first phase) and span N crossings, so each one is N cycles long to
within half a sample (0.03 % of a window at 8 kHz, the synchronisation tolerance of
IEC 61000-4-7).

Where the reference has no zero crossing for more than 1.5 nominal periods (an
interruption), virtual crossings at the nominal period keep windows and half cycles
going; they never count towards the frequency.

References
----------
.. [1] IEC 61000-4-30:2015, 4.4 (measurement aggregation), 4.5 (time-clock
       synchronisation of aggregation intervals), 5.1 (power frequency), 5.2.1.
.. [2] IEC 61000-4-7:2002+A1:2008, 4.4.1 (window synchronisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.metrology.record import FloatArray, cycles_per_window

__all__ = [
    "TEN_MINUTES_S",
    "Framing",
    "frame_windows",
    "frequency_10s",
    "half_cycle_boundaries",
    "positive_zero_crossings",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TEN_MINUTES_S = 600.0


def positive_zero_crossings(reference: FloatArray, hysteresis: float) -> FloatArray:
    """Fractional sample positions of the positive-going zero crossings of ``reference``.

    A crossing counts only when the signal has gone below ``-hysteresis`` before it and
    rises above ``+hysteresis`` after it (a Schmitt trigger), so noise near zero makes no
    extra crossings. The position is the linear interpolation of the last sign change.

    Parameters
    ----------
    reference : array, shape (samples,)
        Filtered reference voltage. [V]
    hysteresis : float
        Half-width of the trigger band. [V]

    Returns
    -------
    array
        Increasing crossing positions. [samples]
    """
    high = reference > hysteresis
    low = reference < -hysteresis
    high_starts = _run_starts(high)
    low_starts = _run_starts(low)
    if high_starts.size == 0 or low_starts.size == 0:
        return np.empty(0)
    # A run above +hysteresis is a rising crossing when the signal went below
    # -hysteresis since the previous such run (or, for the first run, at all before it).
    lows_before = np.searchsorted(low_starts, high_starts)
    since_previous = np.diff(lows_before, prepend=0)
    rising = high_starts[since_previous > 0]
    if rising.size == 0:
        return np.empty(0)
    negative = reference < 0.0
    changes = np.flatnonzero(negative[:-1] & ~negative[1:])
    before = changes[np.searchsorted(changes, rising, side="left") - 1]
    a = reference[before]
    b = reference[before + 1]
    crossings: FloatArray = before + a / (a - b)
    return crossings


def _run_starts(mask: BoolArray) -> IntArray:
    """Indices where runs of True begin."""
    starts = np.flatnonzero(mask[1:] & ~mask[:-1]) + 1
    if mask.size and mask[0]:
        starts = np.concatenate([[0], starts])
    result: IntArray = starts
    return result


def fill_gaps(
    crossings: FloatArray, period: float, samples: int, head_start: float = 0.0
) -> tuple[FloatArray, BoolArray]:
    """Add virtual crossings at the nominal ``period`` wherever real ones are missing.

    Gaps longer than 1.5 periods (between crossings, from ``head_start`` to the first and
    after the last) are filled with evenly spaced crossings. Returns the crossings and a
    mask that is True for real ones.
    """
    if crossings.size == 0:
        virtual = np.arange(head_start, samples, period)
        return virtual, np.zeros(virtual.size, dtype=bool)
    lead = crossings[0] - head_start
    steps = np.floor(lead / period) if lead > 1.5 * period else 0.0
    head = crossings[0] - period * np.arange(steps, 0, -1)
    tail_count = int(np.floor((samples - 1 - crossings[-1]) / period))
    tail = crossings[-1] + period * np.arange(1, tail_count + 1)
    gaps = np.diff(crossings)
    counts = np.where(gaps > 1.5 * period, np.rint(gaps / period).astype(np.int64) - 1, 0)
    total_extra = int(counts.sum())
    if total_extra:
        owner = np.repeat(np.arange(gaps.size), counts)
        rank = np.arange(total_extra) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        step = gaps[owner] / (counts[owner] + 1)
        extra = crossings[owner] + rank * step
    else:
        extra = np.empty(0)
    head = head[head >= head_start]
    merged = np.concatenate([head, crossings, extra, tail])
    real = np.concatenate(
        [
            np.zeros(head.size, dtype=bool),
            np.ones(crossings.size, dtype=bool),
            np.zeros(extra.size + tail.size, dtype=bool),
        ]
    )
    order = np.argsort(merged, kind="stable")
    return merged[order], real[order]


@dataclass(frozen=True, slots=True, eq=False)
class Framing:
    """The synchronised windows of one record.

    Attributes
    ----------
    crossings : array
        Positive-going zero crossings, real and virtual. [samples]
    real : bool array
        True where a crossing was measured, False where it was filled in.
    start, length : int arrays, shape (windows,)
        First sample and sample count of each window.
    exact_length : array, shape (windows,)
        Window length from the fractional crossings. [samples]
    segment : int array, shape (windows,)
        Index of the 10-min interval (UTC) each window belongs to.
    cycles : int
        Cycles per window (10 or 12).
    """

    crossings: FloatArray
    real: BoolArray
    start: IntArray
    length: IntArray
    exact_length: FloatArray
    segment: IntArray
    cycles: int

    @property
    def end(self) -> IntArray:
        return self.start + self.length

    @property
    def count(self) -> int:
        return int(self.start.size)


def frame_windows(
    crossings: FloatArray,
    real: BoolArray,
    samples: int,
    *,
    fs_hz: float,
    f0_hz: int,
    start_epoch: float,
) -> Framing:
    """Cut the record into N-cycle windows that restart at each 10-min UTC tick.

    Within each 10-min interval the first window starts at the first crossing at or after
    the tick; each later window starts where the previous one ends (N crossings on). A
    window belongs to the interval in which it starts; the last one may run past the next
    tick (the overlap IEC 61000-4-30 allows). Windows that would run past the record's
    end are dropped.
    """
    cycles = cycles_per_window(f0_hz)
    # Index of the 10-min interval of each crossing, counted from the record's first.
    crossing_epoch = start_epoch + crossings / fs_hz
    interval = np.floor(crossing_epoch / TEN_MINUTES_S).astype(np.int64)
    first_interval = interval[0] if interval.size else 0
    interval -= first_interval
    is_first = np.ones(interval.size, dtype=bool)
    is_first[1:] = interval[1:] != interval[:-1]
    first_index = np.maximum.accumulate(np.where(is_first, np.arange(interval.size), 0))
    rank = np.arange(interval.size) - first_index
    starts = np.flatnonzero(
        (rank % cycles == 0) & (np.arange(interval.size) + cycles < interval.size)
    )
    z0 = crossings[starts]
    z1 = crossings[starts + cycles]
    start = np.rint(z0).astype(np.int64)
    exact = z1 - z0
    length = np.rint(exact).astype(np.int64)
    keep = start + length <= samples
    return Framing(
        crossings=crossings,
        real=real,
        start=start[keep],
        length=length[keep],
        exact_length=exact[keep],
        segment=interval[starts][keep],
        cycles=cycles,
    )


def frequency_10s(
    crossings: FloatArray, real: BoolArray, fs_hz: float, start_epoch: float
) -> tuple[FloatArray, FloatArray]:
    """Power frequency per 10-s UTC interval (IEC 61000-4-30 5.1.2).

    The frequency is the number of integral cycles counted within the interval divided by
    their cumulative duration. A cycle counts where both of its crossings are measured and
    lie in the same interval.

    Returns
    -------
    end_epoch : array
        POSIX time of each interval's end (intervals are labelled by their end). [s]
    frequency_hz : array
        The frequency; NaN for an interval without a whole measured cycle. [Hz]
    """
    if crossings.size < 2:
        return np.empty(0), np.empty(0)
    epoch = start_epoch + crossings / fs_hz
    interval = np.floor(epoch / 10.0).astype(np.int64)
    valid = real[:-1] & real[1:] & (interval[:-1] == interval[1:])
    first = interval[0]
    bins = interval[:-1][valid] - first
    size = int(interval[-1] - first + 1)
    count = np.bincount(bins, minlength=size).astype(np.float64)
    duration = np.bincount(bins, weights=np.diff(crossings)[valid], minlength=size) / fs_hz
    with np.errstate(invalid="ignore", divide="ignore"):
        frequency = np.where(count > 0, count / duration, np.nan)
    ends = (first + np.arange(size) + 1) * 10.0
    return ends.astype(np.float64), frequency


def half_cycle_boundaries(crossings: FloatArray, samples: int) -> IntArray:
    """Sample indices that split the record into half cycles.

    The positive-going crossings and the midpoints between consecutive ones, rounded to
    samples, strictly increasing and within the record.
    """
    mids = 0.5 * (crossings[:-1] + crossings[1:])
    merged = np.empty(crossings.size + mids.size)
    merged[0::2] = crossings
    merged[1::2] = mids
    bounds = np.rint(merged).astype(np.int64)
    bounds = bounds[(bounds >= 0) & (bounds <= samples)]
    keep = np.ones(bounds.size, dtype=bool)
    keep[1:] = bounds[1:] > bounds[:-1]
    result: IntArray = bounds[keep]
    return result
