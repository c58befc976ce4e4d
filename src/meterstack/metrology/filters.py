"""The input filter stage: DC-offset removal, the anti-alias/EMI band limit, and the
fundamental filter used to find zero crossings.

Measurement band (applied to every window's spectrum before any quantity is computed)
--------------------------------------------------------------------------------------
Each synchronised 10/12-cycle window is transformed once; the stage then weights its DFT
bins with a real, zero-phase response

    W(f) = 0                                         f = 0            (DC-offset removal)
    W(f) = 1                                         0 < f <= f_pass  (flat pass band)
    W(f) = 1/2 * (1 + cos(pi * (f - f_pass) / (f_stop - f_pass)))
                                                     f_pass < f < f_stop
    W(f) = 0                                         f >= f_stop      (EMI / alias band)

with, by default, f_pass = min(1.1 * 50.5 * f0, 0.85 * fs / 2) and
f_stop = min(1.25 * f_pass, fs / 2): the pass band holds the harmonic groups up to h50 with
10 % margin for frequency deviation, and everything from f_stop up to the Nyquist frequency
(switching noise, EMI, components near fs/2 that the ADC's analogue filter let through) is
removed. Being zero-phase and exactly 1 in the pass band, the stage changes neither the
magnitude nor the phase of a harmonic, so P, Q1 and harmonic phasors need no correction.
Applied per window, it acts on the window's periodic extension: for a synchronised window
that is the signal itself. :func:`band_response` returns W(f) for any frequency.

Reference filter (time domain, zero crossings only)
---------------------------------------------------
Zero crossings are found on a low-pass filtered copy of the reference voltage:
a 2nd-order Butterworth low-pass with its corner fc at 1.5 * f0 (-3 dB), designed by the
bilinear transform for the rate it runs at, so |H(f)|^2 = 1 / (1 + (tan(pi f / fs) /
tan(pi fc / fs))^4): at 2 kHz and 50 Hz, |H(f0)| = 0.91 and |H(5 f0)| = 0.08
(:func:`reference_response`). Its group delay only shifts every window boundary by the
same time, which leaves window lengths and frequency unchanged.

References
----------
.. [1] IEC 61000-4-7:2002+A1:2008, 4.4 (the anti-aliasing filter ahead of the DFT) and
       5.5/5.6 (the 5 Hz spectral bins that are grouped).
.. [2] IEC 61000-4-30:2015, 5.1.2 (frequency from the fundamental, harmonics filtered out).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import signal

from meterstack.metrology.record import FloatArray, WaveformError

__all__ = [
    "MeasurementBand",
    "band_response",
    "default_band",
    "reference_lowpass",
    "reference_response",
]


@dataclass(frozen=True, slots=True)
class MeasurementBand:
    """The pass and stop edges of the measurement band. [Hz]"""

    pass_hz: float
    stop_hz: float

    def __post_init__(self) -> None:
        if not 0 < self.pass_hz < self.stop_hz:
            raise WaveformError(
                "band",
                (self.pass_hz, self.stop_hz),
                "need 0 < pass_hz < stop_hz",
            )


def default_band(fs_hz: float, f0_hz: float, harmonics: int = 50) -> MeasurementBand:
    """The default measurement band for sampling rate ``fs_hz`` and nominal ``f0_hz``.

    Parameters
    ----------
    fs_hz : float
        Sampling rate. [Hz]
    f0_hz : float
        Nominal frequency. [Hz]
    harmonics : int
        Highest harmonic order the band must hold.

    Returns
    -------
    MeasurementBand
        f_pass = min(1.1 * (h + 0.5) * f0, 0.85 * fs/2); f_stop = min(1.25 * f_pass, fs/2).
    """
    nyquist = fs_hz / 2.0
    pass_hz = min(1.1 * (harmonics + 0.5) * f0_hz, 0.85 * nyquist)
    stop_hz = min(1.25 * pass_hz, nyquist)
    return MeasurementBand(pass_hz, stop_hz)


def band_response(frequency_hz: FloatArray, band: MeasurementBand) -> FloatArray:
    """W(f), the zero-phase magnitude response of the measurement band (module docstring).

    Parameters
    ----------
    frequency_hz : array
        Frequencies. [Hz]
    band : MeasurementBand
        Pass and stop edges. [Hz]

    Returns
    -------
    array
        Gain in [0, 1]; 0 at DC and from ``band.stop_hz`` up. [1]
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    ramp = np.clip((f - band.pass_hz) / (band.stop_hz - band.pass_hz), 0.0, 1.0)
    weight = 0.5 * (1.0 + np.cos(np.pi * ramp))
    weight = np.where(f >= band.stop_hz, 0.0, weight)
    return np.where(f <= 0.0, 0.0, weight)


@functools.lru_cache(maxsize=32)
def _reference_design(fs_hz: float, f0_hz: float) -> tuple[FloatArray, FloatArray]:
    """Second-order sections of the reference filter and their unit-step initial state,
    designed once per sampling rate and nominal frequency (callers get copies)."""
    sos: FloatArray = signal.butter(2, 1.5 * f0_hz, btype="low", fs=fs_hz, output="sos")
    zi: FloatArray = signal.sosfilt_zi(sos)
    return sos, zi


def _reference_sos(fs_hz: float, f0_hz: float) -> FloatArray:
    sos, _ = _reference_design(float(fs_hz), float(f0_hz))
    return sos.copy()


def reference_lowpass(x: FloatArray, fs_hz: float, f0_hz: float) -> FloatArray:
    """Low-pass ``x`` (last axis is time) with the reference filter, for zero crossings.

    Parameters
    ----------
    x : array, shape (..., samples)
        Samples. [V]
    fs_hz, f0_hz : float
        Sampling rate and nominal frequency. [Hz]

    Returns
    -------
    array, shape (..., samples)
        The filtered samples, with the filter started in its steady state for the first
        sample's mean level so that no start-up transient makes a false crossing. [V]
    """
    designed_sos, zi = _reference_design(float(fs_hz), float(f0_hz))
    sos = designed_sos.copy()
    period = max(1, round(fs_hz / f0_hz))
    head = np.mean(x[..., :period], axis=-1)
    state = zi.reshape((zi.shape[0],) + (1,) * (x.ndim - 1) + (2,)) * head[..., np.newaxis]
    filtered, _ = signal.sosfilt(sos, x, axis=-1, zi=state)
    result: FloatArray = filtered
    return result


def reference_response(frequency_hz: FloatArray, fs_hz: float, f0_hz: float) -> FloatArray:
    """Complex response H(f) of the reference filter. [1]"""
    sos = _reference_sos(fs_hz, f0_hz)
    _, h = signal.sosfreqz(sos, worN=np.asarray(frequency_hz, dtype=np.float64), fs=fs_hz)
    response: FloatArray = h
    return response
