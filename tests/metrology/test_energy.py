"""Four-quadrant energy and the wide-range current input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.core.errors import InvalidInputError
from meterstack.metrology import analyze, four_quadrant_energy, make_record, wide_range_ct
from meterstack.metrology.energy import CtRange, RangeSwitchingCt
from tests.metrology.signals import tone


def test_each_quadrant() -> None:
    p = np.array([100.0, -100.0, -100.0, 100.0])
    q = np.array([50.0, 50.0, -50.0, -50.0])
    energy = four_quadrant_energy(p, q, np.full(4, 3600.0))
    assert (energy.a_plus_wh, energy.a_minus_wh) == (200.0, 200.0)
    assert [energy.r_qi_varh, energy.r_qii_varh, energy.r_qiii_varh, energy.r_qiv_varh] == [
        50.0,
        50.0,
        50.0,
        50.0,
    ]
    assert energy.r_plus_varh == 100.0


def test_energy_of_a_record_is_the_integral_of_the_samples() -> None:
    fs, f0 = 4000.0, 50
    voltage = tone([(1, 230.0, 0), (3, 5.0, 0)], fs, 40000, f0)
    current = tone([(1, 10.0, -30), (3, 1.0, 0)], fs, 40000, f0)
    analysis = analyze(make_record(voltage, current, fs, f0))
    start, end = analysis.framing.start[0], analysis.framing.end[-1]
    integral_wh = float(np.sum(voltage[start:end] * current[start:end]) / fs / 3600.0)
    assert float(analysis.energy().a_plus_wh) == pytest.approx(integral_wh, rel=1e-6)
    q_varh = 230 * 10 * np.sin(np.deg2rad(30)) * (end - start) / fs / 3600
    assert float(analysis.energy().r_qi_varh) == pytest.approx(q_varh, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(current=st.floats(0.5, 2000.0), step=st.floats(1e-6, 1e-2))
def test_blended_error_is_continuous(current: float, step: float) -> None:
    """A small change of current changes the error by a small amount, switch point or not
    (the steepest slope of the curves bounds it)."""
    ct = wide_range_ct()
    jump = abs(float(ct.error_pct(current * (1 + step))) - float(ct.error_pct(current)))
    assert jump <= 0.5 * step * 10 + 1e-12


def test_a_hard_switch_would_jump() -> None:
    ct = wide_range_ct()
    below, above = 80.0 * (1 - 1e-9), 80.0 * (1 + 1e-9)
    hard = float(ct.hard_switch_error_pct(above, 80.0) - ct.hard_switch_error_pct(below, 80.0))
    assert abs(hard) > 0.1
    blended = float(ct.error_pct(above) - ct.error_pct(below))
    assert abs(blended) < 1e-6


def test_range_model_is_validated() -> None:
    low = CtRange("low", 100.0, ((1.0, 0.1),))
    high = CtRange("high", 2400.0, ((10.0, -0.1),))
    with pytest.raises(InvalidInputError, match="blend_to_a"):
        RangeSwitchingCt(low, high, 60.0, 150.0)
    with pytest.raises(InvalidInputError, match="error_curve"):
        CtRange("low", 100.0, ((5.0, 0.1), (1.0, 0.1)))


def test_ct_errors_reach_the_measured_power() -> None:
    fs, f0 = 4000.0, 50
    voltage = tone([(1, 230.0, 0)], fs, 20000, f0)
    current = tone([(1, 500.0, 0)], fs, 20000, f0)
    ct = wide_range_ct()
    ideal = analyze(make_record(voltage, current, fs, f0))
    measured = analyze(make_record(voltage, current, fs, f0), ct=ct)
    assert measured.power is not None
    assert ideal.power is not None
    expected = 1 + float(ct.error_pct(500.0)) / 100
    np.testing.assert_allclose(measured.power.p / ideal.power.p, expected, rtol=1e-12)
    assert measured.over_range is not None
    assert not measured.over_range.any()
