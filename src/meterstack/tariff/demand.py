"""Demand: average power over demand windows, peaks per cycle and period, ratchets.

The demand of a window of length ``w`` [h] is the energy drawn in it divided by ``w`` [1]_:

    D = sum(kWh in window) / w

Fixed windows are aligned to the local clock (a 15-minute window ends at :00, :15, :30,
:45); sliding windows end at every interval. A window belongs to the cycle and period of
its last interval.

References
----------
.. [1] ANSI C12.1-2014, 3.20 "demand" and 3.22 "demand interval": the average power over a
   specified interval; block (fixed) and rolling (sliding) demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meterstack.tariff.errors import LoadDataError
from meterstack.tariff.schedule import Calendar
from meterstack.tariff.segments import Grouping, grouping, run_sums, runs_of

__all__ = ["DemandWindows", "demand_windows", "group_peaks", "ratchet_billing_demand"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(eq=False)
class DemandWindows:
    """Demand windows of a grid and the (cycle, demand period) group of each.

    A window's demand is the energy drawn in it divided by its length [1]_; it belongs to
    the cycle and period of its last interval. Fixed windows are aligned to the local clock
    and only complete ones count; sliding windows end at every interval.

    Attributes
    ----------
    per_window : int
        Intervals in one window (n).
    window_h : float
        Window length. [h]
    sliding : bool
    windows : Grouping or None
        Fixed windows of n > 1 intervals, one run each.
    groups : Grouping
        Over the windows; label ``cycle * D + period`` (D demand periods, at least 1), or
        ``K * D`` for an incomplete window (ignored).
    """

    per_window: int
    window_h: float
    sliding: bool
    windows: Grouping | None
    groups: Grouping
    n_cycles: int
    n_periods: int

    def sums(self, energy: Array) -> Array:
        """Energy of every window (M, W) [kWh or kvarh]."""
        n = self.per_window
        if n == 1:
            return energy
        if self.sliding:
            total = energy[:, n - 1 :].copy()
            for lag in range(1, n):
                total += energy[:, n - 1 - lag : energy.shape[1] - lag]
            return total
        assert self.windows is not None
        return run_sums(energy, self.windows)

    def peaks(self, window_energy: Array) -> Array:
        """Largest demand of each (cycle, period), (M, K, D), from window energies. [kW]

        ``window_energy`` must be >= 0 and not NaN (the rating engine checks its input).
        """
        m_n = window_energy.shape[0]
        maxima = self.groups.maxima(window_energy, nonnegative=True)
        maxima = maxima[:, : self.n_cycles * self.n_periods]
        peaks: Array = np.maximum(maxima, 0.0) / self.window_h
        return peaks.reshape(m_n, self.n_cycles, self.n_periods)


def demand_windows(
    calendar: Calendar,
    window_min: int,
    sliding: bool,
    demand_period: IntArray | None = None,
    n_periods: int = 1,
) -> DemandWindows:
    """The demand windows of a calendar.

    Parameters
    ----------
    calendar : Calendar
    window_min : int
        Window length, a multiple of the interval. [min]
    sliding : bool
        Rolling windows (one per interval) instead of clock-aligned ones.
    demand_period : int array (T,), optional
        Demand period of each interval (default all 0).
    n_periods : int
        Number of demand periods D.

    Raises
    ------
    LoadDataError
        The window is not a multiple of the data's step.
    """
    step_min = round(calendar.step_h * 60)
    if window_min < step_min or window_min % step_min:
        raise LoadDataError(
            "interval step",
            f"{step_min} min",
            f"a {window_min}-min demand window needs data at {window_min} min or a divisor of it",
        )
    n = window_min // step_min
    t_n = calendar.n_intervals
    k_n = calendar.n_cycles
    d_n = max(n_periods, 1)
    dper = demand_period if demand_period is not None else np.zeros(t_n, dtype=np.int64)
    label = calendar.cycle * d_n + dper
    windows = None
    if n == 1:
        window_label = label
    elif sliding:
        window_label = label[n - 1 :]
    else:
        key = (
            calendar.local_date.astype(np.int64) * 1440
            + (calendar.minute // window_min) * window_min
        )
        windows = runs_of(key)
        sizes = np.diff(np.concatenate([windows.starts, [t_n]]))
        last = windows.starts + sizes - 1
        window_label = np.where(sizes == n, label[last], k_n * d_n)
    return DemandWindows(
        per_window=n,
        window_h=window_min / 60.0,
        sliding=sliding,
        windows=windows,
        groups=grouping(window_label, k_n * d_n + 1),
        n_cycles=k_n,
        n_periods=d_n,
    )


def group_peaks(
    demand: NDArray[np.float64], group: NDArray[np.int64], n_groups: int
) -> NDArray[np.float64]:
    """Largest demand of each group (0 for a group with no window).

    Parameters
    ----------
    demand : array (M, W)
        Window demands, in time order. [kW]
    group : int array (W,)
        Group of each window, 0..n_groups-1 (e.g. cycle x period).

    Returns
    -------
    peaks : array (M, n_groups)
        [kW]
    """
    peaks: Array = np.maximum(grouping(group, n_groups).maxima(demand), 0.0)
    return peaks


def ratchet_billing_demand(  # noqa: PLR0917
    peaks: NDArray[np.float64],
    cycle_month: NDArray[np.int64],
    percent: float,
    months: int,
    floor_actual: bool,
    apply_months: list[int],
    history: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Billing demand with a ratchet: at least ``percent`` of the highest recent peak.

    billed_k = max(peak_k if floor_actual, percent/100 x max(peak_{k-months} .. peak_{k-1}))

    (Without ``floor_actual`` the current peak enters the look-back maximum instead of
    standing alone, as tariffs that ratchet on "the highest demand of the current and
    preceding N months" do.)

    Parameters
    ----------
    peaks : array (M, K)
        Actual peak demand of each cycle. [kW]
    cycle_month : int array (K,)
        Month (0-11) of each cycle; the ratchet applies only in ``apply_months`` (1-12).
    percent : float
        Ratchet share. [%]
    months : int
        Look-back in cycles.
    history : array (M, H), optional
        Peaks of the cycles before the first one, oldest first. [kW]
    """
    hist = history if history is not None else np.zeros((peaks.shape[0], 0))
    allp = np.concatenate([hist, peaks], axis=1)
    offset = hist.shape[1]
    billed = peaks.copy()
    share = percent / 100.0
    for k in range(peaks.shape[1]):
        if int(cycle_month[k]) + 1 not in apply_months:
            continue
        j = offset + k
        lo = max(0, j - months)
        window = allp[:, lo:j] if floor_actual else allp[:, lo : j + 1]
        ratchet = share * window.max(axis=1) if window.shape[1] else np.zeros(peaks.shape[0])
        billed[:, k] = np.maximum(peaks[:, k], ratchet) if floor_actual else ratchet
    return billed
