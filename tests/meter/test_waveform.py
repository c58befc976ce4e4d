"""A meter run from waveforms: registers, power-quality log, accuracy-class test points."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.meter import Meter, MeterConfig, run_test_points, run_waveform
from meterstack.meter.events import EventCode, LogKind
from meterstack.metrology import LimitSettings, WaveformError, make_record, wide_range_ct
from meterstack.metrology.accuracy import type_test_points

START = datetime(2024, 1, 1, tzinfo=UTC)
FS = 4000.0


def supply(seconds: float, harmonic: float = 0.0, phase_deg: float = -30.0) -> np.ndarray:
    t = np.arange(int(FS * seconds)) / FS
    shifts = np.deg2rad([0.0, -120.0, 120.0])[:, None]
    volts = np.sqrt(2) * (230 * np.sin(2 * np.pi * 50 * t + shifts))
    volts += np.sqrt(2) * harmonic * np.sin(5 * (2 * np.pi * 50 * t + shifts))
    amps = np.sqrt(2) * 20 * np.sin(2 * np.pi * 50 * t + shifts + np.deg2rad(phase_deg))
    result: np.ndarray = np.concatenate([volts, amps])
    return result


def test_registers_follow_the_waveform_energy() -> None:
    channels = supply(20.0)
    record = make_record(channels[:3], channels[3:], FS, 50, START)
    meter = Meter(MeterConfig(serial="MS0000000001", phases=3), commissioned_at=START)
    run = run_waveform(meter, record)
    span_h = (run.analysis.window_end[-1] - START.timestamp()) / 3600
    p = 3 * 230 * 20 * np.cos(np.deg2rad(30))
    q = 3 * 230 * 20 * np.sin(np.deg2rad(30))
    assert meter.registers.a_plus_precise_wh == pytest.approx(p * span_h, rel=1e-6)
    assert meter.registers.quadrant[0] == int(q * span_h)  # current lags: QI
    assert run.measurements == run.analysis.windows


def test_harmonic_warning_becomes_a_power_quality_event() -> None:
    channels = supply(12.0, harmonic=18.4)  # h5 at 8 % of 230 V
    record = make_record(channels[:3], channels[3:], FS, 50, START)
    meter = Meter(MeterConfig(serial="MS0000000002", phases=3), commissioned_at=START)
    run = run_waveform(meter, record, limits=LimitSettings(bus_voltage_v=400.0, factor=1.5))
    codes = [event.code for event in meter.event_logs[LogKind.POWER_QUALITY]]
    assert codes == [EventCode.HARMONIC_VOLTAGE_LIMIT_EXCEEDED]
    assert [alarm.code for alarm in meter.drain_alarms()] == [240]
    assert run.changes[0].detail.startswith("voltage_harmonic L1 h5 8.00 %")


def test_load_warning_end_is_logged_and_unknown_kinds_refused() -> None:
    meter = Meter(MeterConfig(serial="MS0000000003"), commissioned_at=START)
    meter.load_warning("unbalance", True, START, "3 %")
    meter.load_warning("unbalance", True, START)
    meter.load_warning("unbalance", False, START)
    codes = [event.code for event in meter.event_logs[LogKind.POWER_QUALITY]]
    assert codes == [EventCode.VOLTAGE_UNBALANCE_EXCEEDED, EventCode.VOLTAGE_UNBALANCE_OK]
    with pytest.raises(ValueError, match="kind"):
        meter.load_warning("flicker", True, START)


def test_phase_count_must_match() -> None:
    channels = supply(2.0)
    record = make_record(channels[0], channels[3], FS, 50, START)
    meter = Meter(MeterConfig(serial="MS0000000004", phases=3), commissioned_at=START)
    with pytest.raises(WaveformError, match="phases"):
        run_waveform(meter, record)


def config(serial: str, calibration_error_pct: float = 0.0) -> MeterConfig:
    return MeterConfig(
        serial=serial,
        accuracy_class="1",
        meter_constant_imp_per_kwh=10000,
        calibration_error_pct=calibration_error_pct,
    )


def test_an_accurate_meter_passes_every_test_point() -> None:
    results = run_test_points(
        config("MS0000000005"), START, basic_current_a=5.0, max_current_a=60.0, fs_hz=2000.0
    )
    assert [r.point.kind for r in results].count("error") == 12
    assert all(r.passed for r in results), [(r.point.name, r.error_pct) for r in results]


def test_a_meter_reading_high_fails_the_error_points() -> None:
    results = run_test_points(
        config("MS0000000006", calibration_error_pct=1.2),
        START,
        basic_current_a=5.0,
        max_current_a=60.0,
        fs_hz=2000.0,
        points=type_test_points("1", "direct", 5.0, 60.0)[:4],
    )
    assert [r.passed for r in results] == [True, False, False, False]  # 1.5 % below 0.1 Ib
    assert results[2].error_pct == pytest.approx(1.2, rel=1e-6)


def test_creep_is_held_back_by_the_no_load_threshold() -> None:
    """With a noisy idle current input the meter must not creep; without the threshold
    (starting current set far below the noise) the same meter gives pulses."""
    no_load = type_test_points("1", "direct", 5.0, 60.0)[-1:]
    quiet = run_test_points(
        config("MS0000000007"), START, basic_current_a=5.0, max_current_a=60.0,
        fs_hz=1000.0, current_noise_a=0.002, points=no_load,
    )  # fmt: skip
    assert quiet[0].passed
    assert quiet[0].pulses == 0
    creeping = MeterConfig(
        serial="MS0000000008",
        accuracy_class="1",
        meter_constant_imp_per_kwh=100_000,
        thresholds={"starting_current_a": 1e-9},
    )
    noisy = run_test_points(
        creeping, START, basic_current_a=5.0, max_current_a=60.0,
        fs_hz=1000.0, current_noise_a=1.0, points=no_load,
    )  # fmt: skip
    assert noisy[0].pulses > 1
    assert not noisy[0].passed


def test_wide_range_input_keeps_a_class_1_meter_in_class() -> None:
    results = run_test_points(
        config("MS0000000009"),
        START,
        basic_current_a=100.0,
        max_current_a=2000.0,
        fs_hz=2000.0,
        ct=wide_range_ct(),
        points=type_test_points("1", "direct", 100.0, 2000.0)[:12],
    )
    assert all(r.passed for r in results)
    errors = [r.error_pct for r in results]
    assert max(abs(e) for e in errors if e is not None) > 0.01  # the CT's error shows
