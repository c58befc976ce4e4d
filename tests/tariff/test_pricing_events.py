"""Real-time pricing, critical-peak pricing and the base of a percentage PF adjustment.

Every expected value is worked out by hand in the comments from the tariff's numbers.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from meterstack.billing.bill import bills_from_rating
from meterstack.tariff.errors import LoadDataError
from meterstack.tariff.model import Tariff
from meterstack.tariff.rating import rate
from meterstack.tariff.yaml_format import load_template


def hours(start: str, n: int) -> np.ndarray:
    """UTC ends of n hourly intervals, the first starting at ``start``."""
    return np.datetime64(start) + np.arange(1, n + 1) * np.timedelta64(1, "h")


def test_real_time_pricing_by_hand() -> None:
    tariff = load_template("real-time-pricing")  # 0.02/kWh + the price series, 5.00/month
    ends = hours("2024-03-05T00:00", 24)
    kwh = np.where(np.arange(24) < 12, 1.0, 2.0)
    price = np.where(np.arange(24) < 12, 0.10, 0.30)
    price[18] = -0.05  # market prices can be negative
    result = rate(tariff, ends, kwh[None], price_series=price)
    # series: 12 x 1 x 0.10 + 11 x 2 x 0.30 + 2 x (-0.05) = 1.20 + 6.60 - 0.10 = 7.70
    assert result.energy_extra[0, 0] == pytest.approx(7.70)
    # adder: 36 kWh x 0.02 = 0.72; fixed: 5.00 x 1 day / 31 days of March
    assert result.energy[0, 0] == pytest.approx(0.72 + 7.70)
    assert result.total[0, 0] == pytest.approx(5 / 31 + 0.72 + 7.70)
    bill = bills_from_rating(result)[0]
    line = next(x for x in bill.lines if x.description.startswith("real-time"))
    assert line.amount == Decimal("7.70")
    assert bill.total == sum(x.amount for x in bill.lines)


def test_real_time_pricing_needs_a_good_series() -> None:
    tariff = load_template("real-time-pricing")
    ends = hours("2024-03-05T00:00", 24)
    with pytest.raises(LoadDataError, match="price_series"):
        rate(tariff, ends, np.ones((1, 24)))
    with pytest.raises(LoadDataError, match="price_series"):
        rate(tariff, ends, np.ones((1, 24)), price_series=np.ones(23))
    bad = np.full(24, 0.1)
    bad[7] = np.nan
    with pytest.raises(LoadDataError, match=r"price_series\[7\]"):
        rate(tariff, ends, np.ones((1, 24)), price_series=bad)


def test_critical_peak_pricing_by_hand() -> None:
    # peak 14-19 on weekdays at 0.24, else 0.11; events 14-18 on 2024-07-16 at +0.60
    tariff = load_template("critical-peak-pricing")
    ends = hours("2024-07-15T00:00", 48)  # Monday (no event), Tuesday 16 July (event)
    result = rate(tariff, ends, np.ones((1, 48)))
    # each weekday: 5 x 0.24 + 19 x 0.11 = 3.29; the event: 4 h x 1 kWh x 0.60 = 2.40
    assert result.energy_extra[0, 0] == pytest.approx(2.40)
    assert result.energy[0, 0] == pytest.approx(2 * 3.29 + 2.40)


def test_critical_peak_hours_are_local_time() -> None:
    tariff = load_template("critical-peak-pricing").model_copy(
        update={"timezone": "America/Los_Angeles"}
    )
    # 24 h from 07:00 UTC = the local day of 16 July (PDT, UTC-7): 14-18 local = 21-01 UTC
    ends = hours("2024-07-16T07:00", 24)
    kwh = np.ones(24)
    kwh[14] = 3.0  # local 14:00-15:00, in the event
    result = rate(tariff, ends, kwh[None])
    # event: (3 + 1 + 1 + 1) x 0.60 = 3.60; TOU: (3 + 4) x 0.24 + 19 x 0.11 = 1.68 + 2.09
    assert result.energy_extra[0, 0] == pytest.approx(3.60)
    assert result.energy[0, 0] == pytest.approx(1.68 + 2.09 + 3.60)


def test_percent_pf_adjustment_applies_to_all_energy_charges_and_demand() -> None:
    tariff = Tariff.model_validate(
        {
            "name": "pf-percent with events",
            "billing": {"prorate": False},
            "energy": {
                "periods": [{"name": "all", "tiers": [{"rate": 0.10}]}],
                "price_series": True,
                "critical_peak": {"days": ["2024-03-05"], "hours": "10-12", "adder": 0.5},
            },
            "demand": {"window_min": 60, "flat": [{"name": "d", "tiers": [{"rate": 10.0}]}]},
            "power_factor": {
                "method": "percent_per_step",
                "target": 0.90,
                "surcharge_percent_per_step": 0.5,
                "incentive_percent_per_step": 0.15,
                "max_incentive_percent": 0.75,
            },
        }
    )
    ends = hours("2024-03-05T00:00", 24)
    kwh = np.full(24, 2.0)
    kwh[10] = 5.0  # 51 kWh in all, 5 kW peak
    kvarh = kwh * np.tan(np.arccos(0.85))  # PF 0.85: 5 steps below 0.90 -> +2.5 %
    result = rate(tariff, ends, kwh[None], kvarh=kvarh[None], price_series=np.full(24, 0.05))
    # energy: 51 x 0.10 = 5.10; series 51 x 0.05 = 2.55; event (5 + 2) x 0.50 = 3.50
    assert result.energy[0, 0] == pytest.approx(5.10 + 2.55 + 3.50)
    assert result.demand[0, 0] == pytest.approx(50.0)
    # the 1983 rule adjusts the month's energy and demand charges as billed (TOU, event and
    # real-time prices included): 2.5 % x (11.15 + 50) = 1.52875
    assert result.pf[0, 0] == pytest.approx(0.025 * (11.15 + 50.0))
    assert result.total[0, 0] == pytest.approx(11.15 + 50.0 + 1.52875)
