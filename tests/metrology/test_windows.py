"""Framing: synchronised window lengths, 10-min resynchronisation, 10-s frequency."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.metrology import analyze, make_record
from meterstack.metrology.windows import fill_gaps, positive_zero_crossings


def sine(frequency: float, fs: float, seconds: float, rms: float = 230.0) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    return np.sqrt(2) * rms * np.sin(2 * np.pi * frequency * t + 0.3)


@pytest.mark.parametrize("frequency", [49.5, 50.0, 50.37])
def test_windows_are_ten_cycles_of_the_actual_frequency(frequency: float) -> None:
    fs = 8000.0
    analysis = analyze(make_record(sine(frequency, fs, 3.0), None, fs, 50))
    expected = 10 * fs / frequency
    assert np.all(np.abs(analysis.framing.exact_length - expected) < 0.05)
    assert np.all(np.abs(analysis.framing.length - expected) <= 0.5)
    np.testing.assert_allclose(analysis.window_frequency_hz, frequency, rtol=1e-4)
    np.testing.assert_allclose(analysis.vrms, 230.0, rtol=1e-4)


def test_ten_second_frequency() -> None:
    fs = 4000.0
    analysis = analyze(make_record(sine(50.123, fs, 25.0), None, fs, 50))
    # intervals [0,10), [10,20), [20,25): the two whole ones carry a value
    assert analysis.frequency_end.tolist()[:2] == [10.0, 20.0]
    np.testing.assert_allclose(analysis.frequency_hz[:2], 50.123, atol=1e-3)


def test_windows_resynchronise_at_the_ten_minute_tick() -> None:
    fs = 4000.0
    start = datetime(2024, 3, 1, 9, 59, 57, tzinfo=UTC)
    analysis = analyze(make_record(sine(50.0, fs, 6.0), None, fs, 50, start))
    tick = datetime(2024, 3, 1, 10, 0, tzinfo=UTC).timestamp()
    segment = analysis.framing.segment
    before = np.flatnonzero(segment == 0)
    after = np.flatnonzero(segment == 1)
    assert before.size
    assert after.size
    first_after = analysis.window_start[after[0]]
    assert tick <= first_after < tick + 0.02 + 1 / fs
    # the last window before the tick starts before it and may run past it
    assert analysis.window_start[before[-1]] < tick
    assert analysis.window_end[before[-1]] > first_after - 0.2


def test_virtual_crossings_fill_an_interruption() -> None:
    period = 80.0
    real = np.array([0.0, 80.0, 160.0, 640.0, 720.0])
    crossings, measured = fill_gaps(real, period, 800)
    np.testing.assert_allclose(np.diff(crossings), 80.0)
    assert measured.sum() == 5
    assert positive_zero_crossings(np.zeros(100), 1.0).size == 0


def schmitt_by_hand(reference: np.ndarray, hysteresis: float) -> list[float]:
    """Positive crossings, one sample at a time: armed below -h, fired above +h, placed
    at the last rise through zero before firing."""
    crossings: list[float] = []
    armed = False
    last_rise = None
    for i in range(1, reference.size):
        if reference[i - 1] < 0.0 <= reference[i]:
            last_rise = i - 1
        if reference[i - 1] < -hysteresis:
            armed = True
        if armed and reference[i] > hysteresis and last_rise is not None:
            a, b = reference[last_rise], reference[last_rise + 1]
            crossings.append(last_rise + a / (a - b))
            armed = False
    return crossings


@pytest.mark.parametrize("seed", range(6))
def test_zero_crossings_equal_a_sample_by_sample_schmitt_trigger(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(3000)
    reference = np.sin(2 * np.pi * t / rng.uniform(40, 200)) + rng.normal(0, 0.15, t.size)
    hysteresis = float(rng.choice([0.0, 0.05, 0.3]))
    found = positive_zero_crossings(reference, hysteresis)
    np.testing.assert_allclose(found, schmitt_by_hand(reference, hysteresis), rtol=0, atol=1e-9)
