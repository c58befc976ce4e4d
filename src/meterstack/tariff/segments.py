"""Sums and maxima of interval data over runs of equal labels (segment reductions).

Interval data of a fleet are an (M, N) array in time order. What a bill needs of them are
sums and maxima over *groups* of positions (a billing cycle, a (cycle, period) pair, a local
clock hour, a demand window), and in time order every group comes as a few long *runs* of
consecutive positions: a cycle is one run, a time-of-use period a few runs a day. A
:class:`Grouping` records those runs once per interval grid; :func:`run_sums` and
:func:`run_maxima` reduce every run of every meter in one pass over the data
(``numpy.ufunc.reduceat`` on the flattened array, runs of all meters at once), and
:meth:`Grouping.sums` / :meth:`Grouping.maxima` combine the few runs of each group.

For a run ``r`` of positions ``s_r .. s_{r+1} - 1`` and meter ``m``:

    S[m, r] = sum_{t = s_r}^{s_{r+1} - 1} x[m, t]        X[m, r] = max_t x[m, t]

and for a group ``g``: ``sum_g = sum of S over the runs labelled g``, ``max_g = max of X``.

Maxima of values known to be non-negative (and not NaN) are taken on their bit patterns
read as 64-bit integers: an IEEE 754 binary64 number stores its sign, then its biased
exponent, then its significand [2]_, so for non-negative numbers (+0 to +inf) the order of
the patterns as integers is the order of the numbers. The integer maximum needs no NaN
handling and is about twice as fast; the result is the same number, bit for bit.

For bulk rating, :func:`segment_pass` does the sums, the maxima and the input check in a
single read of each value, and :func:`run_blocks` splits run sums into blocks; both are
plain loops that Numba compiles (:func:`compiled_segment_pass`,
:func:`compiled_run_blocks`) and are tested against the NumPy forms above.

References
----------
.. [1] NumPy reference, ``numpy.ufunc.reduceat``: reduction over the slices
   ``a[indices[i]:indices[i+1]]``.
.. [2] IEEE Std 754-2019, 3.4 "Binary interchange format encodings" (field order sign,
   biased exponent, trailing significand).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Grouping",
    "SegmentPlan",
    "compiled_run_blocks",
    "compiled_segment_pass",
    "grouping",
    "run_blocks",
    "run_maxima",
    "run_sums",
    "runs_of",
    "segment_pass",
    "segment_pass_8",
]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(eq=False)
class Grouping:
    """N positions in runs of equal labels; the labels are groups 0..n_groups-1.

    Attributes
    ----------
    starts : int array (R,)
        First position of each run; ``starts[0] == 0``, strictly increasing.
    run_label : int array (R,)
        Group of each run.
    n_groups : int
        Number of groups G (a group may have no run).
    n_positions : int
        N.
    """

    starts: IntArray
    run_label: IntArray
    n_groups: int
    n_positions: int
    _onehot: Array | None = field(default=None, repr=False)
    _order: IntArray | None = field(default=None, repr=False)
    _group_starts: IntArray | None = field(default=None, repr=False)
    _present: IntArray | None = field(default=None, repr=False)
    _flat: dict[int, IntArray] = field(default_factory=dict, repr=False)

    @property
    def n_runs(self) -> int:
        return int(self.starts.shape[0])

    def flat_starts(self, n_meters: int) -> IntArray:
        """Run starts of every meter in the flattened (M * N,) array (cached per M)."""
        cached = self._flat.get(n_meters)
        if cached is None:
            rows = np.arange(n_meters, dtype=np.int64)[:, None] * self.n_positions
            cached = (rows + self.starts[None, :]).ravel()
            self._flat[n_meters] = cached
        return cached

    def onehot(self) -> Array:
        """(R, G) matrix: 1 where run r belongs to group g."""
        if self._onehot is None:
            matrix = np.zeros((self.n_runs, self.n_groups))
            matrix[np.arange(self.n_runs), self.run_label] = 1.0
            self._onehot = matrix
        return self._onehot

    def _sorted_runs(self) -> tuple[IntArray, IntArray, IntArray]:
        if self._order is None:
            order = np.argsort(self.run_label, kind="stable").astype(np.int64)
            labels = self.run_label[order]
            first = np.flatnonzero(np.concatenate([[True], labels[1:] != labels[:-1]]))
            self._order = order
            self._group_starts = first.astype(np.int64)
            self._present = labels[first].astype(np.int64)
        assert self._group_starts is not None
        assert self._present is not None
        return self._order, self._group_starts, self._present

    def sums(self, values: Array) -> Array:
        """Sum of each group (M, G) from (M, N) values in time order."""
        return self.sums_of_runs(run_sums(values, self))

    def sums_of_runs(self, sums: Array) -> Array:
        """Sum of each group (M, G) from run sums (M, R)."""
        if self.n_runs == self.n_groups and np.array_equal(
            self.run_label, np.arange(self.n_groups)
        ):
            return sums
        result: Array = sums @ self.onehot()
        return result

    def maxima(self, values: Array, empty: float = 0.0, nonnegative: bool = False) -> Array:
        """Largest value of each group (M, G); ``empty`` for a group with no position.

        ``nonnegative``: the caller guarantees ``values >= 0`` (no NaN); see the module
        docstring.
        """
        return self.maxima_of_runs(run_maxima(values, self, nonnegative), empty)

    def maxima_of_runs(self, maxima: Array, empty: float = 0.0) -> Array:
        """Largest value of each group (M, G) from run maxima (M, R)."""
        m_n = maxima.shape[0]
        if self.n_runs == self.n_groups and np.array_equal(
            self.run_label, np.arange(self.n_groups)
        ):
            return maxima
        out = np.full((m_n, self.n_groups), empty)
        order, group_starts, present = self._sorted_runs()
        if m_n and order.shape[0]:
            out[:, present] = np.maximum.reduceat(maxima[:, order], group_starts, axis=1)
        return out


def grouping(labels: IntArray, n_groups: int) -> Grouping:
    """The runs of equal consecutive labels of N positions.

    Parameters
    ----------
    labels : int array (N,)
        Group 0..n_groups-1 of each position, in time order.
    n_groups : int
        Number of groups.
    """
    lab = np.asarray(labels, dtype=np.int64)
    n = int(lab.shape[0])
    if n == 0:
        return Grouping(np.zeros(0, np.int64), np.zeros(0, np.int64), n_groups, 0)
    starts = np.flatnonzero(np.concatenate([[True], lab[1:] != lab[:-1]])).astype(np.int64)
    return Grouping(starts, lab[starts], n_groups, n)


def runs_of(keys: IntArray) -> Grouping:
    """Runs of equal consecutive keys, each run its own group (e.g. hours, demand windows)."""
    key = np.asarray(keys, dtype=np.int64)
    n = int(key.shape[0])
    if n == 0:
        return Grouping(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0)
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])).astype(np.int64)
    return Grouping(starts, np.arange(starts.shape[0], dtype=np.int64), int(starts.shape[0]), n)


def _flat_reduce(ufunc: np.ufunc, values: Array, runs: Grouping, as_int: bool = False) -> Array:
    m_n, n = values.shape
    if n != runs.n_positions:
        raise ValueError(f"values have {n} positions, the grouping {runs.n_positions}")
    if m_n == 0 or n == 0:
        return np.zeros((m_n, runs.n_runs))
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if as_int:
        reduced = ufunc.reduceat(flat.view(np.int64), runs.flat_starts(m_n))
        result: Array = reduced.view(np.float64).reshape(m_n, runs.n_runs)
        return result
    result = ufunc.reduceat(flat, runs.flat_starts(m_n)).reshape(m_n, runs.n_runs)
    return result


def run_sums(values: Array, runs: Grouping) -> Array:
    """Sum of each run of each meter: (M, N) -> (M, R). See the module docstring."""
    return _flat_reduce(np.add, values, runs)


def run_maxima(values: Array, runs: Grouping, nonnegative: bool = False) -> Array:
    """Largest value of each run of each meter: (M, N) -> (M, R).

    ``nonnegative``: the caller guarantees ``values >= 0`` (no NaN), and the maximum is
    taken on the bit patterns (see the module docstring).
    """
    return _flat_reduce(np.maximum, values, runs, as_int=nonnegative)


@dataclass(eq=False)
class SegmentPlan:
    """Segments of the grid for :func:`segment_pass`: sums per run and maxima per group.

    Attributes
    ----------
    starts : int array (S + 1,)
        Segment boundaries, ``starts[0] == 0`` and ``starts[-1] == N``.
    run : int array (S,)
        Run (of the sums) each segment lies in.
    group : int array (S,)
        Group of the maxima of each segment, -1 for none.
    window : int
        1: the maxima are of the values in a segment; n > 1: segments are windows of n
        values and the maxima are of the sums of complete windows.
    n_runs, n_groups : int
    """

    starts: IntArray
    run: IntArray
    group: IntArray
    window: int
    n_runs: int
    n_groups: int


def segment_pass(  # noqa: PLR0917
    values: Array,
    starts: IntArray,
    run: IntArray,
    group: IntArray,
    window: int,
    sums: Array,
    maxima: Array,
) -> int:
    """Run sums and group maxima of every meter in one pass; checks the values too.

    The loop a compiler turns into one read of the data (see :func:`compiled_segment_pass`);
    as plain Python it is the reference the compiled code is tested against.

    Parameters
    ----------
    values : array (M, N)
        Non-negative values in time order.
    starts, run, group, window
        As in :class:`SegmentPlan`.
    sums : array (M, R)
        Out: sum of each run.
    maxima : array (M, G)
        Out: largest value (or complete-window sum) of each group, 0 for none.

    Returns
    -------
    int
        The first meter with a negative or NaN value, or -1.
    """
    m_n = values.shape[0]
    s_n = starts.shape[0] - 1
    bad = -1
    for m in range(m_n):
        row = values[m]
        for r in range(sums.shape[1]):
            sums[m, r] = 0.0
        for g in range(maxima.shape[1]):
            maxima[m, g] = 0.0
        for s in range(s_n):
            total = 0.0
            peak = 0.0
            valid = True
            for t in range(starts[s], starts[s + 1]):
                v = row[t]
                total += v
                peak = max(peak, v)
                valid = valid and v >= 0.0  # False for NaN too
            if not valid and bad < 0:
                bad = m
            sums[m, run[s]] += total
            g = group[s]
            if g >= 0:
                if window > 1:
                    peak = total if starts[s + 1] - starts[s] == window else 0.0
                maxima[m, g] = max(maxima[m, g], peak)
    return bad


def segment_pass_8(  # noqa: PLR0917
    values: Array,
    starts: IntArray,
    run: IntArray,
    group: IntArray,
    window: int,
    sums: Array,
    maxima: Array,
) -> int:
    """:func:`segment_pass` on eight meters at a time: the same numbers, bit for bit.

    The plain loop adds each meter's values one after the other, so each addition waits
    for the one before it (a floating-point add takes about four clock cycles to finish).
    Here eight meters advance together through each segment, with eight running sums and
    maxima in eight pairs of registers: eight independent chains, which the processor
    overlaps. Each meter's values are still added in time order, starting from 0.0, so
    every sum is the same IEEE 754 number as :func:`segment_pass` gives; a maximum does
    not depend on the order. About twice as fast compiled (see ``bench/billing.py``).

    The input check is folded in: the smallest value of the eight meters catches negative
    numbers and -inf, and a NaN makes its meter's sum NaN; the first bad meter is then
    found by reading its group's rows again (only on bad data). A last group of fewer
    than eight meters repeats its last row in the spare lanes and keeps only its own
    results. Parameters and result as in :func:`segment_pass`.
    """
    m_n = values.shape[0]
    s_n = starts.shape[0] - 1
    bad = -1
    for m in range(0, m_n, 8):
        lanes = min(8, m_n - m)
        sums[m : m + lanes] = 0.0
        maxima[m : m + lanes] = 0.0
        # a last group of fewer than eight meters reads its last row in the spare lanes
        i0, i1, i2, i3 = m, min(m + 1, m_n - 1), min(m + 2, m_n - 1), min(m + 3, m_n - 1)
        i4, i5, i6, i7 = (
            min(m + 4, m_n - 1),
            min(m + 5, m_n - 1),
            min(m + 6, m_n - 1),
            min(m + 7, m_n - 1),
        )
        group_bad = False
        for s in range(s_n):
            a = starts[s]
            e = starts[s + 1]
            t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0.0
            p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 0.0
            low = 0.0
            for t in range(a, e):
                v0 = values[i0, t]
                v1 = values[i1, t]
                v2 = values[i2, t]
                v3 = values[i3, t]
                v4 = values[i4, t]
                v5 = values[i5, t]
                v6 = values[i6, t]
                v7 = values[i7, t]
                t0 += v0
                t1 += v1
                t2 += v2
                t3 += v3
                t4 += v4
                t5 += v5
                t6 += v6
                t7 += v7
                p0 = max(p0, v0)
                p1 = max(p1, v1)
                p2 = max(p2, v2)
                p3 = max(p3, v3)
                p4 = max(p4, v4)
                p5 = max(p5, v5)
                p6 = max(p6, v6)
                p7 = max(p7, v7)
                low = min(low, min(min(v0, v1), min(v2, v3)), min(min(v4, v5), min(v6, v7)))  # noqa: PLW3301
            total = (t0, t1, t2, t3, t4, t5, t6, t7)
            peak = (p0, p1, p2, p3, p4, p5, p6, p7)
            either = t0 + t1 + t2 + t3 + t4 + t5 + t6 + t7  # NaN if a sum is NaN
            if low < 0.0 or either != either:  # noqa: PLR0124  (a NaN test)
                group_bad = True
            r = run[s]
            g = group[s]
            for j in range(lanes):
                sums[m + j, r] += total[j]
                if g >= 0:
                    pk = peak[j]
                    if window > 1:
                        pk = total[j] if e - a == window else 0.0
                    maxima[m + j, g] = max(maxima[m + j, g], pk)
        if group_bad and bad < 0:
            for j in range(lanes):
                row_bad = False
                for t in range(values.shape[1]):
                    if not values[m + j, t] >= 0.0:
                        row_bad = True
                        break
                if row_bad:
                    bad = m + j
                    break
    return bad


def run_blocks(
    sums: Array,
    run_cycle: IntArray,
    run_group: IntArray,
    limits: Array,
    out: Array,
) -> None:
    """Energy of each (group, block) from run sums, blocks filled in time order.

    The loop form of :func:`meterstack.tariff.rating.blocks_of_runs`: run r of a cycle
    spans the cumulative range ``(C_{r-1}, C_r]`` and block b the range
    ``(L_{b-1}, L_b]``; the run puts their overlap,
    ``max(0, min(C_r, L_b) - max(C_{r-1}, L_{b-1}))``, into block b of its group.

    Parameters
    ----------
    sums : array (M, R)
        Energy of each run, >= 0. [kWh]
    run_cycle, run_group : int arrays (R,)
        Cycle (in time order) and (cycle, period) group of each run.
    limits : array (M, K, B)
        Upper limit of each block of each cycle, ``inf`` for the last. [kWh]
    out : array (M, G, B)
        Out. [kWh]
    """
    m_n, r_n = sums.shape
    g_n = out.shape[1]
    b_n = limits.shape[2]
    for m in range(m_n):
        for g in range(g_n):
            for b in range(b_n):
                out[m, g, b] = 0.0
        cum = 0.0
        cycle = -1
        b = 0
        lower = 0.0
        upper = 0.0
        for r in range(r_n):
            k = run_cycle[r]
            if k != cycle:  # a new cycle: empty blocks again
                cycle = k
                cum = 0.0
                b = 0
                lower = 0.0
                upper = limits[m, k, 0]
            prev = cum
            cum = prev + sums[m, r]
            g = run_group[r]
            while True:  # the blocks this run reaches, from the current one up
                part = min(cum, upper) - max(prev, lower)
                if part > 0.0:
                    out[m, g, b] += part
                if cum <= upper or b == b_n - 1:
                    break
                b += 1
                lower = upper
                upper = limits[m, k, b]


_COMPILED: dict[str, Callable[..., object]] = {}
_COMPILE_LOCK = threading.Lock()


def _compiled(name: str, function: Callable[..., object]) -> Callable[..., object] | None:
    """``function`` compiled by Numba [3]_ once per process, or None without Numba.

    Compiled at the first call (2-3 s for the Numba import and the segment pass on a
    busy 2-core machine) and never written to disk.

    References
    ----------
    .. [3] S. K. Lam, A. Pitrou, S. Seibert, "Numba: a LLVM-based Python JIT compiler",
       Proc. LLVM-HPC 2015, doi:10.1145/2833157.2833162.
    """
    found = _COMPILED.get(name)
    if found is not None:
        return found
    with _COMPILE_LOCK:
        if name not in _COMPILED:
            try:
                import numba  # noqa: PLC0415  (heavy: imported on first bulk use only)
            except ImportError:
                return None
            _COMPILED[name] = numba.njit(nogil=True, cache=False)(function)
    return _COMPILED[name]


def compiled_segment_pass() -> Callable[..., int] | None:
    """:func:`segment_pass` compiled (None without Numba).

    It reads each value once, eight meters at a time (:func:`segment_pass_8`): about six
    times faster than the three NumPy passes it replaces (sum, maximum, check).
    """
    if _compiled("segment_pass", segment_pass) is None:
        return None
    return _compiled("segment_pass_8", segment_pass_8)  # type: ignore[return-value]


def compiled_run_blocks() -> Callable[..., None] | None:
    """:func:`run_blocks` compiled (None without Numba)."""
    return _compiled("run_blocks", run_blocks)  # type: ignore[return-value]
