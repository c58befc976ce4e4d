"""User sampling (seed 002): which prepaid customers to inspect first, and why.

"The electricity sales software can provide data sampling power consumption and provide
priority sampling user sequence according to requirements." For each prepaid account with
meters, over the ``recent_days`` before ``at`` and the ``history_days`` before those:

* ``drop_vs_history`` = 1 - recent / history, the fall of the mean daily import
  (``1.0.1.8.0.255``) against the customer's own past (0 when it did not fall);
* ``ratio_to_similar`` = recent / median of the recent means of the accounts on the same
  tariff (the similar homes); ``shortfall_vs_similar`` = max(0, 1 - ratio);
* ``tamper_events``: fraud-log events in the recent window (terminal and meter cover
  opened, strong magnetic field, missing neutral, current reversal, current with the
  relay open: IDIS codes 40, 42, 44, 89, 91 and meterstack's 205);
* ``credit_gap_kwh``: kWh the meter reports purchased beyond what was sold to it
  (:func:`meterstack.vending.writeback.credit_gap_kwh`).

The score ranks them::

    score = 0.35 * drop_vs_history + 0.25 * shortfall_vs_similar
          + 0.30 * min(tamper_events, 5) / 5 + 0.10 * [credit_gap_kwh > 0]

A fall in use with tamper events is the classic sign of a bypass; a shortfall against
similar homes alone may be an empty house, so it weighs less. Accounts scoring 0 are left
out. The weights are a documented starting point, not a calibrated model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.time import ensure_utc
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.models import Account, PrepaidAccount, VendingMeter
from meterstack.vending.writeback import credit_gap_kwh

__all__ = ["TAMPER_CODES", "WEIGHTS", "SamplingCandidate", "sampling_list"]

TAMPER_CODES = (40, 42, 44, 89, 91, 205)
WEIGHTS = {"drop": 0.35, "similar": 0.25, "tamper": 0.30, "credit": 0.10}
_IMPORT = "1.0.1.8.0.255"


@dataclass(frozen=True)
class SamplingCandidate:
    """One customer to inspect, with the evidence behind the score."""

    rank: int
    customer_id: int
    account_id: int
    meters: list[str]
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def _daily_means(
    store: IntervalStore, meters: list[str], start: datetime, end: datetime
) -> dict[str, float]:
    """Mean import per day over ``(start, end]`` of each meter [kWh/day] (missing = 0)."""
    table = store.read_intervals(start, end, meters, [_IMPORT])
    days = (end - start).total_seconds() / 86400
    totals: dict[str, float] = defaultdict(float)
    if table.num_rows:
        names = np.array(table.column("meter").to_pylist(), dtype=object)
        values = table.column("value").to_numpy(zero_copy_only=False)
        for name in np.unique(names):
            totals[str(name)] = float(values[names == name].sum()) / 1000.0
    return {m: totals.get(m, 0.0) / days for m in meters}


def sampling_list(
    engine: Engine,
    store: IntervalStore,
    *,
    at: datetime,
    recent_days: int = 30,
    history_days: int = 60,
    limit: int = 50,
) -> list[SamplingCandidate]:
    """The ranked list, highest score first (see the module doc)."""
    at = ensure_utc(at, "at")
    recent_start = at - timedelta(days=recent_days)
    history_start = recent_start - timedelta(days=history_days)
    with Session(engine) as session:
        rows = session.execute(
            select(PrepaidAccount.account_id, PrepaidAccount.tariff, Account.customer_id).join(
                Account, Account.id == PrepaidAccount.account_id
            )
        ).all()
        meters: dict[int, list[str]] = defaultdict(list)
        for meter in session.scalars(select(VendingMeter)):
            meters[meter.account_id].append(meter.meter_id)
        registered = {r.meter for r in store.meters()}
        serials = sorted({m for ms in meters.values() for m in ms} & registered)
        recent = _daily_means(store, serials, recent_start, at) if serials else {}
        history = _daily_means(store, serials, history_start, recent_start) if serials else {}
        tamper: dict[str, int] = defaultdict(int)
        if serials:
            events = store.read_events(recent_start, at, serials, list(TAMPER_CODES))
            for name in events.column("meter").to_pylist():
                tamper[name] += 1
        account_recent = {a: sum(recent.get(m, 0.0) for m in meters[a]) for a, _, _ in rows}
        account_history = {a: sum(history.get(m, 0.0) for m in meters[a]) for a, _, _ in rows}
        peers: dict[str, list[float]] = defaultdict(list)
        for account_id, tariff, _ in rows:
            if meters[account_id]:
                peers[tariff].append(account_recent[account_id])
        candidates = []
        for account_id, tariff, customer_id in rows:
            if not meters[account_id]:
                continue
            now_use = account_recent[account_id]
            before = account_history[account_id]
            drop = max(0.0, 1.0 - now_use / before) if before > 0 else 0.0
            median = float(np.median(peers[tariff])) if peers[tariff] else 0.0
            ratio = now_use / median if median > 0 else 1.0
            shortfall = max(0.0, 1.0 - ratio)
            events = sum(tamper[m] for m in meters[account_id])
            gaps = [credit_gap_kwh(session, m) for m in meters[account_id]]
            gap = sum((g for g in gaps if g is not None), Decimal(0))
            score = (
                WEIGHTS["drop"] * drop
                + WEIGHTS["similar"] * shortfall
                + WEIGHTS["tamper"] * min(events, 5) / 5
                + WEIGHTS["credit"] * (1.0 if gap > 0 else 0.0)
            )
            if score <= 0:
                continue
            reasons = []
            if drop > 0:
                reasons.append(f"use fell {drop:.0%} against its own past")
            if shortfall > 0:
                reasons.append(f"uses {ratio:.0%} of similar homes (same tariff)")
            if events:
                reasons.append(f"{events} tamper event(s)")
            if gap > 0:
                reasons.append(f"{gap} kWh on the meter were never sold")
            candidates.append(
                SamplingCandidate(
                    rank=0,
                    customer_id=customer_id,
                    account_id=account_id,
                    meters=sorted(meters[account_id]),
                    score=round(score, 6),
                    evidence={
                        "recent_kwh_per_day": round(now_use, 3),
                        "history_kwh_per_day": round(before, 3),
                        "drop_vs_history": round(drop, 6),
                        "ratio_to_similar": round(ratio, 6),
                        "similar_homes": len(peers[tariff]),
                        "tamper_events": events,
                        "credit_gap_kwh": f"{gap.normalize():f}",
                    },
                    reasons=reasons,
                )
            )
    candidates.sort(key=lambda c: (-c.score, c.account_id))
    return [
        SamplingCandidate(
            i + 1, c.customer_id, c.account_id, c.meters, c.score, c.evidence, c.reasons
        )
        for i, c in enumerate(candidates[:limit])
    ]
