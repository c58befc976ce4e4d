"""The vending ledger: double-entry journals that balance to the cent.

Every money movement is one journal whose lines sum to zero (debits positive, credits
negative), in the operational database, in the same transaction as the change it records:

==================  =========================================================  ==========
journal             lines                                                      sum
==================  =========================================================  ==========
``deposit:N``       ``bank`` +D, ``vendor:V:float`` -D                          0
``vend:N``          ``vendor:V:float`` +T, ``revenue:fees`` -F,                  0
                    ``customer:A:debt`` -R, ``revenue:fixed`` -X,
                    ``revenue:energy`` -E, ``tax:NAME`` -t,
                    ``customer:A:carry`` +C_in -C_out, ``customer:A:balance`` -C
``reversal:N``      the lines of ``vend:N`` negated                              0
``usage:A:...``     ``customer:A:balance`` +U, revenue and tax accounts -U       0
``debt:A``          ``customer:A:debt`` +D, ``revenue:arrears`` -D               0
==================  =========================================================  ==========

A vendor's float is what it has paid in less what it has sold: minus the balance of its
``vendor:V:float`` account. :func:`reconcile_day` checks a vendor's day against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterstack.core.errors import CorruptStateError
from meterstack.core.time import zone
from meterstack.mdm.operational.models import LedgerEntry, Vend

__all__ = [
    "JournalLine",
    "account_balance",
    "float_account",
    "post_journal",
    "trial_balance",
    "vendor_day",
]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class JournalLine:
    """One line: ``amount`` debited (positive) or credited (negative) to ``account``."""

    account: str
    amount: Decimal


def float_account(vendor_id: int) -> str:
    return f"vendor:{vendor_id}:float"


def post_journal(
    session: Session,
    journal: str,
    at: datetime,
    currency: str,
    lines: Iterable[JournalLine],
    *,
    vend_id: int | None = None,
    vendor_id: int | None = None,
) -> list[LedgerEntry]:
    """Add a journal to ``session``; refuse one whose lines do not sum to zero."""
    kept = [line for line in lines if line.amount != 0]
    total = sum((line.amount for line in kept), _ZERO)
    if total != 0:
        raise CorruptStateError(f"journal {journal} does not balance: its lines sum to {total}")
    entries = [
        LedgerEntry(
            journal=journal,
            at=at,
            ledger_account=line.account,
            amount=line.amount,
            currency=currency,
            vend_id=vend_id,
            vendor_id=vendor_id,
        )
        for line in kept
    ]
    session.add_all(entries)
    return entries


def account_balance(session: Session, account: str, before: datetime | None = None) -> Decimal:
    """Sum of an account's lines (those before ``before`` if given)."""
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.ledger_account == account
    )
    if before is not None:
        query = query.where(LedgerEntry.at < before)
    return Decimal(str(session.scalar(query) or 0))


def trial_balance(session: Session) -> dict[str, Decimal]:
    """Every ledger account and its balance; the values sum to zero."""
    rows = session.execute(
        select(LedgerEntry.ledger_account, func.sum(LedgerEntry.amount)).group_by(
            LedgerEntry.ledger_account
        )
    ).all()
    return {account: Decimal(str(total)) for account, total in rows}


@dataclass(frozen=True)
class VendorDay:
    """A vendor's local day, from the ledger and from the vends table."""

    opening: Decimal
    deposits: Decimal
    sales: Decimal
    reversals: Decimal
    closing: Decimal
    ledger_closing: Decimal
    vend_count: int
    reversal_count: int
    vends_total: Decimal

    @property
    def balanced(self) -> bool:
        return self.closing == self.ledger_closing and self.vends_total == self.sales


def _day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    tz = zone(timezone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def _sum(values: Sequence[Decimal]) -> Decimal:
    return sum(values, _ZERO)


def vendor_day(session: Session, vendor_id: int, day: date, timezone: str) -> VendorDay:
    """Opening float, deposits, sales and reversals of a vendor's local ``day``.

    ``closing = opening + deposits - sales + reversals`` must equal the float the ledger
    holds at the end of the day, and the sales must equal the vends table's total of the
    vendor's vends of that day.
    """
    start, end = _day_bounds(day, timezone)
    account = float_account(vendor_id)
    opening = -account_balance(session, account, start)
    ledger_closing = -account_balance(session, account, end)
    rows = session.execute(
        select(LedgerEntry.journal, LedgerEntry.amount).where(
            LedgerEntry.ledger_account == account, LedgerEntry.at >= start, LedgerEntry.at < end
        )
    ).all()
    deposits = -_sum([Decimal(str(a)) for j, a in rows if j.startswith("deposit:")])
    sales = _sum([Decimal(str(a)) for j, a in rows if j.startswith("vend:")])
    reversals = -_sum([Decimal(str(a)) for j, a in rows if j.startswith("reversal:")])
    vend_count = sum(1 for j, _ in rows if j.startswith("vend:"))
    reversal_count = sum(1 for j, _ in rows if j.startswith("reversal:"))
    vends_total = Decimal(
        str(
            session.scalar(
                select(func.coalesce(func.sum(Vend.amount), 0)).where(
                    Vend.vendor_id == vendor_id, Vend.vended_at >= start, Vend.vended_at < end
                )
            )
            or 0
        )
    )
    closing = opening + deposits - sales + reversals
    return VendorDay(
        opening,
        deposits,
        sales,
        reversals,
        closing,
        ledger_closing,
        vend_count,
        reversal_count,
        vends_total,
    )
