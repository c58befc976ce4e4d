"""IEEE 1459-2010 quantities from formulas evaluated independently on known signals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.metrology import analyze, make_record, summarize
from meterstack.metrology.power import effective_current, effective_voltage, phase_power
from tests.metrology.signals import three_phase, tone

finite = st.floats(0.1, 1e3)
angle = st.floats(-np.pi, np.pi)


@settings(max_examples=60, deadline=None)
@given(v1=finite, vh=st.floats(0, 100), i1=finite, ih=st.floats(0, 100), a=angle, b=angle)
def test_apparent_power_decomposes(
    *, v1: float, vh: float, i1: float, ih: float, a: float, b: float
) -> None:
    """S^2 = S1^2 + SN^2 and SN^2 = DI^2 + DV^2 + SH^2 (IEEE 1459-2010, 3.1.2.6-7)."""
    v = np.hypot(v1, vh)
    i = np.hypot(i1, ih)
    p = v1 * i1 * np.cos(a - b)
    q = phase_power(v, i, p, v1 * np.exp(1j * a), i1 * np.exp(1j * b))
    assert q.s**2 == pytest.approx(q.s1**2 + q.sn**2, rel=1e-9)
    assert q.sn**2 == pytest.approx(q.di**2 + q.dv**2 + q.sh**2, rel=1e-6, abs=1e-9 * q.s**2)
    assert q.q1 == pytest.approx(v1 * i1 * np.sin(a - b), abs=1e-9 * v1 * i1)
    assert q.n**2 == pytest.approx(q.s**2 - p**2, rel=1e-9, abs=1e-9 * q.s**2)


def test_harmonic_active_power_and_signs() -> None:
    """V with h3, I with h3 in phase: P = V1 I1 cos(phi1) + V3 I3; capacitive Q1 < 0."""
    fs, f0, n = 8000.0, 50, 16000
    voltage = tone([(1, 230.0, 0), (3, 10.0, 0)], fs, n, f0)
    current = tone([(1, 5.0, 25), (3, 1.0, 0)], fs, n, f0)
    summary = summarize(analyze(make_record(voltage, current, fs, f0)))
    assert summary["p"][0] == pytest.approx(230 * 5 * np.cos(np.deg2rad(25)) + 10, rel=1e-9)
    assert summary["q1"][0] == pytest.approx(-230 * 5 * np.sin(np.deg2rad(25)), rel=1e-9)
    assert summary["thd_f_i"][0] == pytest.approx(20.0, rel=1e-9)


def test_three_phase_balanced_load() -> None:
    """Balanced sinusoidal load: S_e = 3 V I, PF = PF1+ = cos(phi), no unbalanced power."""
    fs, f0, n = 6400.0, 50, 12800
    voltage = three_phase([(1, 230.0, 0)], fs, n, f0)
    current = three_phase([(1, 10.0, -36.87)], fs, n, f0)
    analysis = analyze(make_record(voltage, current, fs, f0))
    total = analysis.total
    assert total is not None
    np.testing.assert_allclose(total.se, 3 * 230 * 10, rtol=1e-9)
    np.testing.assert_allclose(total.pf, np.cos(np.deg2rad(36.87)), rtol=1e-9)
    np.testing.assert_allclose(total.pf1_plus, np.cos(np.deg2rad(36.87)), rtol=1e-9)
    np.testing.assert_allclose(total.su1, 0.0, atol=1e-2)
    np.testing.assert_allclose(total.ve, 230.0, rtol=1e-9)


def test_three_phase_neutral_current_enters_ie() -> None:
    """Third harmonics add up in the neutral: I_n = 3 I3 and I_e follows 3.2.2.2."""
    fs, f0, n = 6400.0, 50, 12800
    voltage = three_phase([(1, 230.0, 0)], fs, n, f0)
    current = three_phase([(1, 10.0, 0), (3, 3.0, 0)], fs, n, f0)
    analysis = analyze(make_record(voltage, current, fs, f0))
    assert analysis.total is not None
    phase_rms = np.hypot(10.0, 3.0)
    # IEEE 1459-2010 3.2.2.2: I_e = sqrt((I_a^2 + I_b^2 + I_c^2 + I_n^2) / 3), I_n = 3 I_3
    expected = np.sqrt((3 * phase_rms**2 + 9.0**2) / 3)
    np.testing.assert_allclose(analysis.total.ie, expected, rtol=1e-9)
    assert effective_current(phase_rms, phase_rms, phase_rms, 9.0) == pytest.approx(expected)
    line = 230 * np.sqrt(3)
    assert effective_voltage(230, 230, 230, v_ab=line, v_bc=line, v_ca=line) == pytest.approx(230)


def test_effective_voltage_of_an_unbalanced_supply() -> None:
    """V_e = sqrt((3 (V_a^2 + V_b^2 + V_c^2) + V_ab^2 + V_bc^2 + V_ca^2) / 18)
    (IEEE 1459-2010 3.2.2.2), the line voltages from the phasors by the law of cosines."""
    fs, f0, n = 6400.0, 50, 12800
    va, vb, vc = 230.0, 200.0, 245.0
    voltage = np.stack(
        [tone([(1, rms, shift)], fs, n, f0) for rms, shift in ((va, 0), (vb, -120), (vc, 120))]
    )
    current = three_phase([(1, 10.0, 0)], fs, n, f0)
    analysis = analyze(make_record(voltage, current, fs, f0))
    assert analysis.total is not None

    def line(x: float, y: float) -> float:
        return float(np.sqrt(x * x + y * y + x * y))  # 120 degrees apart

    squares = 3 * (va**2 + vb**2 + vc**2) + line(va, vb) ** 2 + line(vb, vc) ** 2
    expected = np.sqrt((squares + line(vc, va) ** 2) / 18)
    np.testing.assert_allclose(analysis.total.ve, expected, rtol=1e-9)
