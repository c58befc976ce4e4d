"""Bills: Decimal line items from the tariff engine's ratings, and the interval CSV reader."""

from meterstack.billing.bill import Bill, LineItem, bills_from_rating, summary_json
from meterstack.billing.load_csv import IntervalSeries, read_interval_csv

__all__ = [
    "Bill",
    "IntervalSeries",
    "LineItem",
    "bills_from_rating",
    "read_interval_csv",
    "summary_json",
]
