"""Pricing a vend: from money tendered (or kWh asked for) to a receipt, all in ``Decimal``.

The tariff's energy blocks are monthly (they reset at the local month), so a vend is
placed in them by the kWh already sold to the account this month, ``c0``. Free basic
electricity (``prepaid.free_basic_kwh``) is the zero-price first block, as in
:func:`meterstack.tariff.tables.energy_tables`.

Money vend, tendered ``T`` with ``C_in`` carried from the last vend, fee ``F`` (gross,
untaxed), debt ``D`` recovered at ``p`` %, fixed charges due ``X`` (net; collected on the
first vend of a local month), percent taxes ``t`` (sum of the tariff's ``percent`` taxes /
100) and per-kWh taxes ``tau``::

    A1 = T + C_in - F                                       (refused if < 0)
    R  = min(D, round(A1 * p / 100))                        debt recovered
    G  = A1 - R - X * (1 + t)                               money left for energy (>= 0)
    g_b = r_b * (1 + t) + tau                               gross price of block b
    q_b = min(room_b, G_left / g_b), block by block from c0  (room of a free block: all)
    E  = the largest STS amount <= sum q_b                  (0.1 kWh steps below 1638.4)
    energy_b = round(e_b * r_b) for E placed from c0 into the blocks (e_b)
    tax = round((X + sum energy_b) * t) + round(E * tau)
    C_out = A1 - R - round(X) - sum energy_b - tax           carried to the next vend

If rounding would make ``C_out`` negative, ``E`` is lowered by one step. Every line is
rounded half up to the currency's minor unit (:func:`meterstack.core.units.round_money`),
so ``T + C_in = F + R + X + sum energy_b + tax + C_out`` holds to the cent.

A kWh vend asks for ``E`` (rounded up to a token amount); the customer pays
``F + R + round(X) + sum energy_b + tax - C_in`` with ``R = min(D, round(B * p / (100 - p)))``,
``B`` the charges before fee and debt, so that ``R`` is ``p`` % of what goes to charges
and debt together; ``p = 100`` recovers the whole debt.

An account-based (smart prepay) top-up converts nothing to kWh: ``A1 - R`` is credited to
the balance, and energy, fixed charges and taxes are taken later from interval data.

References
----------
.. [1] IEC 62055-41:2018, the amount field of credit tokens (resolution and coding).
.. [2] NRS 009-6-7 (South Africa), the vending system's receipt: units, free basic
   electricity, fixed charges, debt recovery and VAT shown separately.
"""

from __future__ import annotations

import math
from calendar import monthrange
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from meterstack.core.errors import InvalidInputError
from meterstack.core.units import minor_unit_places, round_money
from meterstack.sts.amount import MAX_AMOUNT
from meterstack.tariff.model import Tariff
from meterstack.tariff.tables import energy_tables
from meterstack.vending.errors import TariffNotVendableError, VendRefusedError

__all__ = [
    "Block",
    "ReceiptLine",
    "VendPrice",
    "fixed_charges_for_month",
    "price_account_topup",
    "price_kwh_vend",
    "price_money_vend",
    "sts_amount_ceiling",
    "sts_amount_floor",
    "vend_blocks",
]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_STEP = Decimal("0.1")


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@dataclass(frozen=True)
class Block:
    """One monthly block of a vend tariff: ``(lower, upper]`` kWh at ``rate`` per kWh."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal
    free: bool


@dataclass(frozen=True)
class ReceiptLine:
    """One line of a receipt. ``amount`` is what the line takes from the money [currency]."""

    component: str  # fee, debt, fixed, energy, free_basic, tax, credit, carry_in, carry_out
    description: str
    amount: Decimal
    kwh: Decimal | None = None
    rate: Decimal | None = None

    def as_json(self, currency: str = "USD") -> dict[str, Any]:
        out: dict[str, Any] = {
            "component": self.component,
            "description": self.description,
            "amount": str(round_money(self.amount, currency)),
        }
        if self.kwh is not None:
            out["kwh"] = f"{self.kwh.normalize():f}"
        if self.rate is not None:
            out["rate"] = f"{self.rate.normalize():f}"
        return out


@dataclass(frozen=True)
class VendPrice:
    """What a vend costs and gives.

    ``tendered`` is paid by the customer; ``carry_in`` came from the last vend and
    ``carry_out`` goes to the next; ``kwh`` is the token's amount (zero for a top-up);
    ``credit`` is what a smart-prepay balance receives.
    """

    currency: str
    tendered: Decimal
    carry_in: Decimal
    carry_out: Decimal
    fee: Decimal
    debt_recovered: Decimal
    fixed: Decimal
    energy: Decimal
    tax: Decimal
    credit: Decimal
    kwh: Decimal
    free_kwh: Decimal
    lines: list[ReceiptLine] = field(default_factory=list)
    fixed_collected: bool = False

    def balances(self) -> bool:
        """Money in equals money out, to the cent."""
        out = (
            self.fee
            + self.debt_recovered
            + self.fixed
            + self.energy
            + self.tax
            + self.credit
            + self.carry_out
        )
        return self.tendered + self.carry_in == out

    def as_json(self) -> dict[str, Any]:
        def money(value: Decimal) -> str:
            return str(round_money(value, self.currency))

        return {
            "currency": self.currency,
            **{
                name: money(getattr(self, name))
                for name in (
                    "tendered", "carry_in", "carry_out", "fee", "debt_recovered", "fixed",
                    "energy", "tax", "credit",
                )
            },
            "kwh": f"{self.kwh.normalize():f}",
            "free_kwh": f"{self.free_kwh.normalize():f}",
            "fixed_collected": self.fixed_collected,
            "lines": [line.as_json(self.currency) for line in self.lines],
        }  # fmt: skip


def sts_amount_floor(kwh: Decimal) -> Decimal:
    """The largest amount an STS credit token can carry that is not above ``kwh``. [kWh]

    The 16-bit amount is ``m * 10**e + sum_{n=1..e} 2**14 * 10**(n-1)`` in 0.1 kWh [1]:
    0.1 kWh steps up to 1638.3 kWh, then 1 kWh, 10 kWh, 100 kWh.
    """
    if kwh <= 0:
        return _ZERO
    tenths = int((kwh / _STEP).to_integral_value(rounding=ROUND_FLOOR))
    tenths = min(tenths, MAX_AMOUNT)
    offset = 0
    for exponent in range(4):
        scale = 10**exponent
        top = offset + (2**14 - 1) * scale
        if tenths <= top:
            mantissa = (tenths - offset) // scale
            return Decimal(mantissa * scale + offset) * _STEP
        offset += 2**14 * scale
    return Decimal(MAX_AMOUNT) * _STEP  # pragma: no cover - capped above


def sts_amount_ceiling(kwh: Decimal) -> Decimal:
    """The smallest token amount not below ``kwh`` (a kWh vend is rounded up to it). [kWh]"""
    floor = sts_amount_floor(kwh)
    if floor >= kwh:
        return floor
    tenths = int((floor / _STEP).to_integral_value()) + 1
    while True:
        candidate = sts_amount_floor(Decimal(tenths) * _STEP)
        if candidate >= kwh:
            return candidate
        tenths += 1


def vend_blocks(tariff: Tariff, month_days: int) -> list[Block]:
    """The tariff's monthly blocks for vending (free basic electricity first).

    Raises
    ------
    TariffNotVendableError
        The tariff has more than one time-of-use period (a token cannot know when it will
        be used), or blocks per kW of demand.
    """
    tables = energy_tables(tariff)
    if tables.rate.shape[0] != 1:
        raise TariffNotVendableError(
            "tariff", tariff.name, "a time-of-use tariff cannot price an STS token in advance"
        )
    if tables.unit not in ("kWh", "kWh/day"):
        raise TariffNotVendableError(
            "tariff", tariff.name, f"blocks in {tables.unit} need demand, unknown at a vend"
        )
    scale = Decimal(month_days) if tables.unit == "kWh/day" else Decimal(1)
    free = tariff.prepaid is not None and tariff.prepaid.free_basic_kwh > 0
    blocks = []
    lower = _ZERO
    for b in range(tables.n_blocks):
        limit = float(tables.limit[b])
        upper = None if math.isinf(limit) else _dec(limit) * scale
        if free and b == 0:
            upper = _dec(limit)  # the free block is kWh a month whatever the blocks' unit
        rate = _dec(float(tables.rate[0, b]))
        blocks.append(Block(lower, upper, rate, free and b == 0))
        if upper is None:
            break
        lower = upper
    return blocks


def _taxes(tariff: Tariff) -> tuple[Decimal, Decimal]:
    percent = sum((_dec(t.percent) for t in tariff.taxes), _ZERO) / _HUNDRED
    per_kwh = sum((_dec(t.per_kwh) for t in tariff.taxes), _ZERO)
    return percent, per_kwh


def fixed_charges_for_month(tariff: Tariff, month_days: int) -> Decimal:
    """The tariff's fixed charges for one whole month, net of tax. [currency]"""
    total = _ZERO
    for charge in tariff.fixed:
        amount = _dec(charge.amount)
        total += amount * month_days if charge.per == "day" else amount
    return total


def days_in_month(month: str) -> int:
    """Days of a ``YYYY-MM`` month."""
    year, number = (int(part) for part in month.split("-"))
    return monthrange(year, number)[1]


def _place(blocks: list[Block], start: Decimal, kwh: Decimal) -> list[tuple[Block, Decimal]]:
    """Split ``kwh`` bought on top of ``start`` kWh this month into the blocks."""
    placed = []
    end = start + kwh
    for block in blocks:
        low = max(start, block.lower)
        high = end if block.upper is None else min(end, block.upper)
        if high > low:
            placed.append((block, high - low))
    return placed


@dataclass(frozen=True)
class _Charges:
    energy_lines: list[ReceiptLine]
    energy: Decimal
    tax: Decimal
    tax_lines: list[ReceiptLine]
    free_kwh: Decimal


def _charges(  # noqa: PLR0917
    tariff: Tariff,
    blocks: list[Block],
    month_kwh: Decimal,
    kwh: Decimal,
    fixed: Decimal,
    currency: str,
) -> _Charges:
    lines: list[ReceiptLine] = []
    energy = _ZERO
    free_kwh = _ZERO
    for index, (block, amount) in enumerate(_place(blocks, month_kwh, kwh)):
        if block.free:
            free_kwh += amount
            lines.append(ReceiptLine("free_basic", "free basic electricity", _ZERO, amount, _ZERO))
            continue
        charge = round_money(amount * block.rate, currency)
        energy += charge
        upper = "" if block.upper is None else f"-{block.upper.normalize():f}"
        lines.append(
            ReceiptLine(
                "energy",
                f"energy block {index + 1} ({block.lower.normalize():f}{upper} kWh)",
                charge,
                amount,
                block.rate,
            )
        )
    percent, per_kwh = _taxes(tariff)
    tax_lines = []
    tax = _ZERO
    base = fixed + energy
    for item in tariff.taxes:
        part = _ZERO
        if item.percent:
            part += base * _dec(item.percent) / _HUNDRED
        if item.per_kwh:
            part += kwh * _dec(item.per_kwh)
        rounded = round_money(part, currency)
        if rounded:
            tax_lines.append(ReceiptLine("tax", item.name, rounded))
            tax += rounded
    del percent, per_kwh
    return _Charges(lines, energy, tax, tax_lines, free_kwh)


def _check_money(name: str, value: Decimal, currency: str, *, positive: bool = False) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInputError(name, value, "a finite Decimal amount")
    if value < 0 or (positive and value == 0):
        raise InvalidInputError(name, value, "must be positive" if positive else "must be >= 0")
    if value != round_money(value, currency):
        raise InvalidInputError(
            name, value, f"{currency} has {minor_unit_places(currency)} decimal places"
        )


def _quantized(currency: str, *values: Decimal) -> tuple[Decimal, ...]:
    return tuple(round_money(value, currency) for value in values)


def _fixed_lines(tariff: Tariff, month_days: int, currency: str) -> list[ReceiptLine]:
    lines = []
    for charge in tariff.fixed:
        amount = _dec(charge.amount) * (month_days if charge.per == "day" else 1)
        rounded = round_money(amount, currency)
        if rounded:
            lines.append(ReceiptLine("fixed", charge.name, rounded))
    return lines


def price_money_vend(
    tariff: Tariff,
    tendered: Decimal,
    *,
    month_kwh: Decimal,
    month_days: int,
    collect_fixed: bool,
    fee: Decimal = _ZERO,
    debt: Decimal = _ZERO,
    debt_recovery_pct: Decimal = _ZERO,
    carry_in: Decimal = _ZERO,
) -> VendPrice:
    """Price a vend of ``tendered`` money into an STS kWh token (formula in the module doc).

    Raises
    ------
    VendRefusedError
        The money does not cover the fee and the fixed charges due.
    """
    currency = tariff.currency
    _check_money("amount", tendered, currency, positive=True)
    tendered, fee, debt, carry_in = _quantized(currency, tendered, fee, debt, carry_in)
    blocks = vend_blocks(tariff, month_days)
    percent, per_kwh = _taxes(tariff)
    fixed_lines = _fixed_lines(tariff, month_days, currency) if collect_fixed else []
    fixed = sum((line.amount for line in fixed_lines), _ZERO)
    available = tendered + carry_in - fee
    if available < 0:
        raise VendRefusedError("vend", f"{tendered} {currency} does not cover the fee {fee}")
    recovered = min(debt, round_money(available * debt_recovery_pct / _HUNDRED, currency))
    left = available - recovered - fixed * (1 + percent)
    if left < 0:
        raise VendRefusedError(
            "vend",
            f"{tendered} {currency} does not cover the fee, debt share and this month's "
            f"fixed charges ({fixed} {currency} before tax)",
        )
    exact = _ZERO
    money_left = left
    for block in blocks:
        low = max(month_kwh, block.lower)
        room = None if block.upper is None else block.upper - low
        if room is not None and room <= 0:
            continue
        gross = block.rate * (1 + percent) + per_kwh
        if gross == 0:
            take = room if room is not None else _ZERO
        else:
            affordable = money_left / gross
            take = affordable if room is None else min(room, affordable)
            money_left -= take * gross
        exact += take
        if room is None or money_left <= 0:
            break
    kwh = sts_amount_floor(exact)
    while True:
        charges = _charges(tariff, blocks, month_kwh, kwh, fixed, currency)
        carry_out = available - recovered - fixed - charges.energy - charges.tax
        if carry_out >= 0 or kwh == 0:
            break
        kwh = sts_amount_floor(kwh - Decimal("0.05"))
    if kwh == 0:
        raise VendRefusedError(
            "vend", f"{tendered} {currency} buys no energy after fee, debt and fixed charges"
        )
    lines = _head_lines(tendered, carry_in, fee, recovered, currency)
    lines += fixed_lines + charges.energy_lines + charges.tax_lines
    if carry_out:
        lines.append(ReceiptLine("carry_out", "change carried to the next purchase", carry_out))
    price = VendPrice(
        currency=currency,
        tendered=tendered,
        carry_in=carry_in,
        carry_out=carry_out,
        fee=fee,
        debt_recovered=recovered,
        fixed=fixed,
        energy=charges.energy,
        tax=charges.tax,
        credit=_ZERO,
        kwh=kwh,
        free_kwh=charges.free_kwh,
        lines=lines,
        fixed_collected=collect_fixed,
    )
    assert price.balances()
    return price


def _head_lines(
    tendered: Decimal, carry_in: Decimal, fee: Decimal, recovered: Decimal, currency: str
) -> list[ReceiptLine]:
    lines = [ReceiptLine("tendered", f"amount tendered ({currency})", tendered)]
    if carry_in:
        lines.append(ReceiptLine("carry_in", "change from the last purchase", carry_in))
    if fee:
        lines.append(ReceiptLine("fee", "vend fee", fee))
    if recovered:
        lines.append(ReceiptLine("debt", "debt recovery", recovered))
    return lines


def price_kwh_vend(
    tariff: Tariff,
    kwh: Decimal,
    *,
    month_kwh: Decimal,
    month_days: int,
    collect_fixed: bool,
    fee: Decimal = _ZERO,
    debt: Decimal = _ZERO,
    debt_recovery_pct: Decimal = _ZERO,
    carry_in: Decimal = _ZERO,
) -> VendPrice:
    """Price a vend of ``kwh`` (rounded up to a token amount); see the module doc."""
    currency = tariff.currency
    if not isinstance(kwh, Decimal) or not kwh.is_finite() or kwh <= 0:
        raise InvalidInputError("kwh", kwh, "a positive Decimal number of kWh")
    if kwh > Decimal(MAX_AMOUNT) * _STEP:
        raise InvalidInputError("kwh", kwh, f"above the largest token {MAX_AMOUNT * _STEP} kWh")
    blocks = vend_blocks(tariff, month_days)
    fee, debt, carry_in = _quantized(currency, fee, debt, carry_in)
    token_kwh = sts_amount_ceiling(kwh)
    fixed_lines = _fixed_lines(tariff, month_days, currency) if collect_fixed else []
    fixed = sum((line.amount for line in fixed_lines), _ZERO)
    charges = _charges(tariff, blocks, month_kwh, token_kwh, fixed, currency)
    base = fixed + charges.energy + charges.tax
    if debt_recovery_pct >= _HUNDRED:
        recovered = debt
    else:
        recovered = min(
            debt, round_money(base * debt_recovery_pct / (_HUNDRED - debt_recovery_pct), currency)
        )
    due = fee + recovered + base
    used_carry = min(carry_in, due) if carry_in > 0 else carry_in
    tendered = due - used_carry
    carry_out = carry_in - used_carry
    if tendered <= 0:
        raise VendRefusedError("vend", "the change held covers this vend: sell by money instead")
    lines = _head_lines(tendered, used_carry, fee, recovered, currency)
    lines += fixed_lines + charges.energy_lines + charges.tax_lines
    if carry_out:
        lines.append(ReceiptLine("carry_out", "change carried to the next purchase", carry_out))
    price = VendPrice(
        currency=currency,
        tendered=tendered,
        carry_in=carry_in,
        carry_out=carry_out,
        fee=fee,
        debt_recovered=recovered,
        fixed=fixed,
        energy=charges.energy,
        tax=charges.tax,
        credit=_ZERO,
        kwh=token_kwh,
        free_kwh=charges.free_kwh,
        lines=lines,
        fixed_collected=collect_fixed,
    )
    assert price.balances()
    return price


def price_account_topup(
    tendered: Decimal,
    currency: str,
    *,
    fee: Decimal = _ZERO,
    debt: Decimal = _ZERO,
    debt_recovery_pct: Decimal = _ZERO,
) -> VendPrice:
    """A smart-prepay top-up: the fee and the debt share come off, the rest is credit."""
    _check_money("amount", tendered, currency, positive=True)
    tendered, fee, debt = _quantized(currency, tendered, fee, debt)
    available = tendered - fee
    if available <= 0:
        raise VendRefusedError("vend", f"{tendered} {currency} does not cover the fee {fee}")
    recovered = min(debt, round_money(available * debt_recovery_pct / _HUNDRED, currency))
    credit = available - recovered
    lines = _head_lines(tendered, _ZERO, fee, recovered, currency)
    lines.append(ReceiptLine("credit", "credit to the account balance", credit))
    price = VendPrice(
        currency=currency,
        tendered=tendered,
        carry_in=_ZERO,
        carry_out=_ZERO,
        fee=fee,
        debt_recovered=recovered,
        fixed=_ZERO,
        energy=_ZERO,
        tax=_ZERO,
        credit=credit,
        kwh=_ZERO,
        free_kwh=_ZERO,
        lines=lines,
    )
    assert price.balances()
    return price
