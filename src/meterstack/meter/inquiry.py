"""Customer inquiry: what the meter shows when the customer inserts the card or presses the
inquiry button (seed 002, "power inquiry")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CustomerInquiry:
    """The purchase and consumption summary and the stored constants of one meter."""

    serial: str
    customer_name: str
    customer_address: str
    meter_constant_imp_per_kwh: int
    cumulative_consumption_kwh: Decimal
    prepaid: bool
    credit_unit: str | None
    total_purchased: Decimal | None
    purchase_count: int
    last_purchase_amount: Decimal | None
    last_purchase_at: datetime | None
    remaining_credit: Decimal | None
    debt: Decimal | None
