"""A tariff turned into the numpy tables the rating functions index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meterstack.tariff.model import DemandPeriod, Tariff

__all__ = ["DemandTables", "EnergyTables", "demand_tables", "energy_tables"]


@dataclass(frozen=True)
class EnergyTables:
    """Energy rates.

    ``rate`` and ``sell`` are (P, B) [currency/kWh]; ``limit`` is (B,), the upper limit of
    each block in ``unit`` (``inf`` for none); ``weekday``/``weekend`` are 12 x 24.
    """

    rate: NDArray[np.float64]
    sell: NDArray[np.float64]
    limit: NDArray[np.float64]
    unit: str
    weekday: list[list[int]]
    weekend: list[list[int]]
    names: list[str]

    @property
    def n_blocks(self) -> int:
        return int(self.limit.shape[0])


@dataclass(frozen=True)
class DemandTables:
    """Demand rates: (rows, B) tables of block limits [kW] and prices [currency/kW]."""

    tou_rate: NDArray[np.float64]
    tou_limit: NDArray[np.float64]
    tou_names: list[str]
    weekday: list[list[int]]
    weekend: list[list[int]]
    flat_rate: NDArray[np.float64]
    flat_limit: NDArray[np.float64]
    flat_months: NDArray[np.int64]


def energy_tables(tariff: Tariff) -> EnergyTables:
    """Pad every period to the same number of blocks (repeating its last price)."""
    periods = tariff.energy.periods
    n_blocks = max(len(p.tiers) for p in periods)
    widest = next(p for p in periods if len(p.tiers) == n_blocks)
    limit = np.array(
        [t.max if t.max is not None else np.inf for t in widest.tiers], dtype=np.float64
    )
    unit = next((t.unit for t in widest.tiers if t.max is not None), "kWh")
    free = tariff.prepaid.free_basic_kwh if tariff.prepaid is not None else 0.0
    rate = np.zeros((len(periods), n_blocks))
    sell = np.zeros((len(periods), n_blocks))
    flat_sell = tariff.export.sell_rate
    for i, period in enumerate(periods):
        for b in range(n_blocks):
            tier = period.tiers[min(b, len(period.tiers) - 1)]
            rate[i, b] = tier.rate
            chosen = tier.sell if tier.sell is not None else flat_sell
            sell[i, b] = chosen if chosen is not None else 0.0
    if free > 0:
        # Free basic electricity is a first block at zero price that moves the others up.
        limit = np.concatenate([[free], limit + free])
        rate = np.concatenate([np.zeros((len(periods), 1)), rate], axis=1)
        sell = np.concatenate([sell[:, :1], sell], axis=1)
        if unit != "kWh":
            unit = "kWh"
    weekday, weekend = tariff.energy.schedule.matrices([p.name for p in periods])
    return EnergyTables(
        rate=rate,
        sell=sell,
        limit=limit,
        unit=unit,
        weekday=weekday,
        weekend=weekend,
        names=[p.name for p in periods],
    )


def _block_table(
    periods: list[DemandPeriod],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n_blocks = max((len(p.tiers) for p in periods), default=1)
    rate = np.zeros((max(len(periods), 1), n_blocks))
    limit = np.full((max(len(periods), 1), n_blocks), np.inf)
    for i, period in enumerate(periods):
        for b, tier in enumerate(period.tiers):
            rate[i, b] = tier.rate
            limit[i, b] = tier.max if tier.max is not None else np.inf
        rate[i, len(period.tiers) :] = period.tiers[-1].rate
    return rate, limit


def demand_tables(tariff: Tariff) -> DemandTables | None:
    """Demand tables, or None when the tariff has no demand charge."""
    demand = tariff.demand
    if demand is None:
        return None
    tou_rate, tou_limit = _block_table(demand.periods)
    flat_rate, flat_limit = _block_table(demand.flat)
    weekday, weekend = demand.schedule.matrices([p.name for p in demand.periods] or ["all"])
    months = demand.flat_months if demand.flat_months is not None else [0] * 12
    return DemandTables(
        tou_rate=tou_rate if demand.periods else np.zeros((0, 1)),
        tou_limit=tou_limit if demand.periods else np.zeros((0, 1)),
        tou_names=[p.name for p in demand.periods],
        weekday=weekday,
        weekend=weekend,
        flat_rate=flat_rate if demand.flat else np.zeros((0, 1)),
        flat_limit=flat_limit if demand.flat else np.zeros((0, 1)),
        flat_months=np.asarray(months, dtype=np.int64),
    )
