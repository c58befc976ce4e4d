"""EN 50160 weekly statistics, distortion warnings and transformer loading."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.analytics import (
    NetworkModel,
    distortion_warnings,
    transformer_loading,
    voltage_compliance,
)
from meterstack.analytics.compliance import HARMONIC_LIMITS_PCT
from meterstack.core.errors import InvalidInputError
from meterstack.sim.grid import generate_grid

WEEK_10MIN = 7 * 144


def test_the_95_percent_rule_at_its_edge() -> None:
    v = np.full((4, WEEK_10MIN), 230.0, np.float32)
    n_out = int(0.05 * WEEK_10MIN)  # 50 values: 95.04 % inside
    # Between -10 % and -15 %: allowed for 5 % of the week, no more.
    v[0, :n_out] = 200.0  # exactly at the 95 % edge (still compliant)
    v[1, : n_out + 1] = 200.0  # one more: 94.94 % inside
    v[2, 0] = 195.0  # inside 95 % but below -15 %: fails the 100 % rule
    v[3, :] = 207.0  # -10 % exactly: inside
    v[3, 0] = 253.0  # +10 % exactly: inside (above it, even once, fails the 100 % rule)
    result = voltage_compliance(v, 600)
    assert result.within_10_pct[:, 0].tolist() == pytest.approx(
        [1 - n_out / WEEK_10MIN, 1 - (n_out + 1) / WEEK_10MIN, 1 - 1 / WEEK_10MIN, 1.0]
    )
    over = v.copy()
    over[3, 1] = 253.5
    assert not voltage_compliance(over, 600).compliant[3, 0]
    assert result.compliant[:, 0].tolist() == [True, False, False, True]
    assert result.non_compliant_meters.tolist() == [1, 2]
    assert result.min_v[2, 0] == 195.0
    # Flagged values (during a dip) are left out of the statistics.
    flagged = np.zeros_like(v, dtype=bool)
    flagged[2, 0] = True
    assert voltage_compliance(v, 600, flagged=flagged).compliant[2, 0]


def test_weeks_and_bad_input() -> None:
    v = np.full((1, 2 * WEEK_10MIN + 10), 230.0, np.float32)
    v[0, WEEK_10MIN:] = np.nan
    result = voltage_compliance(v, 600)
    assert result.within_10_pct.shape == (1, 2)  # the partial third week is left out
    assert result.valid[0].tolist() == [WEEK_10MIN, 0]
    assert not result.compliant[0, 1]  # no data, no verdict
    assert result.non_compliant_meters.size == 0
    with pytest.raises(InvalidInputError, match="one week"):
        voltage_compliance(v[:, :100], 600)
    with pytest.raises(InvalidInputError, match="divide"):
        voltage_compliance(v, 7000)
    with pytest.raises(InvalidInputError, match="nominal_v"):
        voltage_compliance(v, 600, nominal_v=0)


def test_distortion_percentiles_and_limits() -> None:
    rng = np.random.default_rng(1)
    thd = rng.uniform(0, 10, (3, WEEK_10MIN)).astype(np.float32)
    unbalance = np.full((3, WEEK_10MIN), 1.0, np.float32)
    unbalance[1, :100] = 3.0  # 9.9 % of the week above 2 %: the 95th percentile is 3 %
    h5 = np.full((3, WEEK_10MIN), 2.0, np.float32)
    h5[2] = 6.5  # above Table 1's 6 %
    result = distortion_warnings(600, thd_pct=thd, unbalance_pct=unbalance, harmonics_pct={5: h5})
    np.testing.assert_allclose(result.thd_p95_pct[:, 0], np.percentile(thd, 95, axis=1))
    assert result.thd_warning[:, 0].tolist() == (np.percentile(thd, 95, axis=1) > 8).tolist()
    assert result.unbalance_warning[:, 0].tolist() == [False, True, False]
    assert result.harmonic_orders == {2: [5]}
    assert HARMONIC_LIMITS_PCT[3] == 5.0
    assert HARMONIC_LIMITS_PCT[5] == 6.0
    with pytest.raises(InvalidInputError, match="Table 1"):
        distortion_warnings(600, harmonics_pct={41: h5})
    with pytest.raises(InvalidInputError, match="at least one"):
        distortion_warnings(600)


def test_transformer_loading_by_hand() -> None:
    network = NetworkModel(
        ("A", "B"),
        ("T0", "T1"),
        ("F",),
        np.array([0, 1], np.int32),
        np.array([0, 0], np.int32),
        np.array([100.0, 100.0]),
        (None, None),
    )
    delivered = np.full((2, 48 * 7), 20_000.0, np.float32)  # 40 kW on 100 kVA
    delivered[0, :5] = 52_250.0  # 104.5 kW / 0.95 = 110 kVA for 2.5 h
    delivered[1, 0] = 76_000.0  # 160 kVA once
    result = transformer_loading(network, delivered, 1800)
    assert result.peak_pct.tolist() == pytest.approx([110.0, 160.0])
    assert result.hours_over.tolist() == [2.5, 0.5]
    assert result.overloaded.tolist() == [True, True]
    assert result.overloaded_transformers(network) == ["T0", "T1"]
    assert not transformer_loading(network, delivered * 0.5, 1800).overloaded.any()


def test_injected_over_voltage_and_undersized_transformers_are_found() -> None:
    scenario = generate_grid(1500, datetime(2026, 6, 1, tzinfo=UTC), 14, seed=5)
    network = scenario.network
    result = voltage_compliance(scenario.voltage_v, scenario.interval_s)
    truth = np.flatnonzero(np.isin(network.meter_transformer, scenario.over_voltage_transformers))
    assert truth.size > 0
    assert result.non_compliant_meters.tolist() == truth.tolist()
    loading = transformer_loading(network, scenario.check_wh, scenario.interval_s)
    assert np.flatnonzero(loading.overloaded).tolist() == scenario.undersized_transformers.tolist()
