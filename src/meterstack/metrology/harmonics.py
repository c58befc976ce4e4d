"""Harmonic and interharmonic groups and subgroups, and total harmonic distortion.

The functions take the bin powers |C_k|^2 of an N-cycle DFT window (bin k at k/N times the
fundamental: 5 Hz bins), last axis = bins 0 .. N*(H+1) - 1, and group them per
IEC 61000-4-7. With C_k the RMS value of bin k and n the harmonic order (bin N*n):

harmonic group (3.2.2, 5.5.1)
    G_g,n^2 = C_{Nn-N/2}^2 / 2 + sum_{i=-N/2+1}^{N/2-1} C_{Nn+i}^2 + C_{Nn+N/2}^2 / 2
harmonic subgroup (3.2.3, 5.5.2)
    G_sg,n^2 = sum_{i=-1}^{1} C_{Nn+i}^2
interharmonic group (3.2.5, 5.6.1), between orders n and n+1
    C_ig,n^2 = sum_{i=1}^{N-1} C_{Nn+i}^2
interharmonic centred subgroup (3.2.6, 5.6.2)
    C_isg,n^2 = sum_{i=2}^{N-2} C_{Nn+i}^2

All functions work on any leading shape (channels, windows, meters).

References
----------
.. [1] IEC 61000-4-7:2002+A1:2008, Testing and measurement techniques - General guide on
       harmonics and interharmonics measurements and instrumentation, 3.2, 3.3, 5.5, 5.6.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.record import FloatArray

__all__ = [
    "groups_from_row_parts",
    "groups_from_segments",
    "harmonic_groups",
    "harmonic_subgroups",
    "interharmonic_centred_subgroups",
    "interharmonic_groups",
    "row_parts_matrix",
    "segment_offsets",
    "thd_f",
    "thd_r",
]


def _rows(bin_power: FloatArray, cycles: int) -> FloatArray:
    power = np.asarray(bin_power, dtype=np.float64)
    if cycles < 4 or cycles % 2:
        raise InvalidInputError("cycles", cycles, "an even number of cycles >= 4 (10 or 12)")
    bins = power.shape[-1]
    if bins < 2 * cycles or bins % cycles:
        raise InvalidInputError(
            "bin_power", bins, f"expected N*(H+1) bins for N = {cycles} and H >= 1"
        )
    return power.reshape(*power.shape[:-1], bins // cycles, cycles)


def harmonic_groups(bin_power: FloatArray, cycles: int) -> FloatArray:
    """RMS harmonic group values G_g,n for n = 1 .. H.

    Parameters
    ----------
    bin_power : array, shape (..., N*(H+1))
        |C_k|^2 of bins 0 .. N*(H+1) - 1. [V^2 or A^2]
    cycles : int
        N, cycles per window (10 at 50 Hz, 12 at 60 Hz).

    Returns
    -------
    array, shape (..., H)
        G_g,n; index n - 1. [V or A]
    """
    rows = _rows(bin_power, cycles)
    half = cycles // 2
    centre = rows[..., 0]
    above = rows[..., 1:half].sum(axis=-1)
    edge = rows[..., half]
    below_next = rows[..., half + 1 :].sum(axis=-1)
    squared = (
        centre[..., 1:]
        + above[..., 1:]
        + 0.5 * edge[..., 1:]
        + below_next[..., :-1]
        + 0.5 * edge[..., :-1]
    )
    result: FloatArray = np.sqrt(squared)
    return result


def harmonic_subgroups(bin_power: FloatArray, cycles: int) -> FloatArray:
    """RMS harmonic subgroup values G_sg,n for n = 1 .. H (shape (..., H)). [V or A]"""
    rows = _rows(bin_power, cycles)
    squared = rows[..., 1:, 0] + rows[..., 1:, 1] + rows[..., :-1, cycles - 1]
    result: FloatArray = np.sqrt(squared)
    return result


def interharmonic_groups(bin_power: FloatArray, cycles: int) -> FloatArray:
    """RMS interharmonic group values C_ig,n between orders n and n+1, n = 0 .. H.

    Index 0 is the group between DC and the fundamental. [V or A]
    """
    rows = _rows(bin_power, cycles)
    result: FloatArray = np.sqrt(rows[..., 1:].sum(axis=-1))
    return result


def interharmonic_centred_subgroups(bin_power: FloatArray, cycles: int) -> FloatArray:
    """RMS interharmonic centred subgroup values C_isg,n, n = 0 .. H. [V or A]"""
    rows = _rows(bin_power, cycles)
    result: FloatArray = np.sqrt(rows[..., 2 : cycles - 1].sum(axis=-1))
    return result


def _distortion(values: FloatArray, max_order: int) -> FloatArray:
    """sqrt(sum_{n=2}^{H} G_n^2) over the last axis, without a squared copy."""
    above = values[..., 1:max_order]
    result: FloatArray = np.sqrt(np.einsum("...i,...i->...", above, above))
    return result


def thd_f(harmonic_rms: FloatArray, max_order: int = 50) -> FloatArray:
    """Total harmonic distortion relative to the fundamental.

    THD_F = sqrt(sum_{n=2}^{H} G_n^2) / G_1 * 100

    Parameters
    ----------
    harmonic_rms : array, shape (..., H)
        Harmonic (group or subgroup) RMS values for orders 1 .. H, index n - 1. [V or A]
    max_order : int
        Highest order included (IEC 61000-4-7 uses 40 or 50).

    Returns
    -------
    array
        THD_F; NaN where the fundamental is zero. [%]

    References
    ----------
    .. [1] IEC 61000-4-7:2002+A1:2008, 3.3.2 (group total harmonic distortion, THDG).
    """
    values = np.asarray(harmonic_rms, dtype=np.float64)
    distortion = _distortion(values, max_order)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(
            values[..., 0] > 0, distortion / values[..., 0] * 100.0, np.nan
        )
    return result


def thd_r(harmonic_rms: FloatArray, total_rms: FloatArray, max_order: int = 50) -> FloatArray:
    """Total harmonic distortion relative to the total RMS value.

    THD_R = sqrt(sum_{n=2}^{H} G_n^2) / X_rms * 100

    Parameters
    ----------
    harmonic_rms : array, shape (..., H)
        Harmonic RMS values for orders 1 .. H. [V or A]
    total_rms : array, shape (...)
        True RMS value of the signal. [V or A]

    Returns
    -------
    array
        THD_R; NaN where the RMS value is zero. [%]
    """
    values = np.asarray(harmonic_rms, dtype=np.float64)
    distortion = _distortion(values, max_order)
    total = np.asarray(total_rms, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(total > 0, distortion / total * 100.0, np.nan)
    return result


def segment_offsets(cycles: int) -> npt.NDArray[np.int64]:
    """First bin of each of the six segments of a harmonic row, relative to bin N*n:
    bin Nn, bin Nn+1, bins Nn+2 .. Nn+N/2-1, bin Nn+N/2, bins Nn+N/2+1 .. Nn+N-2 and
    bin Nn+N-1."""
    half = cycles // 2
    return np.array([0, 1, 2, half, half + 1, cycles - 1], dtype=np.int64)


#: Per harmonic row n, the partial sums that the four groupings are made of, as columns
#: of a (6, 6) matrix applied to the six segment sums s0 .. s5 of the row
#: (:func:`segment_offsets`): subgroup part from above (s0 + s1), group part from above
#: (s0 + s1 + s2 + s3/2), subgroup part from below (s5), group part from below
#: (s3/2 + s4 + s5), centred subgroup (s2 + s3 + s4), interharmonic group (s1 + .. + s5).
_ROW_PARTS = np.array(
    [
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 0.0, 1.0, 1.0],
        [0.0, 0.5, 0.0, 0.5, 1.0, 1.0],
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        [0.0, 0.0, 1.0, 1.0, 0.0, 1.0],
    ]
)


def row_parts_matrix(cycles: int) -> FloatArray:
    """Matrix (N, 6) from the N bin powers of one harmonic row to its six partial sums.

    Row n's bin powers P_{Nn} .. P_{Nn+N-1} times this matrix give, in order,
    P_{Nn} + P_{Nn+1} (the subgroup's part from row n), the group's part from row n
    (bins Nn .. Nn+N/2-1 and half of bin Nn+N/2), P_{Nn+N-1} (the next subgroup's part),
    the next group's part (half of bin Nn+N/2 and bins Nn+N/2+1 .. Nn+N-1), the centred
    subgroup (bins Nn+2 .. Nn+N-2) and the interharmonic group (bins Nn+1 .. Nn+N-1).
    :func:`groups_from_row_parts` turns them into the four groupings.

    Parameters
    ----------
    cycles : int
        N, cycles per window (10 at 50 Hz, 12 at 60 Hz).
    """
    if cycles < 4 or cycles % 2:
        raise InvalidInputError("cycles", cycles, "an even number of cycles >= 4 (10 or 12)")
    edges = [*segment_offsets(cycles).tolist(), cycles]
    selection = np.zeros((cycles, 6))
    for segment in range(6):
        selection[edges[segment] : edges[segment + 1], segment] = 1.0
    result: FloatArray = selection @ _ROW_PARTS
    return result


def groups_from_row_parts(
    parts: FloatArray,
    out: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The four groupings from each row's partial sums (:func:`row_parts_matrix`).

    With u, g, d, e, c, i the six partial sums of a row (first axis, in that order):

        G_sg,n^2 = u_n + d_{n-1},   G_g,n^2 = g_n + e_{n-1},
        C_isg,n^2 = c_n,            C_ig,n^2 = i_n

    Parameters
    ----------
    parts : array, shape (6, ..., H + 1)
        Partial sums of rows n = 0 .. H (last axis); sums of squares, so never
        negative. [V^2 or A^2]
    out : (array (2, ..., H), array (2, ..., H + 1)), optional
        Where to write (G_sg, G_g) and (C_isg, C_ig).

    Returns
    -------
    groups, subgroups : array, shape (..., H)
        G_g,n and G_sg,n for n = 1 .. H. [V or A]
    interharmonic_groups, interharmonic_centred_subgroups : array, shape (..., H + 1)
        C_ig,n and C_isg,n for n = 0 .. H. [V or A]

    References
    ----------
    .. [1] IEC 61000-4-7:2002+A1:2008, 5.5.1, 5.5.2, 5.6.1, 5.6.2.
    """
    p = np.asarray(parts, dtype=np.float64)
    if p.ndim < 2 or p.shape[0] != 6 or p.shape[-1] < 2:
        raise InvalidInputError("parts", p.shape, "expected shape (6, ..., H + 1) with H >= 1")
    if out is None:
        straddling = np.add(p[0:2, ..., 1:], p[2:4, ..., :-1])
        within = np.sqrt(p[4:6])
    else:
        straddling, within = out
        np.add(p[0:2, ..., 1:], p[2:4, ..., :-1], out=straddling)
        np.sqrt(p[4:6], out=within)
    np.sqrt(straddling, out=straddling)
    return straddling[1], straddling[0], within[1], within[0]


def groups_from_segments(
    segments: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """All four groupings from the six segment sums of every harmonic row.

    G_sg,n^2 = (s0 + s1)_n + (s5)_{n-1}; G_g,n^2 = (s0 + s1 + s2 + s3/2)_n +
    (s3/2 + s4 + s5)_{n-1}; C_isg,n^2 = (s2 + s3 + s4)_n; C_ig,n^2 = (s1 + .. + s5)_n.

    Parameters
    ----------
    segments : array, shape (..., 6, H + 1)
        For each harmonic row n = 0 .. H (last axis), sums of |C_k|^2 over bins Nn, Nn+1,
        Nn+2 .. Nn+N/2-1, Nn+N/2, Nn+N/2+1 .. Nn+N-2, Nn+N-1. [V^2 or A^2]

    Returns
    -------
    groups, subgroups : array, shape (..., H)
        G_g,n and G_sg,n for n = 1 .. H. [V or A]
    interharmonic_groups, interharmonic_centred_subgroups : array, shape (..., H + 1)
        C_ig,n and C_isg,n for n = 0 .. H. [V or A]

    References
    ----------
    .. [1] IEC 61000-4-7:2002+A1:2008, 5.5.1, 5.5.2, 5.6.1, 5.6.2.
    """
    s = np.asarray(segments, dtype=np.float64)
    if s.ndim < 2 or s.shape[-2] != 6 or s.shape[-1] < 2:
        raise InvalidInputError("segments", s.shape, "expected shape (..., 6, H + 1) with H >= 1")
    parts = np.tensordot(_ROW_PARTS, np.maximum(s, 0.0), axes=([0], [-2]))  # (6, ..., H + 1)
    return groups_from_row_parts(parts)
