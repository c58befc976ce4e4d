"""Hand-computed cases for what PySAM lacks: PF formulas, taxes, proration, holidays, prepaid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.billing.bill import bills_from_rating, money
from meterstack.tariff.blocks import block_amounts
from meterstack.tariff.model import Tariff
from meterstack.tariff.power_factor import (
    demand_from_kva,
    demand_ratio_adjustment,
    excess_kvarh,
    percent_per_step_adjustment,
)
from meterstack.tariff.rating import rate
from meterstack.tariff.yaml_format import load_template


def hours(start: str, n: int, step_min: int = 60) -> np.ndarray:
    first = np.datetime64(start) + np.timedelta64(step_min, "m")
    return first + np.arange(n) * np.timedelta64(step_min, "m")


def flat_tariff(**extra: object) -> Tariff:
    doc: dict[str, object] = {
        "name": "t",
        "energy": {"periods": [{"name": "all", "tiers": [{"rate": 0.10}]}]},
    }
    doc.update(extra)
    return Tariff.model_validate(doc)


def test_pf_demand_ratio_issue_case() -> None:
    # 51.09 kW at PF 0.871 with a 0.93 target: 51.09 x 0.93 / 0.871 = 54.5510... kW
    billed = demand_ratio_adjustment(np.array([51.09]), np.array([0.871]), 0.93)
    assert money(float(billed[0])) == Decimal("54.55")
    assert demand_ratio_adjustment(np.array([51.09]), np.array([0.95]), 0.93)[0] == 51.09
    capped = demand_ratio_adjustment(np.array([100.0]), np.array([0.5]), 0.9, 1.25)
    assert capped[0] == pytest.approx(125.0)


def test_pf_kva_kvarh_and_percent_formulas() -> None:
    assert demand_from_kva(np.array([80.0]), np.array([100.0]), 0.85)[0] == pytest.approx(85.0)
    assert demand_from_kva(np.array([90.0]), np.array([100.0]), 0.85)[0] == pytest.approx(90.0)
    # PF 0.8 -> tan(arccos(0.8)) = 0.75: 1000 kWh allow 750 kvarh; 900 kvarh -> 150 excess
    assert excess_kvarh(np.array([1000.0]), np.array([900.0]), 0.8)[0] == pytest.approx(150.0)
    # China 1983: PF 0.85 vs 0.90 -> 5 steps x 0.5% = +2.5%; PF 0.96 -> 6 x 0.15 = 0.9 -> cap 0.75
    pct = percent_per_step_adjustment(np.array([0.85, 0.96, 0.90]), 0.90, 0.5, 0.15, 100, 0.75)
    assert pct.tolist() == pytest.approx([2.5, -0.75, 0.0])


def test_pf_demand_ratio_in_a_bill() -> None:
    tariff = flat_tariff(
        demand={"window_min": 60, "flat": [{"name": "d", "tiers": [{"rate": 10.0}]}]},
        power_factor={"method": "demand_ratio", "target": 0.93},
        billing={"prorate": False},  # one day of data; proration has its own tests
    )
    n = 24
    kwh = np.full(n, 10.0)
    kwh[5] = 51.09
    kvarh = kwh * np.tan(np.arccos(0.871))  # PF 0.871 in every hour
    result = rate(tariff, hours("2024-03-04T00:00", n), kwh[None], None, kvarh[None])
    assert result.power_factor[0, 0] == pytest.approx(0.871)
    assert result.demand[0, 0] == pytest.approx(510.9)
    assert money(result.pf_billed_kw[0, 0]) == Decimal("54.55")
    assert result.pf[0, 0] == pytest.approx((51.09 * 0.93 / 0.871 - 51.09) * 10.0)


def test_taxes_percent_and_per_kwh() -> None:
    tariff = flat_tariff(
        fixed=[{"amount": 5.0}],
        taxes=[{"name": "levy", "per_kwh": 0.01}, {"name": "VAT", "percent": 20}],
        billing={"prorate": False},
    )
    result = rate(tariff, hours("2024-03-01T00:00", 24), np.full((1, 24), 2.0))
    # 48 kWh x 0.10 = 4.80 + 5.00 fixed = 9.80; VAT 1.96; levy 0.48
    assert result.taxes[0, 0] == pytest.approx(1.96 + 0.48)
    assert result.total[0, 0] == pytest.approx(9.80 + 2.44)


def test_proration_of_fixed_and_blocks() -> None:
    tariff = Tariff.model_validate(
        {
            "name": "t",
            "fixed": [{"amount": 31.0}],
            "energy": {
                "periods": [{"name": "all", "tiers": [{"max": 310, "rate": 0.10}, {"rate": 0.20}]}]
            },
        }
    )
    # 10 days of March at 20 kWh/day = 200 kWh; block prorated to 310 x 10/31 = 100 kWh
    n = 240
    result = rate(tariff, hours("2024-03-01T00:00", n), np.full((1, n), 200 / n))
    assert result.proration[0] == pytest.approx(10 / 31)
    assert result.fixed[0, 0] == pytest.approx(10.0)
    assert result.energy[0, 0] == pytest.approx(100 * 0.10 + 100 * 0.20)


def test_holidays_use_the_weekend_schedule() -> None:
    doc = {
        "name": "t",
        "timezone": "UTC",
        "holidays": ["2024-07-04"],
        "energy": {
            "periods": [
                {"name": "off", "tiers": [{"rate": 0.1}]},
                {"name": "peak", "tiers": [{"rate": 0.5}]},
            ],
            "schedule": {
                "seasons": [
                    {
                        "name": "y",
                        "months": list(range(1, 13)),
                        "weekday": {"peak": ["0-24"]},
                        "default": "off",
                    }
                ]
            },
        },
    }
    # "0-24" is not a valid range (start == end modulo 24); use the whole day via two ranges
    doc["energy"]["schedule"]["seasons"][0]["weekday"] = {"peak": ["0-12", "12-24"]}
    tariff = Tariff.model_validate(doc)
    # Wednesday 3 July and Thursday 4 July 2024 (a holiday): 24 kWh each
    result = rate(tariff, hours("2024-07-03T00:00", 48), np.ones((1, 48)))
    assert result.energy[0, 0] == pytest.approx(24 * 0.5 + 24 * 0.1)
    other = tariff.model_copy(update={"holidays": []})
    assert rate(other, hours("2024-07-03T00:00", 48), np.ones((1, 48))).energy[0, 0] == (
        pytest.approx(48 * 0.5)
    )


def test_prepaid_free_basic_electricity_and_monthly_reset() -> None:
    tariff = load_template("prepaid-fbe-50")  # 50 kWh free, then 350 kWh at 2.10, then 2.75
    # 400 kWh in each of two months (30-min data, DST-free Johannesburg)
    ends = hours("2024-03-31T22:00", 2 * 30 * 48 + 48, 30)
    kwh = np.zeros(ends.shape[0])
    local = ends + np.timedelta64(2, "h") - np.timedelta64(30, "m")
    for month in ("2024-04", "2024-05"):
        idx = np.flatnonzero(local.astype("datetime64[M]") == np.datetime64(month))
        kwh[idx] = 400 / idx.shape[0]
    result = rate(tariff, ends, kwh[None])
    april = result.cycle_labels.index("2024-04")
    energy = 0 * 50 + 2.10 * 350
    assert result.energy[0, april] == pytest.approx(energy)
    assert result.energy[0, april + 1] == pytest.approx(energy)  # the blocks reset


def test_time_of_use_dst_day_has_23_hours() -> None:
    tariff = load_template("tou-holidays-us")  # America/New_York
    # 2024-03-10 local day: 23 hours (clocks go forward at 2 am)
    ends = hours("2024-03-10T05:00", 23)
    result = rate(tariff, ends, np.ones((1, 23)))
    assert result.import_kwh[0, 0] == pytest.approx(23)
    # Sunday: all off-peak
    assert result.energy[0, 0] == pytest.approx(23 * 0.12)


def test_demand_window_fixed_vs_sliding() -> None:
    base = {
        "name": "t",
        "billing": {"prorate": False},  # one day of data; proration has its own tests
        "energy": {"periods": [{"name": "a", "tiers": [{"rate": 0.0}]}]},
    }
    fixed = Tariff.model_validate(
        {**base, "demand": {"window_min": 30, "flat": [{"name": "d", "tiers": [{"rate": 1.0}]}]}}
    )
    sliding = Tariff.model_validate(
        {
            **base,
            "demand": {
                "window_min": 30,
                "sliding": True,
                "flat": [{"name": "d", "tiers": [{"rate": 1.0}]}],
            },
        }
    )
    kwh = np.zeros(96)
    kwh[1:3] = 10.0  # 15-min intervals 2 and 3 straddle a half-hour boundary
    ends = hours("2024-03-04T00:00", 96, 15)
    # fixed windows: each half hour holds 10 kWh -> 20 kW; sliding: 20 kWh in 30 min -> 40 kW
    assert rate(fixed, ends, kwh[None]).demand[0, 0] == pytest.approx(20.0)
    assert rate(sliding, ends, kwh[None]).demand[0, 0] == pytest.approx(40.0)


def test_ratchet_with_and_without_floor() -> None:
    from meterstack.tariff.demand import ratchet_billing_demand

    peaks = np.array([[100.0, 50.0, 70.0]])
    months = np.array([0, 1, 2])
    floor = ratchet_billing_demand(peaks, months, 80, 11, True, list(range(1, 13)))
    assert floor.tolist() == [[100.0, 80.0, 80.0]]
    no_floor = ratchet_billing_demand(peaks, months, 80, 11, False, list(range(1, 13)))
    assert no_floor[0].tolist() == pytest.approx([80.0, 80.0, 80.0])


def test_cycle_day_15_and_bill_lines_add_up() -> None:
    tariff = load_template("commercial-billing-cycle-15")
    ends = hours("2024-01-15T00:00", 24 * 31)
    result = rate(tariff, ends, np.full((1, ends.shape[0]), 1.0))
    assert result.cycle_labels == ["2024-01"]
    bills = bills_from_rating(result)
    assert bills[0].total == money(float(result.total[0, 0]))
    assert bills[0].total == sum(line.amount for line in bills[0].lines)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0, 5000),
    st.lists(st.floats(1, 1000), min_size=1, max_size=5, unique=True),
)
def test_blocks_conserve_quantity(total: float, limits: list[float]) -> None:
    lim = np.array([*sorted(limits), np.inf])
    parts = block_amounts(np.array(total), lim)
    assert parts.sum() == pytest.approx(total)
    assert (parts >= 0).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.floats(0.1, 3.0))
def test_chronological_tiers_conserve_energy(meters: int, level: float) -> None:
    tariff = load_template("residential-tiered-5-block")
    ends = hours("2024-01-01T00:00", 24 * 40)
    rng = np.random.default_rng(meters)
    kwh = rng.uniform(0, level, (meters, ends.shape[0]))
    result = rate(tariff, ends, kwh)
    assert result.energy_kwh.sum(axis=(2, 3)) == pytest.approx(result.import_kwh)
    assert date(2024, 1, 1).isoformat()[:7] == result.cycle_labels[0]
