"""One DFT per window over all channels, reduced at once to what every quantity needs.

For each synchronised window of L samples and each channel the spectrum is

    c_k = sqrt(2)/L * W(k fs / L) * DFT(x)[k]        (0 < k < L/2)

so that |c_k| is the RMS value of the component at bin k and W is the measurement band
(:mod:`meterstack.metrology.filters`, W(0) = 0 removes the DC offset). Bin k lies at k/N
times the fundamental for an N-cycle window: 5 Hz bins at 50 Hz (N = 10) and 60 Hz (N = 12).

From the spectra three things are kept per window, and the spectra are dropped:

* the Gram matrix G[a, b] = sum_k Re(c_a,k conj(c_b,k)), by batched matrix products:
  its diagonal holds the squared RMS values, G[v, i] the active power, and the other
  entries what line-to-line voltages and the neutral current need (Parseval's theorem);
* the IEC 61000-4-7 harmonic groups and subgroups, interharmonic groups and centred
  subgroups: the bin powers |c_k|^2 of each harmonic row (bins Nn .. Nn+N-1) times one
  (N, 6) matrix give the row's partial sums, and each grouping is one of them or the sum
  of one from row n and one from row n - 1
  (:func:`~meterstack.metrology.harmonics.row_parts_matrix`);
* the fundamental phasors c_N, for Q1, S1 and the symmetrical components.

Windows of equal length are transformed together, a few at a time so that the working set
stays in cache: each batch is read in place where its windows tile the record (the usual
case), or gathered into a compact block otherwise, transformed into a work buffer
allocated once per call, and reduced there. Per batch the work after the FFT is two
matrix products and a handful of vectorised passes; no Python code runs per window.

References
----------
.. [1] IEC 61000-4-7:2002+A1:2008, 4.4 (DFT over a synchronised rectangular window of
       10/12 cycles), 5.5 and 5.6 (groupings) and Annex A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from meterstack.metrology.filters import MeasurementBand, band_response
from meterstack.metrology.harmonics import groups_from_row_parts, row_parts_matrix
from meterstack.metrology.record import FloatArray
from meterstack.metrology.windows import Framing

__all__ = ["WindowSpectra", "available_harmonics", "window_spectra"]

#: Windows transformed per FFT call: 16 windows of 6 channels at 8 kHz are 1.2 MB.
_BATCH_WINDOWS = 16


@dataclass(frozen=True, slots=True, eq=False)
class WindowSpectra:
    """Per-window reductions of the weighted spectra.

    Attributes
    ----------
    gram : array, shape (windows, channels, channels)
        G[a, b] = sum_k Re(c_a,k conj(c_b,k)). [V^2, V*A, A^2]
    fundamental : complex array, shape (windows, channels)
        c_N, the RMS phasor of the fundamental. [V or A]
    dc : array, shape (windows, channels)
        Mean of the samples: the offset the band removes. [V or A]
    harmonic_groups, harmonic_subgroups : array, shape (channels, windows, H)
        G_g,n and G_sg,n for n = 1 .. H. [V or A]
    interharmonic_groups, interharmonic_centred_subgroups : array, shape
    (channels, windows, H + 1)
        C_ig,n and C_isg,n for n = 0 .. H (0: between DC and the fundamental). [V or A]
    harmonics : int
        H, the highest harmonic order held.
    """

    gram: FloatArray
    fundamental: np.ndarray
    dc: FloatArray
    harmonic_groups: FloatArray
    harmonic_subgroups: FloatArray
    interharmonic_groups: FloatArray
    interharmonic_centred_subgroups: FloatArray
    harmonics: int


def available_harmonics(
    fs_hz: float, f0_hz: float, cycles: int, band: MeasurementBand, wanted: int
) -> int:
    """Highest harmonic order n whose row (bins Nn .. N(n+1) - 1) fits below Nyquist and
    whose group ((n +/- 1/2) f, with 2 % frequency deviation) lies in the pass band."""
    by_band = int(np.floor(band.pass_hz / (1.02 * f0_hz) - 0.5))
    shortest = int(np.floor(cycles * fs_hz / (1.02 * f0_hz)))
    by_nyquist = (shortest // 2 + 1) // cycles - 1
    return max(1, min(wanted, by_band, by_nyquist))


def _gram_into(gram: FloatArray, flat: FloatArray, begin: int, end: int, scale: float) -> None:
    """G = scale * A A^T per window, A = flat[w, :, begin:end] (channels, k).

    Two consecutive windows are stacked into one (2 channels, k) matrix: one symmetric
    rank-k update of twice the size costs less than two small ones, and the blocks on its
    diagonal are the two windows' Gram matrices.
    """
    windows, channels = flat.shape[:2]
    paired = windows - windows % 2
    if paired:
        stacked = flat[:paired].reshape(paired // 2, 2 * channels, -1)[..., begin:end]
        both = np.matmul(stacked, stacked.transpose(0, 2, 1))
        gram[0:paired:2] = both[:, :channels, :channels]
        gram[1:paired:2] = both[:, channels:, channels:]
    if paired < windows:
        last = flat[paired:, :, begin:end]
        gram[paired:] = np.matmul(last, last.transpose(0, 2, 1))
    gram *= scale


def window_spectra(
    samples: FloatArray,
    framing: Framing,
    fs_hz: float,
    band: MeasurementBand,
    harmonics: int,
) -> WindowSpectra:
    """Transform every window of ``samples`` (channels, samples) and reduce the spectra.

    Parameters
    ----------
    samples : array, shape (channels, samples)
        All channels of the record. [V, A]
    framing : Framing
        The windows.
    fs_hz : float
        Sampling rate. [Hz]
    band : MeasurementBand
        Measurement band applied as bin weights.
    harmonics : int
        Highest harmonic order (from :func:`available_harmonics`).
    """
    x = np.ascontiguousarray(samples, dtype=np.float64)
    channels = x.shape[0]
    windows = framing.count
    cycles = framing.cycles
    rows = harmonics + 1
    row_bins = cycles * rows
    # Windows are processed in order of length (stable), so that every batch fills a
    # contiguous range of the outputs; the order is undone at the end if it moved any.
    order = np.argsort(framing.length, kind="stable")
    lengths = framing.length[order]
    starts = framing.start[order]
    gram = np.empty((windows, channels, channels))
    fundamental = np.empty((windows, channels), dtype=np.complex128)
    dc = np.empty((windows, channels))
    straddling = np.empty((2, channels, windows, harmonics))  # subgroups, groups
    within = np.empty((2, channels, windows, rows))  # centred subgroups, groups
    batch = max(1, min(_BATCH_WINDOWS, windows))
    # Work buffers shared by every batch; each batch takes a contiguous view of its size.
    longest = int(lengths[-1]) if windows else 0
    spectrum_buffer = np.empty(batch * channels * (longest // 2 + 1), dtype=np.complex128)
    square_buffer = np.empty(batch * channels * 2 * row_bins)
    parts_buffer = np.empty(6 * batch * channels * rows)
    # The row matrix acts on interleaved (Re^2, Im^2) pairs: each bin's two squares get
    # the same weight, so |X_k|^2 = Re^2 + Im^2 is summed inside the matrix product.
    parts_matrix = np.repeat(row_parts_matrix(cycles), 2, axis=0).T
    edges = np.flatnonzero(np.diff(lengths)) + 1
    # tiled[j]: window j (in length order) starts where window j - 1 ends.
    tiled = np.zeros(windows, dtype=bool)
    tiled[1:] = starts[1:] == starts[:-1] + lengths[:-1]
    groups = zip([0, *edges.tolist()], [*edges.tolist(), windows], strict=True) if windows else ()
    for group_start, group_end in groups:
        length = int(lengths[group_start])
        view = sliding_window_view(x, length, axis=-1).transpose(1, 0, 2)
        half = length // 2
        weight = band_response(np.arange(half + 1) * fs_hz / length, band)
        flat_pass = np.flatnonzero(weight[1:] < 1.0)
        pass_end = int(flat_pass[0]) + 1 if flat_pass.size else half + 1
        stop = int(np.flatnonzero(weight)[-1]) + 1
        roll_off = np.repeat(weight[pass_end:stop], 2)
        scale = np.sqrt(2.0) / length
        power_scale = scale * scale
        combine = parts_matrix * power_scale
        for first in range(group_start, group_end, batch):
            last = min(first + batch, group_end)
            size = last - first
            lines = channels * size
            out = spectrum_buffer[: lines * (half + 1)].reshape(size, channels, half + 1)
            if tiled[first + 1 : last].all():
                # Windows that follow each other without gap or overlap are one slice of
                # the record: the FFT reads them in place, with no gathered copy.
                begin = int(starts[first])
                block = x[:, begin : begin + size * length].reshape(channels, size, length)
                np.fft.rfft(block, axis=-1, out=out.transpose(1, 0, 2))
            else:
                np.fft.rfft(view[starts[first:last]], axis=-1, out=out)
            dc[first:last] = out[:, :, 0].real / length
            fundamental[first:last] = out[:, :, cycles] * scale
            flat = out.view(np.float64)
            # Re^2 and Im^2 of the harmonic rows (bins 0 .. N(H+1) - 1), then each row's
            # six partial sums of |X_k|^2, scaled to RMS^2, and the four groupings.
            square = square_buffer[: lines * 2 * row_bins].reshape(size, channels, -1)
            np.square(flat[..., : 2 * row_bins], out=square)
            parts = parts_buffer[: 6 * lines * rows].reshape(6, lines * rows)
            np.matmul(combine, square.reshape(lines * rows, 2 * cycles).T, out=parts)
            groups_from_row_parts(
                parts.reshape(6, size, channels, rows),
                out=(
                    straddling[:, :, first:last].transpose(0, 2, 1, 3),
                    within[:, :, first:last].transpose(0, 2, 1, 3),
                ),
            )
            # Gram matrices over bins 1 .. stop - 1, the roll-off bins weighted by W.
            if stop > pass_end:
                flat[..., 2 * pass_end : 2 * stop] *= roll_off
            _gram_into(gram[first:last], flat, 2, 2 * stop, power_scale)
    if windows and np.any(order != np.arange(windows)):
        back = np.argsort(order, kind="stable")
        gram, fundamental, dc = gram[back], fundamental[back], dc[back]
        straddling, within = straddling[:, :, back], within[:, :, back]
    return WindowSpectra(
        gram=gram,
        fundamental=fundamental,
        dc=dc,
        harmonic_groups=straddling[1],
        harmonic_subgroups=straddling[0],
        interharmonic_groups=within[1],
        interharmonic_centred_subgroups=within[0],
        harmonics=harmonics,
    )
