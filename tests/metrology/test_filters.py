"""The input filter stage: DC-offset removal, the measurement band (anti-alias/EMI) and
the reference filter, checked against the responses documented in docs/metrology.md and
written out here from their formulas, not taken from the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterstack.metrology import analyze, make_record, summarize
from meterstack.metrology.filters import (
    MeasurementBand,
    band_response,
    default_band,
    reference_response,
)
from meterstack.metrology.record import WaveformError
from tests.metrology.signals import three_phase, tone


def documented_w(f: float, pass_hz: float, stop_hz: float) -> float:
    """W(f) as docs/metrology.md states it: 0 at DC, 1 up to f_pass, a raised-cosine
    roll-off to f_stop, 0 from f_stop up."""
    if f <= 0 or f >= stop_hz:
        return 0.0
    if f <= pass_hz:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (f - pass_hz) / (stop_hz - pass_hz)))


@pytest.mark.parametrize(
    ("fs", "f0", "pass_hz", "stop_hz"),
    [
        # f_pass = min(1.1 * 50.5 * f0, 0.85 * fs / 2); f_stop = min(1.25 * f_pass, fs / 2)
        (8000.0, 50, 2777.5, 3471.875),
        (12800.0, 60, 3333.0, 4166.25),
        (1000.0, 50, 425.0, 500.0),
        (7680.0, 60, 3264.0, 3840.0),
    ],
)
def test_default_band_edges(fs: float, f0: int, pass_hz: float, stop_hz: float) -> None:
    band = default_band(fs, f0)
    assert band.pass_hz == pytest.approx(pass_hz, rel=1e-12)
    assert band.stop_hz == pytest.approx(stop_hz, rel=1e-12)


def test_band_response_follows_the_documented_shape() -> None:
    band = MeasurementBand(1000.0, 1400.0)
    f = np.array([0.0, 1e-9, 50.0, 1000.0, 1100.0, 1200.0, 1300.0, 1400.0, 2000.0])
    expected = [documented_w(x, 1000.0, 1400.0) for x in f]
    np.testing.assert_allclose(band_response(f, band), expected, rtol=0, atol=1e-15)
    # the roll-off is half way down at its middle, and monotonic
    assert band_response(np.array([1200.0]), band)[0] == pytest.approx(0.5, abs=1e-15)
    ramp = band_response(np.linspace(1000.0, 1400.0, 101), band)
    assert np.all(np.diff(ramp) <= 0)


def test_band_edges_are_validated() -> None:
    with pytest.raises(WaveformError, match="band"):
        MeasurementBand(3000.0, 2000.0)
    with pytest.raises(WaveformError, match="band"):
        MeasurementBand(0.0, 2000.0)


def test_dc_offset_and_emi_are_removed_before_every_quantity() -> None:
    """230 V at 50 Hz with a 7 V DC offset, 20 V at 3000 Hz (in the roll-off at 8 kHz)
    and 30 V at 3600 Hz (above f_stop); a 10 A current at -30 degrees with a 0.5 A
    offset. Vrms must hold only the fundamental and the weighted 3000 Hz line, and P only
    the fundamental: the offsets and the stop band are gone."""
    fs, f0 = 8000.0, 50
    samples = int(fs * 3)
    t = np.arange(samples) / fs
    w_3000 = documented_w(3000.0, 2777.5, 3471.875)
    assert 0.0 < w_3000 < 1.0
    voltage = (
        tone([(1, 230.0, 0)], fs, samples, f0)
        + 7.0
        + np.sqrt(2) * 20.0 * np.sin(2 * np.pi * 3000.0 * t)
        + np.sqrt(2) * 30.0 * np.sin(2 * np.pi * 3600.0 * t)
    )
    current = tone([(1, 10.0, -30)], fs, samples, f0) + 0.5
    analysis = analyze(make_record(voltage, current, fs, f0))
    expected_vrms = math.sqrt(230.0**2 + (w_3000 * 20.0) ** 2)
    np.testing.assert_allclose(analysis.vrms, expected_vrms, rtol=1e-9)
    np.testing.assert_allclose(analysis.irms, 10.0, rtol=1e-9)
    assert analysis.power is not None
    np.testing.assert_allclose(analysis.power.p, 2300.0 * math.cos(math.radians(30)), rtol=1e-9)
    # the harmonic groups see neither the offset nor the 3000/3600 Hz lines (h60, h72)
    np.testing.assert_allclose(analysis.harmonics_v[..., 0], 230.0, rtol=1e-9)
    assert np.max(analysis.harmonics_v[..., 1:]) < 1e-9


def test_reference_filter_response_is_the_documented_butterworth() -> None:
    """2nd-order Butterworth low-pass, corner 1.5 f0, by the bilinear transform:
    |H(f)|^2 = 1 / (1 + (tan(pi f / fs) / tan(pi fc / fs))^4)."""
    for fs, f0 in ((2000.0, 50), (2000.0, 60), (8000.0, 50)):
        fc = 1.5 * f0
        f = np.array([f0, fc, 5.0 * f0, 0.1 * f0])
        ratio = np.tan(np.pi * f / fs) / np.tan(np.pi * fc / fs)
        expected = 1.0 / np.sqrt(1.0 + ratio**4)
        found = np.abs(reference_response(f, fs, f0))
        np.testing.assert_allclose(found, expected, rtol=1e-9)
        assert found[1] == pytest.approx(1.0 / math.sqrt(2.0), rel=1e-9)  # -3 dB at fc
    # the figures quoted in the docs, at the 2 kHz rate the reference runs at
    found = np.abs(reference_response(np.array([50.0, 250.0]), 2000.0, 50))
    assert found[0] == pytest.approx(0.91, abs=0.005)
    assert found[1] == pytest.approx(0.08, abs=0.005)


@pytest.mark.parametrize(("fs", "f0"), [(1000.0, 50), (1000.0, 60), (12800.0, 50), (12800.0, 60)])
def test_lowest_and_highest_sampling_rates(fs: float, f0: int) -> None:
    """At the edges of the 1-12.8 kHz range every quantity comes out exactly; at 1 kHz
    the orders whose group lies above the band are reported as null, not as zero."""
    samples = int(fs * 8)
    voltage = three_phase([(1, 230.0, 0), (3, 10.0, 0), (5, 8.0, 0)], fs, samples, f0)
    current = three_phase([(1, 10.0, -30), (5, 2.0, 0)], fs, samples, f0)
    summary = summarize(analyze(make_record(voltage, current, fs, f0)))
    assert summary["vrms"] == pytest.approx([math.sqrt(230.0**2 + 10.0**2 + 8.0**2)] * 3)
    assert summary["thd_f_v"] == pytest.approx([math.hypot(10.0, 8.0) / 230.0 * 100] * 3)
    # P = V1 I1 cos(30 deg) + V5 I5 (in phase)
    assert summary["p"] == pytest.approx([2300.0 * math.cos(math.radians(30)) + 16.0] * 3)
    assert summary["q1"] == pytest.approx([2300.0 * math.sin(math.radians(30))] * 3)
    assert summary["frequency"] == pytest.approx(f0, abs=1e-4)
    harmonics = summary["harmonics_v"][0]
    assert len(harmonics) == 50
    assert harmonics[:5] == pytest.approx([230.0, 0.0, 10.0, 0.0, 8.0], abs=1e-6)
    # 1 kHz: f_pass = 425 Hz, so the group of order n fits while (n + 1/2) 1.02 f0 <= 425
    highest = math.floor(425.0 / (1.02 * f0) - 0.5) if fs == 1000.0 else 50
    assert all(value is not None for value in harmonics[:highest])
    assert all(value is None for value in harmonics[highest:])
