"""Prepaid vending: accounts, STS tokens, smart prepay, the ledger, write-back, sampling.

Back office: imports ``core``, ``sts``, ``tariff``, ``mdm`` (and ``meter`` for the inquiry
type). It never talks to meters: remote disconnect and reconnect go through a
:class:`SupplyCommandPort` that the head-end satisfies.

* :mod:`~meterstack.vending.pricing`: the receipt of a vend, in ``Decimal``.
* :mod:`~meterstack.vending.service`: vends (idempotent by request id), reversals,
  re-prints, vendors' floats, daily reconciliation, audit.
* :mod:`~meterstack.vending.ledger`: double-entry journals that balance to the cent.
* :mod:`~meterstack.vending.smart_prepay`: account-based prepay from interval data.
* :mod:`~meterstack.vending.writeback`, :mod:`~meterstack.vending.sampling`: seed 002's
  write-back and user sampling.
"""

from meterstack.vending.errors import (
    NotFoundError,
    PermissionRefusedError,
    RequestConflictError,
    TariffNotVendableError,
    VendRefusedError,
)
from meterstack.vending.ledger import JournalLine, post_journal, trial_balance, vendor_day
from meterstack.vending.pricing import (
    ReceiptLine,
    VendPrice,
    price_account_topup,
    price_kwh_vend,
    price_money_vend,
    sts_amount_ceiling,
    sts_amount_floor,
    vend_blocks,
)
from meterstack.vending.sampling import SamplingCandidate, sampling_list
from meterstack.vending.service import (
    StsParameters,
    VendingService,
    VendOutcome,
    VendRequest,
    reconciliation_view,
    vend_view,
)
from meterstack.vending.smart_prepay import SettlementReport, SmartPrepay, SupplyCommandPort
from meterstack.vending.tariffs import resolve_tariff, save_tariff
from meterstack.vending.writeback import WriteBackReport, credit_gap_kwh, write_back

__all__ = [
    "JournalLine",
    "NotFoundError",
    "PermissionRefusedError",
    "ReceiptLine",
    "RequestConflictError",
    "SamplingCandidate",
    "SettlementReport",
    "SmartPrepay",
    "StsParameters",
    "SupplyCommandPort",
    "TariffNotVendableError",
    "VendOutcome",
    "VendPrice",
    "VendRefusedError",
    "VendRequest",
    "VendingService",
    "WriteBackReport",
    "credit_gap_kwh",
    "post_journal",
    "price_account_topup",
    "price_kwh_vend",
    "price_money_vend",
    "reconciliation_view",
    "resolve_tariff",
    "sampling_list",
    "save_tariff",
    "sts_amount_ceiling",
    "sts_amount_floor",
    "trial_balance",
    "vend_blocks",
    "vend_view",
    "vendor_day",
    "write_back",
]
