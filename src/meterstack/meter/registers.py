"""Energy registers and the maximum-demand register.

Registers count whole watt-hours (varh, VAh) as integers, the way a meter's display and its
DLMS registers do. Energy finer than 1 Wh is carried to the next step, so nothing is lost
to rounding. Per-rate registers advance by exactly the watt-hours the total advances, so the
rates always sum to the total.

Reactive energy is split by quadrant (IEC 62053-23, IEC 62056-6-1): QI is P >= 0, Q >= 0;
QII is P < 0, Q >= 0; QIII is P < 0, Q < 0; QIV is P >= 0, Q < 0. R+ = QI + QII and
R- = QIII + QIV.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple


class EnergyRegisters:
    """Cumulative energy of one meter."""

    __slots__ = (
        "_residual",
        "a_minus",
        "a_minus_rate",
        "a_plus",
        "a_plus_rate",
        "quadrant",
        "s_minus",
        "s_plus",
    )

    def __init__(self, rates: int) -> None:
        self.a_plus = 0
        self.a_minus = 0
        self.quadrant = [0, 0, 0, 0]
        self.s_plus = 0
        self.s_minus = 0
        self.a_plus_rate = [0] * (rates + 1)  # index 1..rates; 0 unused
        self.a_minus_rate = [0] * (rates + 1)
        # Sub-Wh carry: A+, A-, QI..QIV, S+, S-.
        self._residual = [0.0] * 8

    @property
    def r_plus(self) -> int:
        return self.quadrant[0] + self.quadrant[1]

    @property
    def r_minus(self) -> int:
        return self.quadrant[2] + self.quadrant[3]

    @property
    def a_plus_precise_wh(self) -> float:
        """A+ including the carried fraction: what the test LED's pulses count."""
        return self.a_plus + self._residual[0]

    def accumulate(
        self, active_wh: float, reactive_varh: float, apparent_vah: float, rate: int
    ) -> int:
        """Add one span's energy; return the whole Wh added to A+ (for prepayment).

        ``active_wh`` is signed (negative is export); ``reactive_varh`` is signed (negative is
        capacitive); ``apparent_vah`` is non-negative.
        """
        residual = self._residual
        importing = active_wh >= 0
        index = 0 if importing else 1
        value = residual[index] + (active_wh if importing else -active_wh)
        whole_active = int(value)
        residual[index] = value - whole_active
        if importing:
            self.a_plus += whole_active
            self.a_plus_rate[rate] += whole_active
        else:
            self.a_minus += whole_active
            self.a_minus_rate[rate] += whole_active

        if reactive_varh >= 0:
            quadrant = 0 if importing else 1
        else:
            quadrant = 3 if importing else 2
            reactive_varh = -reactive_varh
        value = residual[2 + quadrant] + reactive_varh
        whole = int(value)
        residual[2 + quadrant] = value - whole
        self.quadrant[quadrant] += whole

        index = 6 if importing else 7
        value = residual[index] + apparent_vah
        whole = int(value)
        residual[index] = value - whole
        if importing:
            self.s_plus += whole
        else:
            self.s_minus += whole
        return whole_active if importing else 0

    def to_state(self) -> dict[str, Any]:
        return {
            "a_plus": self.a_plus,
            "a_minus": self.a_minus,
            "quadrant": list(self.quadrant),
            "s_plus": self.s_plus,
            "s_minus": self.s_minus,
            "a_plus_rate": list(self.a_plus_rate),
            "a_minus_rate": list(self.a_minus_rate),
            "residual": list(self._residual),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.a_plus = int(state["a_plus"])
        self.a_minus = int(state["a_minus"])
        self.quadrant = [int(v) for v in state["quadrant"]]
        self.s_plus = int(state["s_plus"])
        self.s_minus = int(state["s_minus"])
        self.a_plus_rate = [int(v) for v in state["a_plus_rate"]]
        self.a_minus_rate = [int(v) for v in state["a_minus_rate"]]
        self._residual = [float(v) for v in state["residual"]]


class DemandRegister:
    """Average active import power over a demand period, and its maximum.

    Block demand (one subperiod) averages each period on its own; sliding demand averages
    the last ``subperiods`` subperiods and updates at each subperiod's end (DLMS interface
    class 5, "demand register": ``period`` and ``number_of_periods``).
    """

    def __init__(self, period_s: int, subperiods: int) -> None:
        self.period_s = period_s
        self.subperiods = subperiods
        self.subperiod_s = period_s // subperiods
        self._window: deque[float] = deque(maxlen=subperiods)
        self._energy_wh = 0.0
        self.last_average_w = 0.0
        self.maximum_w = 0.0
        self.maximum_at: float | None = None

    def add(self, import_wh: float) -> None:
        self._energy_wh += import_wh

    @property
    def current_average_w(self) -> float:
        """Demand of the period in progress, as if it ended now (zero for the rest)."""
        completed = (
            list(self._window)[1:] if len(self._window) == self.subperiods else list(self._window)
        )
        return (sum(completed) + self._energy_wh) * 3600.0 / self.period_s

    def close_subperiod(self, at: float) -> float:
        """End the subperiod at ``at``; return the demand of the window that ends there."""
        self._window.append(self._energy_wh)
        self._energy_wh = 0.0
        average = sum(self._window) * 3600.0 / self.period_s
        self.last_average_w = average
        if average > self.maximum_w:
            self.maximum_w = average
            self.maximum_at = at
        return average

    def reset_maximum(self) -> tuple[float, float | None]:
        """Billing reset: return the maximum and its time, then start again from zero."""
        result = (self.maximum_w, self.maximum_at)
        self.maximum_w = 0.0
        self.maximum_at = None
        return result

    def to_state(self) -> dict[str, Any]:
        return {
            "window": list(self._window),
            "energy_wh": self._energy_wh,
            "last_average_w": self.last_average_w,
            "maximum_w": self.maximum_w,
            "maximum_at": self.maximum_at,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._window = deque((float(v) for v in state["window"]), maxlen=self.subperiods)
        self._energy_wh = float(state["energy_wh"])
        self.last_average_w = float(state["last_average_w"])
        self.maximum_w = float(state["maximum_w"])
        self.maximum_at = state["maximum_at"]


class BillingRecord(NamedTuple):
    """What a billing reset freezes (the DLMS billing profile)."""

    at: float
    a_plus_wh: int
    a_minus_wh: int
    a_plus_rate_wh: tuple[int, ...]
    r_plus_varh: int
    r_minus_varh: int
    maximum_demand_w: float
    maximum_demand_at: float | None
