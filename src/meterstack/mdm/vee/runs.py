"""Runs of consecutive cells along the time axis of a meters x intervals grid."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BOOL2 = npt.NDArray[np.bool_]
I64_2 = npt.NDArray[np.int64]


def runs(mask: BOOL2) -> tuple[I64_2, I64_2, I64_2]:
    """For every cell of ``mask`` (meters x intervals), the run of True cells it is in.

    Returns ``(length, first, last)``: the run's length and the time indices of its first
    and last cell; 0 / -1 / -1 for False cells. Runs never cross from one meter to the next.
    """
    m, t = mask.shape
    padded = np.zeros((m, t + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded.ravel())
    starts = np.flatnonzero(step == 1) + 1
    stops = np.flatnonzero(step == -1) + 1
    lengths = stops - starts
    length = np.zeros(padded.size, dtype=np.int64)
    first = np.full(padded.size, -1, dtype=np.int64)
    last = np.full(padded.size, -1, dtype=np.int64)
    if lengths.size:
        total = int(lengths.sum())
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cells = np.repeat(starts, lengths) + offsets
        length[cells] = np.repeat(lengths, lengths)
        row_start = (np.repeat(starts, lengths) // (t + 2)) * (t + 2) + 1
        first[cells] = np.repeat(starts, lengths) - row_start
        last[cells] = np.repeat(stops - 1, lengths) - row_start
    shape = (m, t + 2)
    return (
        length.reshape(shape)[:, 1:-1],
        first.reshape(shape)[:, 1:-1],
        last.reshape(shape)[:, 1:-1],
    )
