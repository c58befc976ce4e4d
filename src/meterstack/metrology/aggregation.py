"""Aggregation of 10/12-cycle values over 150/180 cycles, 10 min and 2 h.

Every aggregate is the root mean square of its inputs, sqrt(mean(x^2)), and carries a
flag if any input was flagged (measured during a dip, swell or interruption).

* 150/180 cycles: 15 consecutive 10/12-cycle values; the blocks restart at each 10-min
  tick, and a block left incomplete at a tick is not reported.
* 10 min: the 10/12-cycle values whose window starts in the interval; labelled by the
  interval's end (a UTC 10-min tick).
* 2 h: the 10-min values of the interval, labelled by its end (a UTC 2-h tick).

References
----------
.. [1] IEC 61000-4-30:2015, 4.5.2 (aggregation algorithm: square root of the arithmetic
       mean of the squared input values), 4.5.3 (time-clock synchronisation), 4.7
       (flagging).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.record import FloatArray
from meterstack.metrology.windows import TEN_MINUTES_S, BoolArray, IntArray

__all__ = [
    "TWO_HOURS_S",
    "Aggregation",
    "block_groups",
    "flag_aggregate",
    "mean_aggregate",
    "rms_aggregate",
    "ten_minute_groups",
    "two_hour_groups",
]

TWO_HOURS_S = 7200.0


@dataclass(frozen=True, slots=True, eq=False)
class Aggregation:
    """Which inputs form which aggregate.

    Attributes
    ----------
    members : int array, shape (inputs_used,)
        Indices of the inputs that take part, grouped and in order.
    starts : int array, shape (groups,)
        Offset of each group's first member in ``members``.
    end_epoch : array, shape (groups,)
        POSIX time that labels each aggregate (the end of its span). [s]
    """

    members: IntArray
    starts: IntArray
    end_epoch: FloatArray

    @property
    def count(self) -> int:
        return int(self.starts.size)

    def sizes(self) -> IntArray:
        result: IntArray = np.diff(np.append(self.starts, self.members.size))
        return result


def _from_labels(labels: IntArray, end_epoch: FloatArray, valid: BoolArray) -> Aggregation:
    members = np.flatnonzero(valid)
    if members.size == 0:
        return Aggregation(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    chosen = labels[members]
    if np.any(np.diff(chosen) < 0):
        raise InvalidInputError("labels", "unsorted", "inputs must be in time order")
    first = np.flatnonzero(np.concatenate([[True], chosen[1:] != chosen[:-1]]))
    return Aggregation(members, first, end_epoch[members[first]])


def block_groups(segment: IntArray, window_end_epoch: FloatArray, size: int = 15) -> Aggregation:
    """150/180-cycle blocks: ``size`` consecutive windows, restarting at each 10-min tick.

    Parameters
    ----------
    segment : int array, shape (windows,)
        10-min interval index of each window (from the framing).
    window_end_epoch : array, shape (windows,)
        End time of each window. [s]
    size : int
        Windows per block (15).
    """
    count = segment.size
    if count == 0:
        return _from_labels(segment, window_end_epoch, np.zeros(0, dtype=bool))
    is_first = np.ones(count, dtype=bool)
    is_first[1:] = segment[1:] != segment[:-1]
    first_index = np.maximum.accumulate(np.where(is_first, np.arange(count), 0))
    rank = np.arange(count) - first_index
    block = rank // size
    # A block is complete when its last member exists in the same segment.
    labels = segment * (count + 1) + block
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    complete = sizes[inverse] == size
    aggregation = _from_labels(labels, window_end_epoch, complete)
    # label each block by the end of its last window
    last = aggregation.members[aggregation.starts + size - 1]
    return Aggregation(aggregation.members, aggregation.starts, window_end_epoch[last])


def ten_minute_groups(segment: IntArray, window_start_epoch: FloatArray) -> Aggregation:
    """10-min intervals: windows grouped by the UTC 10-min interval they start in."""
    interval = np.floor(window_start_epoch / TEN_MINUTES_S).astype(np.int64)
    ends = (interval + 1) * TEN_MINUTES_S
    return _from_labels(interval, ends.astype(np.float64), np.ones(interval.size, dtype=bool))


def two_hour_groups(ten_minute_end_epoch: FloatArray) -> Aggregation:
    """2-h intervals: 10-min values grouped by the UTC 2-h interval that holds their end."""
    interval = np.ceil(ten_minute_end_epoch / TWO_HOURS_S).astype(np.int64)
    ends = interval * TWO_HOURS_S
    return _from_labels(interval, ends.astype(np.float64), np.ones(interval.size, dtype=bool))


def rms_aggregate(values: FloatArray, groups: Aggregation) -> FloatArray:
    """sqrt(mean(x^2)) of each group; the last axis of ``values`` indexes the inputs.

    Parameters
    ----------
    values : array, shape (..., inputs)
        Values to aggregate (any unit).
    groups : Aggregation
        The grouping.

    Returns
    -------
    array, shape (..., groups)
        Aggregated values (same unit).
    """
    x = np.asarray(values, dtype=np.float64)
    if groups.count == 0:
        return np.empty((*x.shape[:-1], 0))
    chosen = x[..., groups.members]
    sums = np.add.reduceat(chosen * chosen, groups.starts, axis=-1)
    result: FloatArray = np.sqrt(sums / groups.sizes())
    return result


def mean_aggregate(values: FloatArray, groups: Aggregation) -> FloatArray:
    """Arithmetic mean of each group (for signed quantities such as P and Q1)."""
    x = np.asarray(values, dtype=np.float64)
    if groups.count == 0:
        return np.empty((*x.shape[:-1], 0))
    sums = np.add.reduceat(x[..., groups.members], groups.starts, axis=-1)
    result: FloatArray = sums / groups.sizes()
    return result


def flag_aggregate(flags: BoolArray, groups: Aggregation) -> BoolArray:
    """True for each group that holds at least one flagged input."""
    if groups.count == 0:
        return np.zeros(0, dtype=bool)
    chosen = np.asarray(flags, dtype=np.int64)[groups.members]
    result: BoolArray = np.add.reduceat(chosen, groups.starts) > 0
    return result
