"""IEEE 519-2022 tables and load warnings."""

from __future__ import annotations

import numpy as np
import pytest

from meterstack.core.errors import InvalidInputError
from meterstack.metrology import LimitSettings, analyze, assess, make_record
from meterstack.metrology.limits import (
    current_harmonic_limits_pct,
    tdd_limit_pct,
    total_demand_distortion,
    voltage_distortion_limits_pct,
)
from tests.metrology.signals import three_phase


@pytest.mark.parametrize(
    ("voltage", "limits"),
    [(400.0, (5.0, 8.0)), (1000.0, (5.0, 8.0)), (11_000.0, (3.0, 5.0)), (132_000.0, (1.5, 2.5)),
     (400_000.0, (1.0, 1.5))],
)  # fmt: skip
def test_table_1(voltage: float, limits: tuple[float, float]) -> None:
    assert voltage_distortion_limits_pct(voltage) == limits


def test_table_2_rows_and_even_harmonics() -> None:
    limits = current_harmonic_limits_pct(35.0)
    assert limits[[2, 4, 10, 16, 22, 34, 49]].tolist() == [7.0, 7.0, 3.5, 2.5, 1.0, 0.5, 0.5]
    assert limits[[1, 3, 5]].tolist() == [3.5, 3.5, 3.5]  # even h <= 6: 50 %
    assert limits[7] == 7.0  # even h > 6: 100 %
    assert tdd_limit_pct(10.0) == 5.0
    assert tdd_limit_pct(1000.0) == 20.0
    assert total_demand_distortion(np.array([100.0, 3.0, 4.0]), 50.0) == pytest.approx(10.0)


def test_settings_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="demand_current_a"):
        LimitSettings(isc_over_il=30.0)
    with pytest.raises(InvalidInputError, match="bus_voltage_v"):
        LimitSettings(bus_voltage_v=132_000.0, isc_over_il=30.0, demand_current_a=10.0)


def test_warnings_from_a_distorted_unbalanced_supply() -> None:
    fs, f0 = 4000.0, 50
    voltage = three_phase([(1, 230.0, 0), (5, 13.8, 0)], fs, 4000, f0)  # h5 at 6 %
    voltage[1] *= 0.9
    current = three_phase([(1, 40.0, 0), (5, 4.0, 0)], fs, 4000, f0)  # h5 at 10 % of I_L
    analysis = analyze(make_record(voltage, current, fs, f0))
    settings = LimitSettings(
        bus_voltage_v=400.0, isc_over_il=15.0, demand_current_a=40.0, rated_current_a=35.0
    )
    found = assess(
        analysis.window_end,
        settings,
        voltage_harmonics_v=analysis.harmonics_v,
        current_harmonics_a=analysis.harmonics_i,
        unbalance_pct=analysis.unbalance_iec_pct,
        current_rms_a=analysis.irms,
    )
    kinds = {w.kind for w in found}
    assert kinds == {"voltage_harmonic", "current_harmonic", "current_tdd", "unbalance", "overload"}
    h5 = next(w for w in found if w.kind == "voltage_harmonic")
    assert (h5.order, h5.limit) == (5, 5.0)
    assert h5.value == pytest.approx(6.0, rel=1e-4)
    unbalance = next(w for w in found if w.kind == "unbalance")
    assert unbalance.value == pytest.approx(100 * 0.1 / 2.9, rel=1e-4)
    relaxed = LimitSettings(bus_voltage_v=400.0, factor=1.5)
    assert not [
        w
        for w in assess(analysis.window_end, relaxed, voltage_harmonics_v=analysis.harmonics_v)
        if w.kind == "voltage_harmonic"
    ]
