from decimal import Decimal

import pytest

from meterstack.core import InvalidInputError
from meterstack.core.units import average_power_w, energy_wh, kwh, minor_unit_places, round_money


def test_energy_and_power() -> None:
    assert energy_wh(2000.0, 1800) == 1000.0
    assert average_power_w(1000.0, 1800) == 2000.0
    assert kwh(1500) == 1.5


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (0.125, "USD", Decimal("0.13")),  # half up, from the shortest repr
        (2.675, "EUR", Decimal("2.68")),  # the float is 2.67499999... in binary
        (Decimal("1.005"), "ZAR", Decimal("1.01")),
        (1234.5, "JPY", Decimal("1235")),
        ("0.0005", "KWD", Decimal("0.001")),
        (-0.125, "USD", Decimal("-0.13")),
    ],
)
def test_round_money_to_the_minor_unit(value: object, currency: str, expected: Decimal) -> None:
    assert round_money(value, currency) == expected  # type: ignore[arg-type]
    assert str(round_money(value, currency)) == str(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "currency", "field"),
    [
        ("abc", "USD", "amount"),
        (float("nan"), "USD", "amount"),
        (1.0, "usd", "currency"),
        (1.0, "DOLLAR", "currency"),
    ],
)
def test_bad_money(value: object, currency: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        round_money(value, currency)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_minor_units() -> None:
    assert minor_unit_places("USD") == 2
    assert minor_unit_places("JPY") == 0
    assert minor_unit_places("BHD") == 3
