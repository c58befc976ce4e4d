"""Units: energy, power and money.

Energy registers count whole Wh (varh, VAh); power is W; money is :class:`~decimal.Decimal`
rounded to the currency's minor unit. Floats are for vectorised arithmetic only.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from meterstack.core.errors import InvalidInputError

WH_PER_KWH = 1000
SECONDS_PER_HOUR = 3600

#: ISO 4217 currencies whose minor unit is not the hundredth (exponent 0, 3 or 4).
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
            "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def energy_wh(power_w: float, seconds: float) -> float:
    """Energy of a constant power over a span: P * t / 3600. [Wh]"""
    return power_w * seconds / SECONDS_PER_HOUR


def average_power_w(energy: float, seconds: float) -> float:
    """Mean power of an energy over a span: E * 3600 / t. [W]"""
    return energy * SECONDS_PER_HOUR / seconds


def kwh(wh: float) -> float:
    """Wh to kWh."""
    return wh / WH_PER_KWH


def minor_unit_places(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217 exponent; 2 by default)."""
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidInputError("currency", currency, "an ISO 4217 code of three capitals")
    return CURRENCY_EXPONENTS.get(currency, 2)


def round_money(value: Decimal | float | int | str, currency: str = "USD") -> Decimal:
    """``value`` rounded half up to the minor unit of ``currency``.

    A float is read through its shortest representation (``repr``), so 0.125 rounds to
    0.13 rather than inheriting the binary error of the float.
    """
    try:
        amount = (
            value
            if isinstance(value, Decimal)
            else Decimal(repr(value) if isinstance(value, float) else value)
        )
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInputError("amount", value, "not a number") from exc
    if not amount.is_finite():
        raise InvalidInputError("amount", value, "money must be finite")
    quantum = Decimal(1).scaleb(-minor_unit_places(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)
