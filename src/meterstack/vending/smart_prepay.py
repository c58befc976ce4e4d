"""Account-based smart prepay: the balance lives in the back office, not on the meter.

Each settlement rates every smart-prepay account's month-to-date import (channel
``1.0.1.8.0.255`` of its meters in the interval store, Wh) with :func:`meterstack.tariff.rate`
(blocks, free basic electricity, fixed charges, taxes; one call per tariff for all its
accounts) and takes from the balance what the month-to-date charges grew by since the last
settlement::

    charged_now[c] = round(mtd[c]) - charged_before[c]     for c in fixed, energy, taxes, other
    balance       -= sum(charged_now)

Blocks are monthly and partial months are not prorated here (the month is not over): the
month's fixed charges are taken at its first settlement. Intervals that arrive late are
charged at the next settlement, which rates the month again. When the balance falls below
the account's ``low_credit_threshold`` a ``low_credit`` notice is kept (once, until a
top-up lifts it again); at or below zero the supply is cut with ``remote_disconnect``
through the :class:`SupplyCommandPort`; when a top-up brings it above zero,
``remote_reconnect`` restores it. The vending package never talks to meters itself: the
head-end (:class:`meterstack.headend.HeadEnd`) satisfies the port.
"""

from __future__ import annotations

from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.time import ensure_utc, zone
from meterstack.core.units import round_money
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.audit import record as audit
from meterstack.mdm.operational.models import (
    Command,
    Meter,
    PrepaidAccount,
    PrepaidNotice,
    VendingMeter,
)
from meterstack.tariff.model import BillingCycle, Tariff
from meterstack.tariff.rating import rate
from meterstack.vending.ledger import JournalLine, post_journal
from meterstack.vending.service import EventSink
from meterstack.vending.tariffs import resolve_tariff

__all__ = ["SettlementReport", "SmartPrepay", "SupplyCommandPort"]

_ZERO = Decimal(0)
_IMPORT = "1.0.1.8.0.255"
_COMPONENTS = ("fixed", "energy", "taxes", "other")


class SupplyCommandPort(Protocol):
    """Where remote disconnect and reconnect commands go (the head-end's ``submit``)."""

    def submit(self, meter: str, name: str, args: dict[str, object] | None = None) -> int:
        """Queue command ``name`` for ``meter``; return the command's id."""
        ...


@dataclass
class SettlementReport:
    """What one settlement did."""

    accounts: int = 0
    charged: Decimal = _ZERO
    notices: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)


def _month_bounds(at: datetime, timezone: str) -> tuple[str, datetime, int]:
    tz = zone(timezone)
    local = at.astimezone(tz)
    start = datetime(local.year, local.month, 1, tzinfo=tz)
    return f"{local.year:04d}-{local.month:02d}", start, monthrange(local.year, local.month)[1]


class SmartPrepay:
    """Settles smart-prepay balances from interval data and keeps the supply in step.

    Parameters
    ----------
    engine : Engine
        The operational database.
    store : IntervalStore
        Where the meters' intervals are.
    port : SupplyCommandPort, optional
        Remote disconnect/reconnect; without it the decision is recorded but not sent.
    event_sink : callable, optional
        Receives notices (``account.low_credit``, ``account.disconnected``...) for webhooks.
    """

    def __init__(
        self,
        engine: Engine,
        store: IntervalStore,
        *,
        port: SupplyCommandPort | None = None,
        event_sink: EventSink | None = None,
        actor: str = "smart-prepay",
    ) -> None:
        self.engine = engine
        self.store = store
        self.port = port
        self.event_sink = event_sink
        self.actor = actor

    # ------------------------------------------------------------------ settlement
    def settle(self, at: datetime) -> SettlementReport:
        """Charge every smart-prepay account for its month-to-date use up to ``at``."""
        at = ensure_utc(at, "at")
        report = SettlementReport()
        with Session(self.engine) as session, session.begin():
            accounts = session.scalars(
                select(PrepaidAccount).where(PrepaidAccount.mode == "account").with_for_update()
            ).all()
            meters: dict[int, list[str]] = defaultdict(list)
            for row in session.scalars(
                select(VendingMeter).where(
                    VendingMeter.account_id.in_([a.account_id for a in accounts])
                )
            ):
                meters[row.account_id].append(row.meter_id)
            by_tariff: dict[str, list[PrepaidAccount]] = defaultdict(list)
            for account in accounts:
                if meters.get(account.account_id):
                    by_tariff[account.tariff].append(account)
            for name, group in by_tariff.items():
                tariff = resolve_tariff(session, name)
                mtd = self._month_to_date(session, tariff, group, meters, at)
                if mtd is None:
                    continue
                month, rows = mtd
                for account, charges in zip(group, rows, strict=True):
                    self._charge(session, account, tariff, month, charges, at, report)
            for account in accounts:
                self._supply(session, account, meters.get(account.account_id, []), at, report)
            report.accounts = len(accounts)
        return report

    def _month_to_date(
        self,
        session: Session,
        tariff: Tariff,
        accounts: list[PrepaidAccount],
        meters: dict[int, list[str]],
        at: datetime,
    ) -> tuple[str, list[dict[str, Decimal]]] | None:
        month, start, _ = _month_bounds(at, tariff.timezone)
        steps = {
            m.interval_s or 1800
            for m in session.scalars(
                select(Meter).where(
                    Meter.id.in_([s for a in accounts for s in meters[a.account_id]])
                )
            )
        }
        step = max(steps) if steps else 1800
        first = int(start.timestamp()) + step
        last = int(at.timestamp()) // step * step
        if last < first:
            return None
        ends = np.arange(first, last + 1, step, dtype=np.int64)
        row_of = {
            serial: index for index, a in enumerate(accounts) for serial in meters[a.account_id]
        }
        kwh = np.zeros((len(accounts), ends.size))
        table = self.store.read_intervals(
            start, datetime.fromtimestamp(last, tz=at.tzinfo), list(row_of), [_IMPORT]
        )
        if table.num_rows:
            names = table.column("meter").to_pylist()
            end_s = table.column("interval_end").cast("int64").to_numpy()
            values = table.column("value").to_numpy(zero_copy_only=False)
            slot = (end_s - first) // step
            inside = (slot >= 0) & (slot < ends.size) & ((end_s - first) % step == 0)
            rows = np.array([row_of[n] for n in names], dtype=np.int64)
            np.add.at(kwh, (rows[inside], slot[inside]), values[inside] / 1000.0)
        whole = tariff.model_copy(update={"billing": BillingCycle(cycle_day=1, prorate=False)})
        result = rate(whole, ends.astype("datetime64[s]"), kwh)
        out = []
        currency = tariff.currency
        for i in range(len(accounts)):
            fixed = round_money(float(result.fixed[i].sum()), currency)
            energy = round_money(float(result.energy[i].sum()), currency)
            taxes = round_money(float(result.taxes[i].sum()), currency)
            total = round_money(float(result.total[i].sum()), currency)
            out.append(
                {
                    "fixed": fixed,
                    "energy": energy,
                    "taxes": taxes,
                    "other": total - fixed - energy - taxes,
                    "kwh": Decimal(repr(float(kwh[i].sum()))),
                }
            )
        return month, out

    def _charge(  # noqa: PLR0917
        self,
        session: Session,
        account: PrepaidAccount,
        tariff: Tariff,
        month: str,
        mtd: dict[str, Decimal],
        at: datetime,
        report: SettlementReport,
    ) -> None:
        if account.month != month:
            account.month, account.month_charged = month, {}
        before = {c: Decimal(str(account.month_charged.get(c, "0"))) for c in _COMPONENTS}
        due = {c: mtd[c] - before[c] for c in _COMPONENTS}
        total = sum(due.values(), _ZERO)
        account.month_charged = {
            **{c: str(mtd[c]) for c in _COMPONENTS},
            "kwh": str(mtd["kwh"]),
        }
        account.settled_until = at
        if total == 0:
            return
        account.balance = Decimal(account.balance) - total
        account.version = account.version + 1
        accounts = {
            "fixed": "revenue:fixed",
            "energy": "revenue:energy",
            "taxes": "tax:usage",
            "other": "revenue:other",
        }
        post_journal(
            session,
            f"usage:{account.account_id}:{month}:{account.version}",
            at,
            tariff.currency,
            [JournalLine(f"customer:{account.account_id}:balance", total)]
            + [JournalLine(accounts[c], -due[c]) for c in _COMPONENTS],
        )
        report.charged += total

    def _notice(  # noqa: PLR0917
        self,
        session: Session,
        account: PrepaidAccount,
        kind: str,
        meter: str | None,
        at: datetime,
        detail: str,
        report: SettlementReport,
    ) -> None:
        notice = PrepaidNotice(
            account_id=account.account_id,
            meter_id=meter,
            kind=kind,
            at=at,
            balance=Decimal(account.balance),
            detail=detail,
        )
        session.add(notice)
        payload = {
            "account_id": account.account_id,
            "meter": meter,
            "kind": kind,
            "at": at.isoformat(),
            "balance": str(account.balance),
            "detail": detail,
        }
        report.notices.append(payload)
        if self.event_sink is not None:
            self.event_sink(session, f"account.{kind}", payload)

    def _supply(
        self,
        session: Session,
        account: PrepaidAccount,
        meters: list[str],
        at: datetime,
        report: SettlementReport,
    ) -> None:
        balance = Decimal(account.balance)
        threshold = Decimal(account.low_credit_threshold)
        if balance < threshold and not account.low_notified and balance > 0:
            account.low_notified = True
            self._notice(
                session, account, "low_credit", None, at, f"balance below {threshold}", report
            )
        if balance <= 0 and account.supply == "on":
            account.supply = "off"
            account.low_notified = True
            for meter in meters:
                self._command(session, account, meter, "remote_disconnect", at, report)
            self._notice(session, account, "disconnected", None, at, "credit exhausted", report)
        elif balance > 0 and account.supply == "off":
            account.supply = "on"
            for meter in meters:
                self._command(session, account, meter, "remote_reconnect", at, report)
            self._notice(session, account, "reconnected", None, at, "credit restored", report)

    def _command(  # noqa: PLR0917
        self,
        session: Session,
        account: PrepaidAccount,
        meter: str,
        name: str,
        at: datetime,
        report: SettlementReport,
    ) -> None:
        command_id = self.port.submit(meter, name, None) if self.port is not None else None
        session.add(
            Command(
                meter_id=meter,
                kind=name,
                payload={"headend_command": command_id, "account_id": account.account_id},
                status="queued" if command_id is not None else "not_sent",
                requested_by=self.actor,
                requested_at=at,
            )
        )
        audit(
            session,
            at=at,
            actor=self.actor,
            action=name,
            entity="meter",
            entity_id=meter,
            reason=f"smart prepay balance {account.balance}",
        )
        report.commands.append({"meter": meter, "name": name, "headend_command": command_id})

    def restore_supply(self, account_id: int, at: datetime) -> SettlementReport:
        """After a top-up: reconnect an account whose balance is positive again."""
        report = SettlementReport()
        with Session(self.engine) as session, session.begin():
            account = session.scalar(
                select(PrepaidAccount)
                .where(PrepaidAccount.account_id == account_id)
                .with_for_update()
            )
            if account is None or account.mode != "account":
                return report
            meters = list(
                session.scalars(
                    select(VendingMeter.meter_id).where(VendingMeter.account_id == account_id)
                )
            )
            self._supply(session, account, meters, ensure_utc(at, "at"), report)
            report.accounts = 1
        return report
