"""Runs of consecutive cells along the time axis of a meters x intervals grid."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BOOL2 = npt.NDArray[np.bool_]
I64_2 = npt.NDArray[np.int64]
I64 = npt.NDArray[np.int64]


def run_spans(mask: BOOL2) -> tuple[I64, I64, I64]:
    """The runs of True cells of ``mask`` (meters x intervals), one entry per run:
    ``(row, first, length)``, in row-major order. Runs never cross from one meter to the
    next."""
    m, t = mask.shape
    padded = np.zeros((m, t + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded.reshape(-1))
    starts = np.flatnonzero(step == 1) + 1
    stops = np.flatnonzero(step == -1) + 1
    row = starts // (t + 2)
    return row, starts - row * (t + 2) - 1, stops - starts


def long_run_cells(mask: BOOL2, min_length: int) -> I64:
    """Flat (row-major) indices of the cells of ``mask`` that are in a run of at least
    ``min_length`` True cells along the time axis."""
    t = mask.shape[1]
    if np.count_nonzero(mask) < max(1, min_length):
        return np.zeros(0, dtype=np.int64)
    row, first, length = run_spans(mask)
    long = length >= min_length
    return cells_of_spans(row[long] * t + first[long], length[long])


def cells_of_spans(start: I64, length: I64) -> I64:
    """All indices ``start[k] .. start[k] + length[k] - 1``, run after run."""
    total = int(length.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(length) - length, length)
    out: I64 = np.repeat(start, length) + within
    return out
