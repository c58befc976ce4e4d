"""Bill documents: Decimal line items a customer can read, built from a rating.

Money is ``Decimal`` rounded to the currency's minor unit with ROUND_HALF_UP; each line is
rounded on its own and the total is the sum of the rounded lines, so a bill always adds up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from meterstack.core.units import round_money
from meterstack.tariff.pysam_compat import PySAMBills
from meterstack.tariff.rating import RatingResult

__all__ = ["Bill", "LineItem", "bills_from_rating", "money", "summary_json"]


def money(value: float, currency: str = "USD") -> Decimal:
    """A float amount as Decimal in the currency's minor unit, half up."""
    return round_money(float(value), currency)


@dataclass(frozen=True)
class LineItem:
    """One line of a bill."""

    component: str  # fixed, energy, demand, pf, minimum, taxes, export_credit
    description: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    explanation: str

    def document(self) -> dict[str, str]:
        """The line as stored in a bill document (amounts as decimal strings)."""
        return {
            "component": self.component,
            "description": self.description,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "rate": str(self.rate),
            "amount": str(self.amount),
        }


@dataclass
class Bill:
    """The bill of one meter for one cycle."""

    month: str
    currency: str
    lines: list[LineItem] = field(default_factory=list)

    def component(self, name: str) -> Decimal:
        return sum((line.amount for line in self.lines if line.component == name), Decimal(0))

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def _q(value: float, places: int = 3) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def _line(  # noqa: PLR0917
    bill: Bill,
    component: str,
    desc: str,
    qty: float,
    unit: str,
    rate: float,
    amount: float,
    why: str,
) -> None:
    amt = money(amount, bill.currency)
    if amt == 0 and qty == 0:
        return
    bill.lines.append(LineItem(component, desc, _q(qty), unit, _q(rate, 5), amt, why))


def bills_from_rating(result: RatingResult | PySAMBills, meter: int = 0) -> list[Bill]:
    """Bills of one meter, one per cycle, with line items."""
    if isinstance(result, PySAMBills):
        return _bills_from_pysam(result, meter)
    t = result.tariff
    cur = t.currency
    bills = []
    for k, label in enumerate(result.cycle_labels):
        bill = Bill(label, cur)
        for i, charge in enumerate(t.fixed):
            qty = (
                float(result.proration[k])
                if charge.per != "day"
                else float(result.fixed_detail[meter, k, i] / charge.amount if charge.amount else 0)
            )
            _line(
                bill,
                "fixed",
                charge.name,
                qty,
                charge.per,
                charge.amount,
                result.fixed_detail[meter, k, i],
                f"{charge.name}: {charge.amount} per {charge.per}"
                + (" (prorated)" if qty < 1 and charge.per != "day" else ""),
            )
        for p, pname in enumerate(result.period_names):
            for b in range(result.energy_kwh.shape[3]):
                kwh = float(result.energy_kwh[meter, k, p, b])
                if kwh <= 0:
                    continue
                cost = float(result.energy_cost[meter, k, p, b])
                block = f", block {b + 1}" if result.energy_kwh.shape[3] > 1 else ""
                _line(
                    bill,
                    "energy",
                    f"energy {pname}{block}",
                    kwh,
                    "kWh",
                    cost / kwh,
                    cost,
                    f"{kwh:.3f} kWh used in period '{pname}'{block} at {cost / kwh:.5f}/kWh",
                )
        if result.energy_extra[meter, k]:
            _line(
                bill,
                "energy",
                "real-time / critical-peak energy",
                0,
                "",
                0,
                result.energy_extra[meter, k],
                "price series and event adders on imported kWh",
            )
        note = _demand_note(result, k)
        if result.demand_flat_cost[meter, k]:
            kw = float(result.demand_flat_kw[meter, k])
            _line(
                bill,
                "demand",
                "maximum demand",
                kw,
                "kW",
                0,
                result.demand_flat_cost[meter, k],
                f"highest demand of the cycle: {kw:.2f} kW{note}",
            )
        for d in range(result.demand_tou_cost.shape[2]):
            cost = float(result.demand_tou_cost[meter, k, d])
            if cost:
                kw = float(result.demand_tou_kw[meter, k, d])
                _line(
                    bill,
                    "demand",
                    f"demand period {d + 1}",
                    kw,
                    "kW",
                    cost / kw if kw else 0,
                    cost,
                    f"highest demand in period {d + 1}: {kw:.2f} kW{note}",
                )
        if result.pf[meter, k]:
            pf = float(result.power_factor[meter, k])
            _line(
                bill,
                "pf",
                "power factor adjustment",
                pf,
                "PF",
                0,
                result.pf[meter, k],
                f"average power factor {pf:.3f}; billed demand {result.pf_billed_kw[meter, k]:.2f}"
                " kW after adjustment, reactive charges included",
            )
        if result.export_credit[meter, k]:
            _line(
                bill,
                "export_credit",
                "export credit",
                float(result.export_kwh[meter, k]),
                "kWh",
                0,
                -result.export_credit[meter, k],
                f"credit for {result.export_kwh[meter, k]:.3f} kWh sent to the grid",
            )
        if result.minimum[meter, k]:
            _line(
                bill,
                "minimum",
                "minimum charge top-up",
                1,
                "",
                0,
                result.minimum[meter, k],
                "the bill is raised to the tariff's minimum charge",
            )
        for i, tax in enumerate(t.taxes):
            _line(
                bill,
                "taxes",
                tax.name,
                tax.percent,
                "%",
                tax.per_kwh,
                result.tax_detail[meter, k, i],
                f"{tax.name}: {tax.percent}% of the bill"
                + (f" + {tax.per_kwh}/kWh" if tax.per_kwh else ""),
            )
        bills.append(bill)
    return bills


def _demand_note(result: RatingResult, k: int) -> str:
    """What a demand line should say about the window used and proration."""
    demand = result.tariff.demand
    note = ""
    window = result.demand_window_min
    if demand is not None and window is not None and window != demand.window_min:
        note += (
            f"; over the data's {window}-min intervals (the tariff's window is "
            f"{demand.window_min} min), an estimate"
        )
    billing = result.tariff.billing
    if billing.prorate and billing.prorate_demand and result.proration[k] < 1:
        note += f"; prorated x {float(result.proration[k]):.4f} for a partial cycle"
    return note


def _bills_from_pysam(result: PySAMBills, meter: int) -> list[Bill]:
    bills = []
    for k, label in enumerate(result.cycle_labels):
        bill = Bill(label, "USD")
        for comp, text in (
            ("fixed", "fixed charges"),
            ("energy", "energy charges after credits"),
            ("demand", "demand charges"),
            ("minimum", "minimum charge top-up"),
        ):
            _line(
                bill,
                comp,
                text,
                0,
                "",
                0,
                float(getattr(result, comp)[meter, k]),
                f"{text} by PySAM Utilityrate5 rules",
            )
        if result.export_credit[meter, k]:
            _line(
                bill,
                "export_credit",
                "true-up credit",
                0,
                "",
                0,
                -float(result.export_credit[meter, k]),
                "annual true-up of export credit",
            )
        bills.append(bill)
    return bills


def summary_json(bills: list[Bill]) -> str:
    """``{"months": [...], "total": x}`` with amounts as numbers with the minor-unit digits."""
    comps = ("fixed", "energy", "demand", "pf", "minimum", "taxes", "export_credit")
    months = []
    for bill in bills:
        row: dict[str, object] = {"month": bill.month}
        for c in comps:
            value = bill.component(c)
            row[c] = -value if c == "export_credit" else value
        row["total"] = bill.total
        months.append(row)
    grand = sum((b.total for b in bills), Decimal(0))
    doc = {"months": months, "total": grand}
    return json.dumps(doc, default=_decimal_number)


def _decimal_number(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
