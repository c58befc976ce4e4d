"""Partial cycles: demand charges and kWh/kW blocks prorated by covered days; coarse data."""

from __future__ import annotations

import numpy as np
import pytest

from meterstack.billing.bill import bills_from_rating
from meterstack.tariff.errors import LoadDataError
from meterstack.tariff.model import Tariff
from meterstack.tariff.rating import rate
from meterstack.tariff.yaml_format import load_template


def hours(start: str, n: int, step_min: int = 60) -> np.ndarray:
    return np.datetime64(start) + np.arange(1, n + 1) * np.timedelta64(step_min, "m")


def demand_tariff(**billing: object) -> Tariff:
    return Tariff.model_validate(
        {
            "name": "t",
            "billing": billing,
            "energy": {"periods": [{"name": "a", "tiers": [{"rate": 0.0}]}]},
            "demand": {"window_min": 60, "flat": [{"name": "d", "tiers": [{"rate": 10.0}]}]},
        }
    )


def ten_days_with_a_50_kw_peak() -> tuple[np.ndarray, np.ndarray]:
    ends = hours("2024-03-01T00:00", 240)  # 10 of the 31 days of March
    kwh = np.full(240, 5.0)
    kwh[100] = 50.0
    return ends, kwh[None]


def test_demand_charge_of_a_partial_cycle_is_prorated_by_days() -> None:
    ends, kwh = ten_days_with_a_50_kw_peak()
    result = rate(demand_tariff(), ends, kwh)
    assert result.proration[0] == pytest.approx(10 / 31)
    assert result.demand_flat_kw[0, 0] == pytest.approx(50.0)  # the kW is not prorated
    assert result.demand[0, 0] == pytest.approx(50 * 10.0 * 10 / 31)  # the charge is
    line = next(x for x in bills_from_rating(result)[0].lines if x.component == "demand")
    assert "prorated" in line.explanation


def test_demand_proration_can_be_switched_off() -> None:
    ends, kwh = ten_days_with_a_50_kw_peak()
    assert rate(demand_tariff(prorate_demand=False), ends, kwh).demand[0, 0] == 500.0
    assert rate(demand_tariff(prorate=False), ends, kwh).demand[0, 0] == 500.0


def test_full_cycle_is_not_prorated() -> None:
    ends = hours("2024-04-01T00:00", 30 * 24)  # all of April
    kwh = np.full((1, ends.shape[0]), 3.0)
    result = rate(demand_tariff(), ends, kwh)
    assert result.proration[0] == 1.0
    assert result.demand[0, 0] == pytest.approx(30.0)


def test_hours_use_blocks_of_a_partial_cycle_are_prorated() -> None:
    tariff = Tariff.model_validate(
        {
            "name": "t",
            "energy": {
                "periods": [
                    {
                        "name": "a",
                        "tiers": [{"max": 200, "unit": "kWh/kW", "rate": 0.10}, {"rate": 0.05}],
                    }
                ]
            },
            "demand": {"window_min": 60, "flat": [{"name": "d", "tiers": [{"rate": 0.0}]}]},
        }
    )
    ends = hours("2024-03-01T00:00", 240)
    kwh = np.full((1, 240), 10.0)  # 2400 kWh, 10 kW peak
    result = rate(tariff, ends, kwh)
    # first block: 200 kWh/kW x 10 kW x 10/31 = 645.16 kWh at 0.10, the rest at 0.05
    first = 200 * 10 * 10 / 31
    assert result.energy_kwh[0, 0, 0, 0] == pytest.approx(first)
    assert result.energy[0, 0] == pytest.approx(first * 0.10 + (2400 - first) * 0.05)


def test_data_coarser_than_the_window_refused_unless_asked() -> None:
    tariff = load_template("commercial-demand-flat")  # 15-min window
    assert tariff.demand is not None
    ends = hours("2024-04-01T00:00", 30 * 48, 30)  # all of April, 30-min data
    kwh = np.full((1, ends.shape[0]), 4.0)
    kwh[0, 700] = 40.0
    with pytest.raises(LoadDataError, match="15-min demand window"):
        rate(tariff, ends, kwh)
    result = rate(tariff, ends, kwh, coarse_demand=True)
    assert result.demand_window_min == 30
    assert result.demand_flat_kw[0, 0] == pytest.approx(80.0)  # 40 kWh in 0.5 h
    rate_kw = tariff.demand.flat[0].tiers[0].rate
    assert result.demand[0, 0] == pytest.approx(80.0 * rate_kw)
    line = next(x for x in bills_from_rating(result)[0].lines if x.component == "demand")
    assert "30-min intervals" in line.explanation
    assert "estimate" in line.explanation
