"""Power quantities under nonsinusoidal and unbalanced conditions (IEEE Std 1459-2010).

Single phase (IEEE 1459-2010, 3.1.2), from the RMS values V, I, the active power P and
the fundamental phasors V1, I1 (RMS magnitude, common time origin):

    V_H = sqrt(V^2 - V1^2),   I_H = sqrt(I^2 - I1^2)          (3.1.2.1, harmonic RMS)
    P1 = V1 I1 cos(theta1),   P_H = P - P1                     (3.1.2.3)
    Q1 = V1 I1 sin(theta1),   theta1 = angle(V1) - angle(I1)   (3.1.2.4; inductive > 0)
    S = V I                                                    (3.1.2.5)
    S1 = V1 I1,   S_N = sqrt(S^2 - S1^2)                       (3.1.2.6)
    D_I = V1 I_H,  D_V = V_H I1,  S_H = V_H I_H                (3.1.2.7, S_N^2 = D_I^2+D_V^2+S_H^2)
    N = sqrt(S^2 - P^2)                                        (3.1.2.8, nonactive power)
    PF = P / S,   PF1 = P1 / S1                                (3.1.2.9, 3.1.2.10)

Q1 is the fundamental reactive power, never sqrt(S^2 - P^2): that is N.

Three phase (IEEE 1459-2010, 3.2.2, four-wire), from the per-phase RMS values, the neutral
current I_n and the line-to-line RMS voltages V_ab, V_bc, V_ca:

    I_e = sqrt((I_a^2 + I_b^2 + I_c^2 + I_n^2) / 3)                         (3.2.2.2)
    V_e = sqrt((3 (V_a^2 + V_b^2 + V_c^2) + V_ab^2 + V_bc^2 + V_ca^2) / 18)  (3.2.2.2)
    S_e = 3 V_e I_e,   S_e1 = 3 V_e1 I_e1,   S_eN = sqrt(S_e^2 - S_e1^2)    (3.2.2.5, 3.2.2.6)
    S1+ = 3 V1+ I1+,   P1+ = 3 V1+ I1+ cos(theta1+),  Q1+ = 3 V1+ I1+ sin(theta1+)
    PF = P / S_e,   PF1+ = P1+ / S1+                                        (3.2.2.8)

with V_e1, I_e1 from the fundamental phasors in the same way, and V1+, I1+ the
positive-sequence fundamental phasors.

All functions are plain array functions over any leading shape.

References
----------
.. [1] IEEE Std 1459-2010, IEEE Standard Definitions for the Measurement of Electric Power
       Quantities Under Sinusoidal, Nonsinusoidal, Balanced, or Unbalanced Conditions,
       3.1.2 (single-phase nonsinusoidal) and 3.2.2 (three-phase nonsinusoidal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meterstack.metrology.record import FloatArray
from meterstack.metrology.unbalance import symmetrical_components

__all__ = [
    "PhasePower",
    "ThreePhasePower",
    "effective_current",
    "effective_voltage",
    "phase_power",
    "three_phase_power",
]


def _root(value: FloatArray) -> FloatArray:
    result: FloatArray = np.sqrt(np.maximum(value, 0.0))
    return result


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return result


@dataclass(frozen=True, slots=True, eq=False)
class PhasePower:
    """IEEE 1459-2010 single-phase quantities; every field has the inputs' shape.

    Attributes: ``v, i`` [V, A]; ``v1, i1, vh, ih`` [V, A]; ``p, p1, ph`` [W];
    ``q1`` [var]; ``s, s1, sn, sh, di, dv`` [VA]; ``n`` [var]; ``pf, pf1`` [1];
    ``thd_v, thd_i`` (V_H/V1, I_H/I1) [%].
    """

    v: FloatArray
    i: FloatArray
    v1: FloatArray
    i1: FloatArray
    vh: FloatArray
    ih: FloatArray
    p: FloatArray
    p1: FloatArray
    ph: FloatArray
    q1: FloatArray
    s: FloatArray
    s1: FloatArray
    sn: FloatArray
    sh: FloatArray
    di: FloatArray
    dv: FloatArray
    n: FloatArray
    pf: FloatArray
    pf1: FloatArray
    thd_v: FloatArray
    thd_i: FloatArray


def phase_power(
    v_rms: FloatArray,
    i_rms: FloatArray,
    p: FloatArray,
    v1: np.ndarray,
    i1: np.ndarray,
) -> PhasePower:
    """IEEE 1459-2010 quantities of one phase (module docstring for the equations).

    Parameters
    ----------
    v_rms, i_rms : array
        RMS voltage and current. [V, A]
    p : array
        Active power, the mean of v*i. [W]
    v1, i1 : complex array
        Fundamental RMS phasors on a common time origin. [V, A]
    """
    v = np.asarray(v_rms, dtype=np.float64)
    i = np.asarray(i_rms, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    product = np.asarray(v1) * np.conj(np.asarray(i1))
    p1 = product.real
    q1 = product.imag
    v1_abs = np.abs(v1)
    i1_abs = np.abs(i1)
    vh = _root(v * v - v1_abs * v1_abs)
    ih = _root(i * i - i1_abs * i1_abs)
    s = v * i
    s1 = v1_abs * i1_abs
    return PhasePower(
        v=v,
        i=i,
        v1=v1_abs,
        i1=i1_abs,
        vh=vh,
        ih=ih,
        p=p,
        p1=p1,
        ph=p - p1,
        q1=q1,
        s=s,
        s1=s1,
        sn=_root(s * s - s1 * s1),
        sh=vh * ih,
        di=v1_abs * ih,
        dv=vh * i1_abs,
        n=_root(s * s - p * p),
        pf=_ratio(p, s),
        pf1=_ratio(p1, s1),
        thd_v=_ratio(vh, v1_abs) * 100.0,
        thd_i=_ratio(ih, i1_abs) * 100.0,
    )


def effective_current(
    i_a: FloatArray, i_b: FloatArray, i_c: FloatArray, i_n: FloatArray
) -> FloatArray:
    """I_e = sqrt((I_a^2 + I_b^2 + I_c^2 + I_n^2) / 3), four-wire (IEEE 1459-2010 3.2.2.2).

    Parameters: RMS phase and neutral currents. [A]. Returns I_e. [A]
    """
    return _root((i_a**2 + i_b**2 + i_c**2 + i_n**2) / 3.0)


def effective_voltage(
    v_a: FloatArray,
    v_b: FloatArray,
    v_c: FloatArray,
    *,
    v_ab: FloatArray,
    v_bc: FloatArray,
    v_ca: FloatArray,
) -> FloatArray:
    """V_e = sqrt((3 (V_a^2+V_b^2+V_c^2) + V_ab^2+V_bc^2+V_ca^2) / 18) (IEEE 1459-2010 3.2.2.2).

    Parameters: RMS phase-to-neutral and line-to-line voltages. [V]. Returns V_e. [V]
    """
    return _root((3.0 * (v_a**2 + v_b**2 + v_c**2) + v_ab**2 + v_bc**2 + v_ca**2) / 18.0)


@dataclass(frozen=True, slots=True, eq=False)
class ThreePhasePower:
    """IEEE 1459-2010 three-phase four-wire totals; every field has the inputs' shape.

    Attributes: ``ve, ie, ve1, ie1`` [V, A]; ``p, p1_plus`` [W]; ``q1`` (sum of the phases'
    Q1), ``q1_plus`` [var]; ``se, se1, sen, s1_plus, su1`` [VA]; ``n`` [var];
    ``pf, pf1_plus`` [1].
    """

    ve: FloatArray
    ie: FloatArray
    ve1: FloatArray
    ie1: FloatArray
    p: FloatArray
    p1_plus: FloatArray
    q1: FloatArray
    q1_plus: FloatArray
    se: FloatArray
    se1: FloatArray
    sen: FloatArray
    s1_plus: FloatArray
    su1: FloatArray
    n: FloatArray
    pf: FloatArray
    pf1_plus: FloatArray


def three_phase_power(
    phases: PhasePower,
    i_n: FloatArray,
    v_line: FloatArray,
    v1: np.ndarray,
    i1: np.ndarray,
) -> ThreePhasePower:
    """IEEE 1459-2010 three-phase four-wire quantities.

    Parameters
    ----------
    phases : PhasePower
        Per-phase quantities, phase axis first (shape (3, ...)).
    i_n : array
        RMS neutral current. [A]
    v_line : array, shape (3, ...)
        RMS line-to-line voltages V_ab, V_bc, V_ca. [V]
    v1, i1 : complex array, shape (3, ...)
        Fundamental phasors of the phase voltages and currents. [V, A]
    """
    v1 = np.asarray(v1)
    i1 = np.asarray(i1)
    ie = effective_current(phases.i[0], phases.i[1], phases.i[2], i_n)
    ve = effective_voltage(
        phases.v[0], phases.v[1], phases.v[2], v_ab=v_line[0], v_bc=v_line[1], v_ca=v_line[2]
    )
    # Fundamental effective values from the fundamental phasors (same definitions).
    i1_n = np.abs(i1[0] + i1[1] + i1[2])
    ie1 = effective_current(np.abs(i1[0]), np.abs(i1[1]), np.abs(i1[2]), i1_n)
    ve1 = effective_voltage(
        np.abs(v1[0]),
        np.abs(v1[1]),
        np.abs(v1[2]),
        v_ab=np.abs(v1[0] - v1[1]),
        v_bc=np.abs(v1[1] - v1[2]),
        v_ca=np.abs(v1[2] - v1[0]),
    )
    p = phases.p.sum(axis=0)
    se = 3.0 * ve * ie
    se1 = 3.0 * ve1 * ie1
    _, v_pos, _ = symmetrical_components(v1[0], v1[1], v1[2])
    _, i_pos, _ = symmetrical_components(i1[0], i1[1], i1[2])
    positive = 3.0 * v_pos * np.conj(i_pos)
    s1_plus = np.abs(positive)
    return ThreePhasePower(
        ve=ve,
        ie=ie,
        ve1=ve1,
        ie1=ie1,
        p=p,
        p1_plus=positive.real,
        q1=phases.q1.sum(axis=0),
        q1_plus=positive.imag,
        se=se,
        se1=se1,
        sen=_root(se * se - se1 * se1),
        s1_plus=s1_plus,
        su1=_root(se1 * se1 - s1_plus * s1_plus),
        n=_root(se * se - p * p),
        pf=_ratio(p, se),
        pf1_plus=_ratio(positive.real, s1_plus),
    )
