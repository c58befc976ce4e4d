"""Every shipped template rates a simulated year of 30-min data; six are checked by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from meterstack.billing.bill import bills_from_rating, money
from meterstack.sim.loadshapes import FleetMix, generate_load_shapes
from meterstack.tariff.rating import COMPONENTS, rate
from meterstack.tariff.tables import energy_tables
from meterstack.tariff.yaml_format import list_templates, load_template

HOUR = np.timedelta64(1, "h")


@pytest.fixture(scope="module")
def year() -> dict[str, np.ndarray]:
    """A home, a shop with PV and an industrial site: 2024 in 30-min intervals."""
    shapes = generate_load_shapes(
        4,
        datetime(2024, 1, 1, tzinfo=UTC),
        366,
        interval_s=1800,
        seed=5,
        mix=FleetMix(0.5, 0.25, 0.25, 0.5, 1.0, 0.0),
    )
    price = 0.04 + 0.08 * np.random.default_rng(5).random(shapes.n_intervals)
    return {
        "ends": shapes.interval_end,
        "imp": shapes.import_wh.astype(np.float64) / 1000,
        "exp": shapes.export_wh.astype(np.float64) / 1000,
        "kvarh": shapes.reactive_varh.astype(np.float64) / 1000,
        "price": price,
    }


@pytest.mark.parametrize("name", list_templates())
def test_template_rates_a_year_plausibly(name: str, year: dict[str, np.ndarray]) -> None:
    tariff = load_template(name)
    assert year["exp"].sum() > 0  # the fleet does export
    result = rate(
        tariff,
        year["ends"],
        year["imp"],
        year["exp"],
        year["kvarh"],
        price_series=year["price"] if tariff.energy.price_series else None,
        coarse_demand=True,  # some templates have 15-min windows; the data are 30-min
    )
    assert len(result.cycle_labels) >= 12
    for component in COMPONENTS:
        assert np.isfinite(getattr(result, component)).all(), component
    parts = (
        result.fixed
        + result.energy
        + result.demand
        + result.pf
        + result.minimum
        + result.taxes
        - result.export_credit
    )
    assert np.allclose(parts, result.total, rtol=1e-12, atol=1e-9)
    assert (result.fixed >= 0).all()
    assert (result.demand >= 0).all()
    assert (result.minimum >= 0).all()
    if tariff.export.mode == "none":
        assert (result.total >= 0).all()
        assert (result.export_credit == 0).all()
    if (
        tariff.export.mode in ("none", "buy_all_sell_all", "net_billing_instantaneous")
        and not tariff.energy.price_series
        and tariff.energy.critical_peak is None
    ):
        # every kWh is priced at one of the tariff's energy rates
        rates = energy_tables(tariff).rate
        used = result.import_kwh > 0
        per_kwh = result.energy[used] / result.import_kwh[used]
        assert (per_kwh >= rates.min() - 1e-12).all()
        assert (per_kwh <= rates.max() + 1e-12).all()
    for meter in range(result.n_meters):
        for k, bill in enumerate(bills_from_rating(result, meter)):
            assert bill.total == sum((line.amount for line in bill.lines), Decimal(0))
            # each line is rounded on its own: the total is within half a cent a line
            slack = Decimal("0.005") * max(len(bill.lines), 1)
            assert abs(bill.total - money(float(result.total[meter, k]), bill.currency)) <= slack


def test_residential_tiered_3_block_by_hand() -> None:
    tariff = load_template("residential-tiered-3-block")  # 400 / 800 kWh, 7.50 a month
    ends = np.datetime64("2024-04-01T00:00") + np.arange(1, 30 * 24 + 1) * HOUR
    result = rate(tariff, ends, np.full((1, ends.shape[0]), 1000 / ends.shape[0]))
    # 400 x 0.11 + 400 x 0.14 + 200 x 0.19 + 7.50 = 44 + 56 + 38 + 7.50
    assert result.total[0, 0] == pytest.approx(145.50)


def test_tou_3_period_by_hand() -> None:
    tariff = load_template("tou-3-period")  # weekdays: peak 17-20, shoulder 7-17 and 20-22
    ends = np.datetime64("2024-04-01T00:00") + np.arange(1, 30 * 24 + 1) * HOUR
    result = rate(tariff, ends, np.ones((1, ends.shape[0])))
    # April 2024: 22 weekdays of 3 peak, 12 shoulder and 9 off-peak hours; 8 weekend days
    weekday = 3 * 0.31 + 12 * 0.16 + 9 * 0.09
    assert result.energy[0, 0] == pytest.approx(22 * weekday + 8 * 24 * 0.09)
    assert result.total[0, 0] == pytest.approx(22 * weekday + 8 * 24 * 0.09 + 10.0)


def test_tou_economy7_by_hand_across_the_clock_change() -> None:
    tariff = load_template("tou-economy7")  # Europe/London: night 00-07 local at 0.13
    # local March 2024: 31 days, the last one 23 hours long (clocks forward at 01:00 GMT)
    ends = np.datetime64("2024-03-01T00:00") + np.arange(1, 743 + 1) * HOUR
    result = rate(tariff, ends, np.ones((1, 743)))
    # night hours: 30 x 7 + 6 on 31 March (01:00-02:00 does not exist) = 216
    assert result.energy[0, 0] == pytest.approx(216 * 0.13 + (743 - 216) * 0.27)
    # a standing charge for each of the 31 local days: the month is complete
    assert result.proration[0] == 1.0
    assert result.fixed[0, 0] == pytest.approx(31 * 0.53)


def test_residential_flat_vat_by_hand() -> None:
    tariff = load_template("residential-flat-vat")  # Europe/Berlin, 0.31/kWh, 8.00/month
    # local April 2024 = 2024-03-31T22:00Z .. 2024-04-30T22:00Z (CEST, UTC+2)
    ends = np.datetime64("2024-03-31T22:00") + np.arange(1, 721) * HOUR
    result = rate(tariff, ends, np.full((1, 720), 0.5))
    before_tax = 360 * 0.31 + 8.0  # 119.60
    # levy 360 x 0.0065 = 2.34; VAT 15 % of the bill before taxes = 17.94
    assert result.taxes[0, 0] == pytest.approx(2.34 + 0.15 * before_tax)
    assert bills_from_rating(result)[0].total == Decimal("139.88")


def test_industrial_kva_demand_by_hand() -> None:
    tariff = load_template("industrial-kva-demand")  # 0.075/kWh, 13/kVA on 30 min
    ends = np.datetime64("2024-04-01T00:00") + np.arange(1, 1441) * np.timedelta64(30, "m")
    kwh = np.full(1440, 10.0)
    kvarh = np.full(1440, 7.5)  # 25 kVA
    kwh[500], kvarh[500] = 30.0, 40.0  # hypot(30, 40) / 0.5 h = 100 kVA
    result = rate(tariff, ends, kwh[None], kvarh=kvarh[None])
    assert result.energy[0, 0] == pytest.approx(14420 * 0.075)
    assert result.demand_flat_kw[0, 0] == pytest.approx(100.0)
    assert result.total[0, 0] == pytest.approx(14420 * 0.075 + 1300.0)


def test_residential_daily_allowance_by_hand() -> None:
    tariff = load_template("residential-tiered-daily-allowance")  # 12 kWh/day at 0.18
    ends = np.datetime64("2024-04-01T00:00") + np.arange(1, 241) * HOUR  # 10 days
    result = rate(tariff, ends, np.ones((1, 240)))
    # allowance 12 x 10 = 120 kWh at 0.18, the other 120 at 0.26; 0.30 a day
    assert result.energy[0, 0] == pytest.approx(120 * 0.18 + 120 * 0.26)
    assert result.total[0, 0] == pytest.approx(21.6 + 31.2 + 3.0)
