"""Energy from the windows: four-quadrant integration and a wide-range current input.

Four quadrants
--------------
Each window contributes its active energy P * dt and fundamental reactive energy
Q1 * dt, where P is the mean of v*i over the window (so P * dt is the integral of the
samples' instantaneous power) and dt the part of the window not covered by the next one.
The signs of the total P and Q1 of the window choose the registers, as the meter's own
registers do (IEC 62053-23, IEC 62056-6-1 / OBIS C = 5..8):

    QI: P >= 0, Q >= 0    QII: P < 0, Q >= 0    QIII: P < 0, Q < 0    QIV: P >= 0, Q < 0

A+ is the import (P >= 0) and A- the export energy; R+ = QI + QII, R- = QIII + QIV.
Q1 follows IEC 62053-24 (reactive energy of the fundamental component).

Wide-range current input (seed 003)
-----------------------------------
A meter rated 0.5 A to 2000 A measures with two current-transformer ranges: a sensitive
low range that saturates above its rating, and a high range for large currents. Each
range has its own ratio-error curve. Switching hard from one to the other at a current
I_s makes the error jump by e_low(I_s) - e_high(I_s). :class:`RangeSwitchingCt` instead
blends the two readings linearly over a crossover band [I_1, I_2] below the low range's
saturation:

    beta(I) = clip((I - I_1) / (I_2 - I_1), 0, 1)
    e(I) = (1 - beta(I)) e_low(I) + beta(I) e_high(I)                    [%]

which is continuous in I (a convex combination of continuous curves with a continuous
weight). The range is chosen on the high-range reading, which never saturates.

References
----------
.. [1] IEC 62053-23:2003, 3 (quadrants); IEC 62053-24:2014 (fundamental reactive energy).
.. [2] IEC 61869-2:2012, 5.6.201 (ratio error of a current transformer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.record import FloatArray

__all__ = [
    "CtRange",
    "FourQuadrantEnergy",
    "RangeSwitchingCt",
    "four_quadrant_energy",
    "wide_range_ct",
]


@dataclass(frozen=True, slots=True, eq=False)
class FourQuadrantEnergy:
    """Energy split as the meter's registers split it; arrays over any leading shape.

    Attributes: ``a_plus_wh``, ``a_minus_wh`` [Wh]; ``r_qi_varh`` .. ``r_qiv_varh`` [varh].
    """

    a_plus_wh: FloatArray
    a_minus_wh: FloatArray
    r_qi_varh: FloatArray
    r_qii_varh: FloatArray
    r_qiii_varh: FloatArray
    r_qiv_varh: FloatArray

    @property
    def r_plus_varh(self) -> FloatArray:
        result: FloatArray = self.r_qi_varh + self.r_qii_varh
        return result

    @property
    def r_minus_varh(self) -> FloatArray:
        result: FloatArray = self.r_qiii_varh + self.r_qiv_varh
        return result


def four_quadrant_energy(
    p_w: FloatArray, q_var: FloatArray, duration_s: FloatArray
) -> FourQuadrantEnergy:
    """Integrate per-window powers into the four-quadrant registers.

    Parameters
    ----------
    p_w : array, shape (..., windows)
        Total active power of each window; positive is import. [W]
    q_var : array, shape (..., windows)
        Total fundamental reactive power; positive is inductive. [var]
    duration_s : array, shape (windows,) or (..., windows)
        Time each window stands for. [s]

    Returns
    -------
    FourQuadrantEnergy
        Sums over the last axis. [Wh, varh]
    """
    p = np.asarray(p_w, dtype=np.float64)
    q = np.asarray(q_var, dtype=np.float64)
    hours = np.asarray(duration_s, dtype=np.float64) / 3600.0
    active = p * hours
    reactive = q * hours
    importing = p >= 0
    inductive = q >= 0
    return FourQuadrantEnergy(
        a_plus_wh=np.where(importing, active, 0.0).sum(axis=-1),
        a_minus_wh=np.where(importing, 0.0, -active).sum(axis=-1),
        r_qi_varh=np.where(importing & inductive, reactive, 0.0).sum(axis=-1),
        r_qii_varh=np.where(~importing & inductive, reactive, 0.0).sum(axis=-1),
        r_qiii_varh=np.where(~importing & ~inductive, -reactive, 0.0).sum(axis=-1),
        r_qiv_varh=np.where(importing & ~inductive, -reactive, 0.0).sum(axis=-1),
    )


@dataclass(frozen=True, slots=True)
class CtRange:
    """One current range: its rating and its ratio-error curve.

    Attributes
    ----------
    name : str
        ``"low"`` or ``"high"``, for reports.
    max_current_a : float
        Highest current the range measures without saturating. [A]
    error_curve : tuple of (current_a, error_pct)
        Ratio error at increasing currents; interpolated in log(current), held constant
        outside the points. [A, %]
    """

    name: str
    max_current_a: float
    error_curve: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        currents = [point[0] for point in self.error_curve]
        if not currents or any(c <= 0 for c in currents) or currents != sorted(set(currents)):
            raise InvalidInputError(
                f"{self.name}.error_curve", self.error_curve, "currents must be > 0 and increase"
            )
        if not self.max_current_a > 0:
            raise InvalidInputError(f"{self.name}.max_current_a", self.max_current_a, "> 0")

    def error_pct(self, current_a: FloatArray) -> FloatArray:
        """Ratio error at ``current_a`` (log-linear interpolation of the curve). [%]"""
        currents = np.log([point[0] for point in self.error_curve])
        errors = np.array([point[1] for point in self.error_curve])
        i = np.maximum(np.asarray(current_a, dtype=np.float64), 1e-12)
        result: FloatArray = np.interp(np.log(i), currents, errors)
        return result


@dataclass(frozen=True, slots=True)
class RangeSwitchingCt:
    """A two-range current input with a continuous crossover (module docstring).

    Attributes
    ----------
    low, high : CtRange
        The sensitive and the high-current range.
    blend_from_a, blend_to_a : float
        The crossover band I_1 .. I_2. [A]
    min_current_a, max_current_a : float
        The rated measuring range of the meter (0.5 A to 2000 A in seed 003). [A]
    """

    low: CtRange
    high: CtRange
    blend_from_a: float
    blend_to_a: float
    min_current_a: float = 0.5
    max_current_a: float = 2000.0

    def __post_init__(self) -> None:
        if not 0 < self.blend_from_a < self.blend_to_a:
            raise InvalidInputError(
                "blend_from_a", (self.blend_from_a, self.blend_to_a), "need 0 < I_1 < I_2"
            )
        if self.blend_to_a > self.low.max_current_a:
            raise InvalidInputError(
                "blend_to_a",
                self.blend_to_a,
                f"the crossover must end before the low range saturates "
                f"({self.low.max_current_a} A)",
            )
        if self.max_current_a > self.high.max_current_a:
            raise InvalidInputError(
                "max_current_a", self.max_current_a, "above the high range's rating"
            )

    def blend(self, current_a: FloatArray) -> FloatArray:
        """beta(I): 0 on the low range, 1 on the high range. [1]"""
        i = np.asarray(current_a, dtype=np.float64)
        result: FloatArray = np.clip(
            (i - self.blend_from_a) / (self.blend_to_a - self.blend_from_a), 0.0, 1.0
        )
        return result

    def error_pct(self, current_a: FloatArray) -> FloatArray:
        """Ratio error of the combined reading at true RMS current ``current_a``. [%]"""
        beta = self.blend(current_a)
        result: FloatArray = (1.0 - beta) * self.low.error_pct(current_a) + beta * (
            self.high.error_pct(current_a)
        )
        return result

    def hard_switch_error_pct(self, current_a: FloatArray, switch_a: float) -> FloatArray:
        """The error of a hard switch at ``switch_a``, for comparison. [%]"""
        i = np.asarray(current_a, dtype=np.float64)
        result: FloatArray = np.where(i < switch_a, self.low.error_pct(i), self.high.error_pct(i))
        return result

    def gain(self, current_a: FloatArray) -> FloatArray:
        """Measured / true current: 1 + e(I)/100. [1]"""
        result: FloatArray = 1.0 + self.error_pct(current_a) / 100.0
        return result

    def over_range(self, current_a: FloatArray) -> npt.NDArray[np.bool_]:
        """True where the current exceeds the rated maximum."""
        result: npt.NDArray[np.bool_] = np.asarray(current_a) > self.max_current_a
        return result


def wide_range_ct() -> RangeSwitchingCt:
    """An illustrative 0.5 A - 2000 A input (seed 003): low range to 120 A, high to 2400 A.

    The error curves are a model of a class 0.5S chain, not a calibration of real
    hardware; replace them with a type-test's curves.
    """
    low = CtRange(
        "low", 120.0, ((0.5, 0.30), (1.0, 0.18), (5.0, 0.08), (50.0, 0.04), (120.0, 0.10))
    )
    high = CtRange("high", 2400.0, ((20.0, -0.35), (60.0, -0.15), (400.0, -0.05), (2000.0, -0.12)))
    return RangeSwitchingCt(low, high, blend_from_a=60.0, blend_to_a=100.0)
