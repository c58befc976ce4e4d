"""Bad input: every problem raises a WaveformError that names it."""

from __future__ import annotations

import numpy as np
import pytest

from meterstack.metrology import WaveformError, analyze, make_record
from tests.metrology.signals import tone

FS = 8000.0


def good(samples: int = 8000) -> np.ndarray:
    return tone([(1, 230.0, 0)], FS, samples, 50.0)


@pytest.mark.parametrize("fs", [999.0, 12801.0, 0.0, float("nan"), -8000.0])
def test_wrong_sampling_rate(fs: float) -> None:
    with pytest.raises(WaveformError, match="fs_hz") as caught:
        make_record(good(), None, fs)
    assert "sampling rate" in caught.value.reason


def test_wrong_nominal_frequency() -> None:
    with pytest.raises(WaveformError, match="f0_hz"):
        make_record(good(), None, FS, 55)


def test_record_shorter_than_one_window() -> None:
    with pytest.raises(WaveformError, match="shorter than one 10-cycle window") as caught:
        make_record(good(1500), None, FS)
    assert caught.value.field == "samples"
    assert caught.value.value == 1500


def test_nan_sample_is_located() -> None:
    voltage = np.stack([good(), good(), good()])
    voltage[1, 4321] = np.nan
    with pytest.raises(WaveformError, match=r"vb\[4321\]") as caught:
        make_record(voltage, None, FS)
    assert "not a finite number" in caught.value.reason


def test_infinite_current_sample_is_located() -> None:
    current = good()
    current[7] = np.inf
    with pytest.raises(WaveformError, match=r"i\[7\]"):
        make_record(good(), current, FS)


def test_channels_of_different_lengths() -> None:
    with pytest.raises(WaveformError, match="different lengths") as caught:
        make_record(good(8000), good(7999), FS)
    assert caught.value.value == 7999


@pytest.mark.parametrize("phases", [2, 4])
def test_phase_count(phases: int) -> None:
    with pytest.raises(WaveformError, match="1 or 3 phases"):
        make_record(np.stack([good()] * phases), None, FS)


def test_current_with_other_phase_count() -> None:
    with pytest.raises(WaveformError, match="phase"):
        make_record(np.stack([good()] * 3), good(), FS)


def test_naive_start_time() -> None:
    from datetime import datetime

    from meterstack.core.errors import ClockError

    with pytest.raises(ClockError, match="start"):
        make_record(good(), None, FS, 50, datetime(2024, 1, 1))


def test_no_synchronised_window_in_a_dead_record_is_still_framed() -> None:
    """Without any zero crossing the windows run at the nominal period (interruption)."""
    analysis = analyze(make_record(np.zeros(8000), None, FS))
    assert analysis.windows >= 1
    assert np.all(analysis.vrms == 0)


def test_bad_declared_voltage() -> None:
    with pytest.raises(WaveformError, match="declared_voltage_v"):
        analyze(make_record(good(), None, FS), declared_voltage_v=-1.0)
