"""Prepaid credit held on the meter: buy first, then use.

Credit is kept as an exact :class:`~decimal.Decimal`, in money or in kWh. Use is charged at
the price of the tariff rate in force. Credit never falls below its floor: zero, or minus the
emergency credit while that is in use. Anything charged beyond the floor (use inside a
friendly period, a standing charge on an empty meter, the part of a step that ran past the
end of credit) becomes debt, recovered as a percentage of later top-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meterstack.core.errors import CommandRefusedError, InvalidInputError
from meterstack.meter.config import PrepaidConfig

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_WH_PER_KWH = Decimal(1000)


@dataclass(frozen=True, slots=True)
class TopUp:
    """The outcome of one purchase applied to the meter."""

    amount: Decimal
    debt_recovered: Decimal
    credited: Decimal
    credit_after: Decimal
    emergency_repaid: bool


class PrepaidCredit:
    """Credit, debt, emergency credit and purchase history of a prepaid meter."""

    def __init__(self, config: PrepaidConfig) -> None:
        self.config = config
        self.credit: Decimal = config.initial_credit
        self.debt: Decimal = config.initial_debt
        self.emergency_active = False
        self.low_latched = False
        self.total_purchased = _ZERO
        self.purchase_count = 0
        self.last_purchase_amount: Decimal | None = None
        self.last_purchase_at: float | None = None
        self.total_charged = _ZERO
        if config.mode == "money":
            self._price_per_wh = {
                rate: price / _WH_PER_KWH for rate, price in config.price_per_kwh.items()
            }
        else:
            self._price_per_wh = {rate: Decimal("0.001") for rate in range(1, 9)}

    @property
    def unit(self) -> str:
        """``"money"`` or ``"kWh"``: what the credit counts."""
        return "money" if self.config.mode == "money" else "kWh"

    @property
    def floor(self) -> Decimal:
        """The lowest credit allowed now."""
        return -self.config.emergency_credit if self.emergency_active else _ZERO

    @property
    def available(self) -> Decimal:
        """Credit left before the supply would be disconnected."""
        return self.credit - self.floor

    @property
    def exhausted(self) -> bool:
        return self.available <= 0

    @property
    def low(self) -> bool:
        return self.available < self.config.low_credit_threshold

    def charge_energy(self, wh: int, rate: int) -> None:
        """Charge ``wh`` watt-hours of import at tariff ``rate``."""
        if wh:
            self.charge(wh * self._price_per_wh[rate])

    def charge(self, amount: Decimal) -> None:
        """Take ``amount`` from credit down to the floor; the rest becomes debt."""
        self.total_charged += amount
        room = self.credit - self.floor
        if room >= amount:
            self.credit -= amount
            return
        taken = room if room > 0 else _ZERO
        self.credit -= taken
        self.debt += amount - taken

    def top_up(self, amount: Decimal, at: float) -> TopUp:
        """Apply a purchase: first the debt-recovery share, then credit (which repays any
        emergency credit in use)."""
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise InvalidInputError("amount", amount, "a top-up is a positive Decimal")
        recovered = min(self.debt, amount * self.config.debt_recovery_pct / _HUNDRED)
        self.debt -= recovered
        credited = amount - recovered
        self.credit += credited
        repaid = False
        if self.emergency_active and self.credit >= 0:
            self.emergency_active = False
            repaid = True
        self.total_purchased += amount
        self.purchase_count += 1
        self.last_purchase_amount = amount
        self.last_purchase_at = at
        return TopUp(amount, recovered, credited, self.credit, repaid)

    def clear(self) -> Decimal:
        """Set the credit to zero (a clear-credit token) and end any emergency credit in
        use; debt is kept. Return the credit that was cleared."""
        cleared = self.credit
        self.credit = _ZERO
        self.emergency_active = False
        return cleared

    def activate_emergency(self) -> Decimal:
        """Let credit run on to minus the emergency credit; return the amount granted."""
        if self.config.emergency_credit <= 0:
            raise CommandRefusedError(
                "activate_emergency_credit", "this meter has no emergency credit"
            )
        if self.emergency_active:
            raise CommandRefusedError(
                "activate_emergency_credit", "emergency credit is already in use"
            )
        if not self.low:
            raise CommandRefusedError(
                "activate_emergency_credit",
                "offered only once credit is below the low-credit threshold",
            )
        self.emergency_active = True
        return self.config.emergency_credit

    def to_state(self) -> dict[str, Any]:
        return {
            "credit": str(self.credit),
            "debt": str(self.debt),
            "emergency_active": self.emergency_active,
            "low_latched": self.low_latched,
            "total_purchased": str(self.total_purchased),
            "purchase_count": self.purchase_count,
            "last_purchase_amount": (
                None if self.last_purchase_amount is None else str(self.last_purchase_amount)
            ),
            "last_purchase_at": self.last_purchase_at,
            "total_charged": str(self.total_charged),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.credit = Decimal(state["credit"])
        self.debt = Decimal(state["debt"])
        self.emergency_active = bool(state["emergency_active"])
        self.low_latched = bool(state["low_latched"])
        self.total_purchased = Decimal(state["total_purchased"])
        self.purchase_count = int(state["purchase_count"])
        amount = state["last_purchase_amount"]
        self.last_purchase_amount = None if amount is None else Decimal(amount)
        self.last_purchase_at = state["last_purchase_at"]
        self.total_charged = Decimal(state["total_charged"])
