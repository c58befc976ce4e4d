"""The receipt of a vend, against values worked out by hand from the formula in
``meterstack.vending.pricing`` and the STS amount coding of IEC 62055-41."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterstack.core.errors import InvalidInputError
from meterstack.sts import decode_amount, encode_amount
from meterstack.tariff.yaml_format import load_template, parse_tariff
from meterstack.vending import (
    TariffNotVendableError,
    VendRefusedError,
    price_account_topup,
    price_kwh_vend,
    price_money_vend,
    sts_amount_ceiling,
    sts_amount_floor,
    vend_blocks,
)

D = Decimal
FBE50 = load_template("prepaid-fbe-50")  # 50 kWh free, then 350 kWh at 2.10, then 2.75; VAT 15 %
FLAT = parse_tariff(
    {
        "name": "flat-with-charges",
        "currency": "ZAR",
        "timezone": "Africa/Johannesburg",
        "fixed": [{"name": "service charge", "amount": 50, "per": "month"}],
        "energy": {"periods": [{"name": "all", "tiers": [{"rate": 2.0}]}]},
        "taxes": [{"name": "VAT", "percent": 15}],
    }
)


def lines(price: object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in price.lines:  # type: ignore[attr-defined]
        out.setdefault(line.component, []).append(str(line.amount))
    return out


def test_blocks_of_the_free_basic_tariff() -> None:
    blocks = vend_blocks(FBE50, 31)
    assert [(b.lower, b.upper, b.rate, b.free) for b in blocks] == [
        (D(0), D(50), D(0), True),
        (D(50), D(400), D("2.1"), False),
        (D(400), None, D("2.75"), False),
    ]


def test_first_vend_of_the_month_takes_the_free_block() -> None:
    # G = 100; 50 kWh free; 100 / (2.10 * 1.15) = 41.407 kWh -> 41.4 kWh;
    # energy 41.4 * 2.10 = 86.94; VAT 0.15 * 86.94 = 13.041 -> 13.04; change 0.02.
    price = price_money_vend(FBE50, D(100), month_kwh=D(0), month_days=31, collect_fixed=False)
    assert price.kwh == D("91.4")
    assert price.free_kwh == D(50)
    assert (price.energy, price.tax, price.carry_out) == (D("86.94"), D("13.04"), D("0.02"))
    assert price.balances()


def test_a_vend_across_a_block_boundary() -> None:
    # 390 kWh sold: 10 kWh left in block 2 at 2.415 gross = 24.15; 75.85 left for block 3
    # at 2.75 * 1.15 = 3.1625: 23.984 kWh; 33.984 -> 33.9 kWh = 10 + 23.9.
    # energy 10 * 2.10 = 21.00 and 23.9 * 2.75 = 65.725 -> 65.73; VAT 0.15 * 86.73 = 13.0095
    # -> 13.01; change 100 - 21.00 - 65.73 - 13.01 = 0.26.
    price = price_money_vend(FBE50, D(100), month_kwh=D(390), month_days=30, collect_fixed=False)
    assert price.kwh == D("33.9")
    assert lines(price)["energy"] == ["21.00", "65.73"]
    assert (price.tax, price.carry_out) == (D("13.01"), D("0.26"))


def test_fee_debt_fixed_and_tax() -> None:
    # T 200, fee 2.50: A1 = 197.50; debt 20 % of 197.50 = 39.50; fixed 50 * 1.15 = 57.50;
    # G = 100.50; 100.50 / 2.30 = 43.695 -> 43.6 kWh; energy 87.20; VAT 0.15 * 137.20 = 20.58;
    # change 197.50 - 39.50 - 50 - 87.20 - 20.58 = 0.22.
    price = price_money_vend(
        FLAT,
        D(200),
        month_kwh=D(0),
        month_days=31,
        collect_fixed=True,
        fee=D("2.50"),
        debt=D(100),
        debt_recovery_pct=D(20),
    )
    assert price.kwh == D("43.6")
    assert lines(price) == {
        "tendered": ["200.00"],
        "fee": ["2.50"],
        "debt": ["39.50"],
        "fixed": ["50.00"],
        "energy": ["87.20"],
        "tax": ["20.58"],
        "carry_out": ["0.22"],
    }
    assert price.balances()


def test_debt_is_capped_at_what_is_owed() -> None:
    price = price_money_vend(
        FLAT,
        D(100),
        month_kwh=D(0),
        month_days=31,
        collect_fixed=False,
        debt=D(5),
        debt_recovery_pct=D(50),
    )
    assert price.debt_recovered == D(5)


def test_kwh_vend() -> None:
    # 20 kWh: energy 40.00, VAT 6.00, charges 46.00; debt share 20 %: 46 * 20 / 80 = 11.50
    # (11.50 is 20 % of 57.50); fee 2.50; change 0.30 used: pay 2.50 + 11.50 + 46.00 - 0.30.
    price = price_kwh_vend(
        FLAT,
        D(20),
        month_kwh=D(0),
        month_days=31,
        collect_fixed=False,
        fee=D("2.50"),
        debt=D(100),
        debt_recovery_pct=D(20),
        carry_in=D("0.30"),
    )
    assert (price.kwh, price.energy, price.tax) == (D(20), D("40.00"), D("6.00"))
    assert price.debt_recovered == D("11.50")
    assert price.tendered == D("59.70")
    assert price.carry_out == 0
    assert price.balances()


def test_kwh_vend_is_rounded_up_to_a_token_amount() -> None:
    price = price_kwh_vend(FLAT, D("2000"), month_kwh=D(0), month_days=31, collect_fixed=False)
    assert price.kwh == D("2000.4")  # 0.1 kWh steps end at 1638.3: 1 kWh steps from 1638.4


def test_account_topup() -> None:
    price = price_account_topup(D(100), "ZAR", fee=D(1), debt=D(50), debt_recovery_pct=D(10))
    assert (price.debt_recovered, price.credit) == (D("9.90"), D("89.10"))
    assert price.balances()


def test_refusals_name_the_problem() -> None:
    with pytest.raises(VendRefusedError, match="fixed charges"):
        price_money_vend(FLAT, D(20), month_kwh=D(0), month_days=31, collect_fixed=True)
    with pytest.raises(InvalidInputError, match="amount"):
        price_money_vend(FBE50, D("-5"), month_kwh=D(0), month_days=31, collect_fixed=False)
    with pytest.raises(InvalidInputError, match="decimal places"):
        price_money_vend(FBE50, D("1.005"), month_kwh=D(0), month_days=31, collect_fixed=False)
    with pytest.raises(TariffNotVendableError, match="time-of-use"):
        vend_blocks(load_template("tou-3-period"), 31)
    with pytest.raises(InvalidInputError, match="kwh"):
        price_kwh_vend(FLAT, D(0), month_kwh=D(0), month_days=31, collect_fixed=False)


@given(st.integers(min_value=1, max_value=18_201_624))
def test_token_amount_floor_and_ceiling_against_the_sts_coding(tenths: int) -> None:
    """floor <= q <= ceiling, both carried exactly by a token, and no code lies between."""
    q = D(tenths) / 10
    low, high = sts_amount_floor(q), sts_amount_ceiling(q)
    assert low <= q <= high
    for value in (low, high):
        code = encode_amount(int(value * 10))
        assert D(decode_amount(code)) / 10 == value
    if low != high:
        assert D(decode_amount(encode_amount(int(low * 10)) + 1)) / 10 == high


@given(
    tendered=st.integers(min_value=3_000, max_value=500_000).map(lambda c: D(c) / 100),
    month_kwh=st.integers(min_value=0, max_value=9_000).map(lambda t: D(t) / 10),
    debt=st.integers(min_value=0, max_value=50_000).map(lambda c: D(c) / 100),
    pct=st.integers(min_value=0, max_value=50).map(D),
    carry=st.integers(min_value=0, max_value=30).map(lambda c: D(c) / 100),
)
def test_every_money_vend_balances_to_the_cent(
    tendered: Decimal, month_kwh: Decimal, debt: Decimal, pct: Decimal, carry: Decimal
) -> None:
    price = price_money_vend(
        FBE50,
        tendered,
        month_kwh=month_kwh,
        month_days=30,
        collect_fixed=False,
        fee=D("1.00"),
        debt=debt,
        debt_recovery_pct=pct,
        carry_in=carry,
    )
    assert price.balances()
    assert price.carry_out >= 0
    # the change is less than one more token step at the dearest gross price, plus rounding
    step = sts_amount_ceiling(price.kwh + D("0.01")) - price.kwh  # 0.1 kWh, 1 kWh above 1638.3
    assert price.carry_out < step * D("2.75") * D("1.15") + D("0.03")
    assert price.kwh == sts_amount_floor(price.kwh)
