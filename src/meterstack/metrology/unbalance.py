"""Supply unbalance: symmetrical components (IEC 61000-4-30) and the NEMA definition.

References
----------
.. [1] IEC 61000-4-30:2015, 5.7.1 Supply voltage unbalance: u2 = |U2| / |U1| * 100 from
       the fundamental components (method of symmetrical components).
.. [2] C. L. Fortescue, "Method of symmetrical co-ordinates applied to the solution of
       polyphase networks", AIEE Trans. 37 (1918): X0 = (Xa + Xb + Xc)/3,
       X1 = (Xa + a Xb + a^2 Xc)/3, X2 = (Xa + a^2 Xb + a Xc)/3, a = exp(j 2 pi/3).
.. [3] NEMA MG 1-2016, 14.36: percent unbalance = 100 * (maximum deviation of a
       line-to-line voltage from their average) / (average line-to-line voltage).
"""

from __future__ import annotations

import numpy as np

from meterstack.metrology.record import FloatArray

__all__ = ["symmetrical_components", "unbalance_iec", "unbalance_nema", "zero_sequence_ratio"]

_A = np.exp(2j * np.pi / 3)


def symmetrical_components(
    xa: np.ndarray, xb: np.ndarray, xc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-, positive- and negative-sequence phasors of three phasors [2].

    Parameters
    ----------
    xa, xb, xc : complex array
        Fundamental phasors of phases a, b, c (any leading shape). [V or A]

    Returns
    -------
    x0, x1, x2 : complex array
        Zero, positive and negative sequence. [V or A]
    """
    xa = np.asarray(xa)
    xb = np.asarray(xb)
    xc = np.asarray(xc)
    x0 = (xa + xb + xc) / 3.0
    x1 = (xa + _A * xb + _A * _A * xc) / 3.0
    x2 = (xa + _A * _A * xb + _A * xc) / 3.0
    return x0, x1, x2


def unbalance_iec(va: np.ndarray, vb: np.ndarray, vc: np.ndarray) -> FloatArray:
    """Negative- to positive-sequence voltage ratio.

    Parameters
    ----------
    va, vb, vc : complex array
        Fundamental phasors of the three phase voltages. [V]

    Returns
    -------
    u2 : array
        |V2| / |V1| * 100; NaN without a positive sequence. [%]

    References
    ----------
    .. [1] IEC 61000-4-30:2015, 5.7.1 Supply voltage unbalance.
    """
    _, v1, v2 = symmetrical_components(va, vb, vc)
    positive = np.abs(v1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(positive > 0, np.abs(v2) / positive * 100.0, np.nan)
    return result


def zero_sequence_ratio(va: np.ndarray, vb: np.ndarray, vc: np.ndarray) -> FloatArray:
    """u0 = |V0| / |V1| * 100 (IEC 61000-4-30:2015, 5.7.1). [%]"""
    v0, v1, _ = symmetrical_components(va, vb, vc)
    positive = np.abs(v1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(positive > 0, np.abs(v0) / positive * 100.0, np.nan)
    return result


def unbalance_nema(v_ab: FloatArray, v_bc: FloatArray, v_ca: FloatArray) -> FloatArray:
    """NEMA line voltage unbalance.

    Parameters
    ----------
    v_ab, v_bc, v_ca : array
        RMS line-to-line voltages. [V]

    Returns
    -------
    array
        max(|V_xy - V_avg|) / V_avg * 100; NaN where the average is zero. [%]

    References
    ----------
    .. [3] NEMA MG 1-2016, 14.36.
    """
    lines = np.stack([np.asarray(v_ab), np.asarray(v_bc), np.asarray(v_ca)])
    mean = lines.mean(axis=0)
    deviation = np.abs(lines - mean).max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(mean > 0, deviation / mean * 100.0, np.nan)
    return result
