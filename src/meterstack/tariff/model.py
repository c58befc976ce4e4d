"""The tariff model: what a utility charges for, as validated pydantic objects.

A :class:`Tariff` is pure data. It is read from YAML (:mod:`meterstack.tariff.yaml_format`) or
URDB JSON (:mod:`meterstack.tariff.urdb`) and rated by :func:`meterstack.tariff.rating.rate`.
Units are in the field names or descriptions: energy in kWh, demand in kW (or kVA), money in
the tariff's currency units (e.g. USD, not cents).

Schedules follow the URDB convention [1]_: a 12 x 24 matrix per day type (weekday, weekend)
whose entry ``[month][hour]`` is the 0-based index of the period in force during that local
clock hour. Seasons with named hour ranges are an easier way to write the same matrices.

References
----------
.. [1] OpenEI, "U.S. Utility Rate Database API, version 8", field definitions of
   ``energyweekdayschedule``, ``energyratestructure``, ``demandratestructure``,
   ``flatdemandstructure``, ``dgrules``. https://openei.org/services/doc/rest/util_rates/
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BillingCycle",
    "CriticalPeak",
    "Demand",
    "DemandPeriod",
    "DemandTier",
    "Energy",
    "EnergyPeriod",
    "EnergyTier",
    "Export",
    "ExportMode",
    "FixedCharge",
    "Minimum",
    "PowerFactor",
    "Prepaid",
    "Ratchet",
    "Reactive",
    "Schedule",
    "Season",
    "Tariff",
    "Tax",
]

ExportMode = Literal[
    "none",
    "net_metering_kwh",
    "net_metering_credit",
    "net_billing_instantaneous",
    "net_billing_hourly",
    "buy_all_sell_all",
]
"""The five URDB ``dgrules`` variants (plus ``none``: exports earn nothing)."""

TierUnit = Literal["kWh", "kWh/kW", "kWh/day", "kWh/kW/day"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hours(text: str, where: str) -> range:
    """``"16-21"`` -> hours 16..20 (start inclusive, end exclusive; ``"22-6"`` wraps)."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"{where}: hour range {text!r} must look like '16-21'")
    start, end = int(parts[0]), int(parts[1])
    if not (0 <= start <= 23 and 1 <= end <= 24) or start == end:
        raise ValueError(
            f"{where}: hour range {text!r} must have 0 <= start <= 23 < 25, start != end"
        )
    if end > start:
        return range(start, end)
    return range(start, end + 24)


class Season(_Strict):
    """Months that share one daily pattern of periods, written as hour ranges."""

    name: str
    months: list[int] = Field(description="calendar months 1-12 of this season")
    weekday: dict[str, list[str]] = Field(default_factory=dict, description="period -> hours")
    weekend: dict[str, list[str]] = Field(default_factory=dict, description="period -> hours")
    default: str = Field(description="period in force in hours no range names")

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= m <= 12 for m in value) or len(set(value)) != len(value):
            raise ValueError(f"months {value!r} must be distinct numbers 1-12")
        return value

    def hours_of(self, day_type: Literal["weekday", "weekend"]) -> list[str]:
        """The period name of each of the 24 hours; raise on overlapping ranges."""
        names = [""] * 24
        ranges = self.weekday if day_type == "weekday" else self.weekend
        for period, texts in ranges.items():
            for text in texts:
                for hour in parse_hours(text, f"seasons.{self.name}.{day_type}.{period}"):
                    h = hour % 24
                    if names[h]:
                        raise ValueError(
                            f"seasons.{self.name}.{day_type}: periods {names[h]!r} and "
                            f"{period!r} overlap at hour {h}"
                        )
                    names[h] = period
        return [n or self.default for n in names]


class Schedule(_Strict):
    """Which period is in force: 12 x 24 matrices (URDB style) or seasons."""

    weekday: list[list[int]] | None = Field(default=None, description="12 x 24 period indices")
    weekend: list[list[int]] | None = Field(default=None, description="12 x 24 period indices")
    seasons: list[Season] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Schedule:
        if self.seasons is not None and (self.weekday is not None or self.weekend is not None):
            raise ValueError("give either seasons or weekday/weekend matrices, not both")
        for label, matrix in (("weekday", self.weekday), ("weekend", self.weekend)):
            if matrix is None:
                continue
            if len(matrix) != 12:
                raise ValueError(f"{label}: schedule has {len(matrix)} rows, must be 12 x 24")
            for i, row in enumerate(matrix):
                if len(row) != 24:
                    raise ValueError(
                        f"{label}[{i}]: row has {len(row)} hours, schedule must be 12 x 24"
                    )
                if any(v < 0 for v in row):
                    raise ValueError(f"{label}[{i}]: period indices must be >= 0")
        if self.seasons is not None:
            seen: dict[int, str] = {}
            for season in self.seasons:
                for m in season.months:
                    if m in seen:
                        raise ValueError(
                            f"seasons {seen[m]!r} and {season.name!r} overlap in month {m}"
                        )
                    seen[m] = season.name
            missing = sorted(set(range(1, 13)) - set(seen))
            if missing:
                raise ValueError(f"seasons do not cover months {missing}")
        return self

    def matrices(self, names: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """The weekday and weekend 12 x 24 matrices of period indices into ``names``."""
        if self.seasons is None:
            flat = [[0] * 24 for _ in range(12)]
            weekday = self.weekday if self.weekday is not None else flat
            weekend = self.weekend if self.weekend is not None else weekday
            return weekday, weekend
        index = {n: i for i, n in enumerate(names)}
        wd = [[0] * 24 for _ in range(12)]
        we = [[0] * 24 for _ in range(12)]
        for season in self.seasons:
            for day_type, target in (("weekday", wd), ("weekend", we)):
                hours = season.hours_of(day_type)  # type: ignore[arg-type]
                for h, name in enumerate(hours):
                    if name not in index:
                        raise ValueError(
                            f"seasons.{season.name}.{day_type}: period {name!r} is not defined"
                        )
                    for m in season.months:
                        target[m - 1][h] = index[name]
        return wd, we


class EnergyTier(_Strict):
    """One block of an energy rate."""

    max: float | None = Field(default=None, description="upper limit of the block; none = no limit")
    unit: TierUnit = Field(default="kWh", description="unit of max")
    rate: float = Field(description="price of energy in this block [currency/kWh]")
    sell: float | None = Field(default=None, description="export credit [currency/kWh]")


def _check_tiers(tiers: Sequence[EnergyTier | DemandTier], where: str) -> None:
    if not tiers:
        raise ValueError(f"{where}: at least one tier is needed")
    last = -math.inf
    for i, tier in enumerate(tiers):
        if tier.max is None:
            if i != len(tiers) - 1:
                raise ValueError(f"{where}[{i}]: only the last tier may have no max")
            continue
        if tier.max <= last:
            raise ValueError(
                f"{where}[{i}]: tiers out of order: max {tier.max} is not above {last}"
            )
        if tier.max <= 0:
            raise ValueError(f"{where}[{i}]: max must be positive")
        last = tier.max


class EnergyPeriod(_Strict):
    """A time-of-use period and its blocks."""

    name: str
    tiers: list[EnergyTier]

    @model_validator(mode="after")
    def _order(self) -> EnergyPeriod:
        _check_tiers(self.tiers, f"periods.{self.name}.tiers")
        units = {t.unit for t in self.tiers if t.max is not None}
        if len(units) > 1:
            raise ValueError(f"periods.{self.name}.tiers: cannot mix units {sorted(units)}")
        return self


class CriticalPeak(_Strict):
    """Critical-peak pricing: an adder on event days, announced by the utility."""

    days: list[date] = Field(description="local dates of the events")
    hours: str = Field(description="local hour range of an event, e.g. '14-18'")
    adder: float = Field(description="added to the energy price during events [currency/kWh]")

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value, "critical_peak.hours")
        return value


class Energy(_Strict):
    """Energy charges: periods with blocks and the schedule that picks a period."""

    periods: list[EnergyPeriod]
    schedule: Schedule = Field(default_factory=Schedule)
    price_series: bool = Field(
        default=False, description="real-time pricing: a price per interval is added"
    )
    critical_peak: CriticalPeak | None = None

    @model_validator(mode="after")
    def _periods(self) -> Energy:
        names = [p.name for p in self.periods]
        if not names:
            raise ValueError("energy.periods: at least one period is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"energy.periods: duplicate period names in {names}")
        wd, we = self.schedule.matrices(names)
        for label, matrix in (("weekday", wd), ("weekend", we)):
            top = max(max(row) for row in matrix)
            if top >= len(names):
                raise ValueError(
                    f"energy.schedule.{label}: period index {top} but only {len(names)} periods"
                )
        tiered = [p for p in self.periods if len(p.tiers) > 1]
        if tiered:
            ref = tiered[0]
            for p in self.periods:
                limits = [(t.max, t.unit) for t in p.tiers]
                if len(p.tiers) > 1 and limits != [(t.max, t.unit) for t in ref.tiers]:
                    raise ValueError(
                        f"energy.periods.{p.name}.tiers: block limits differ from those of "
                        f"{ref.name!r}; every period must use the same limits"
                    )
        return self


class DemandTier(_Strict):
    """One block of a demand rate."""

    max: float | None = Field(default=None, description="upper limit of the block [kW]")
    rate: float = Field(description="price of billing demand in this block [currency/kW]")


class DemandPeriod(_Strict):
    """A demand period (time-of-use or flat) and its blocks."""

    name: str
    tiers: list[DemandTier]

    @model_validator(mode="after")
    def _order(self) -> DemandPeriod:
        _check_tiers(self.tiers, f"demand.{self.name}.tiers")
        return self


class Ratchet(_Strict):
    """Demand ratchet: billing demand is at least a share of recent peaks."""

    percent: float = Field(gt=0, le=100, description="share of the look-back peak [%]")
    months: int = Field(ge=1, le=36, description="look-back, in billing cycles")
    floor_actual: bool = Field(default=True, description="the cycle's own peak is a floor")
    apply_months: list[int] = Field(
        default_factory=lambda: list(range(1, 13)), description="months 1-12 it applies in"
    )


class Demand(_Strict):
    """Demand charges: time-of-use and flat (monthly) demand, with tiers."""

    window_min: Literal[5, 10, 15, 30, 60] = Field(default=15, description="demand interval [min]")
    sliding: bool = Field(default=False, description="rolling window instead of clock-aligned")
    measure: Literal["kW", "kVA"] = "kW"
    periods: list[DemandPeriod] = Field(default_factory=list, description="time-of-use demand")
    schedule: Schedule = Field(default_factory=Schedule)
    flat: list[DemandPeriod] = Field(default_factory=list, description="flat demand structures")
    flat_months: list[int] | None = Field(
        default=None, description="12 indices into flat, one per month (default all 0)"
    )
    minimum_kw: float = Field(default=0.0, ge=0, description="minimum billing demand [kW]")
    ratchet: Ratchet | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Demand:
        if not self.periods and not self.flat:
            raise ValueError("demand: give time-of-use periods, flat demand, or both")
        if self.flat_months is not None:
            if len(self.flat_months) != 12:
                raise ValueError("demand.flat_months must have 12 entries")
            if any(not 0 <= i < len(self.flat) for i in self.flat_months):
                raise ValueError("demand.flat_months: index out of range of demand.flat")
        if self.periods:
            names = [p.name for p in self.periods]
            wd, we = self.schedule.matrices(names)
            top = max(*(max(r) for r in wd), *(max(r) for r in we))
            if top >= len(names):
                raise ValueError(f"demand.schedule: period index {top} out of range")
        return self


class FixedCharge(_Strict):
    """A charge that does not depend on consumption."""

    name: str = "customer charge"
    amount: float = Field(description="[currency] per unit of 'per'")
    per: Literal["month", "day", "meter"] = Field(
        default="month", description="'meter' is per meter per month"
    )


class Reactive(_Strict):
    """Charges for reactive energy or reactive demand."""

    per_kvarh: float = Field(default=0.0, description="[currency/kvarh] above the free share")
    free_kvarh_ratio: float = Field(default=0.0, ge=0, description="kvarh free per kWh [-]")
    per_kvar: float = Field(default=0.0, description="[currency/kVAR] of peak reactive demand")


class PowerFactor(_Strict):
    """Power-factor adjustment; the formulas are in :mod:`meterstack.tariff.power_factor`."""

    method: Literal["demand_ratio", "kva_demand", "kvarh_threshold", "percent_per_step"]
    target: float = Field(gt=0, le=1, description="target power factor [-]")
    max_multiplier: float | None = Field(default=None, ge=1, description="demand_ratio cap [-]")
    rate_per_kvarh: float = Field(default=0.0, description="kvarh_threshold price [currency/kvarh]")
    surcharge_percent_per_step: float = Field(default=0.0, ge=0, description="[% per 0.01 PF]")
    incentive_percent_per_step: float = Field(default=0.0, ge=0, description="[% per 0.01 PF]")
    max_incentive_percent: float = Field(default=100.0, ge=0, description="[%]")
    max_surcharge_percent: float = Field(default=100.0, ge=0, description="[%]")


class Export(_Strict):
    """How exported energy is credited (URDB ``dgrules``)."""

    mode: ExportMode = "none"
    sell_rate: float | None = Field(default=None, description="flat credit [currency/kWh]")
    true_up_month: int = Field(default=12, ge=1, le=12, description="month of annual true-up")
    yearend_sell_rate: float = Field(default=0.0, description="true-up credit [currency/kWh]")


class Minimum(_Strict):
    """Minimum charges."""

    monthly: float = Field(default=0.0, ge=0, description="[currency per cycle]")
    annual: float = Field(default=0.0, ge=0, description="[currency per year]")


class Tax(_Strict):
    """A tax or levy added on top of the bill."""

    name: str
    percent: float = Field(default=0.0, description="of the bill before taxes [%]")
    per_kwh: float = Field(default=0.0, description="on imported energy [currency/kWh]")


class Prepaid(_Strict):
    """Prepaid step tariff: free basic electricity, then the energy blocks; monthly reset."""

    free_basic_kwh: float = Field(default=0.0, ge=0, description="free each month [kWh]")


class BillingCycle(_Strict):
    """When cycles start and whether partial cycles are prorated.

    A partial cycle (the first or last of the data) covering d of the cycle's D days is
    prorated by d / D: monthly fixed charges, kWh and kWh/kW block limits and, unless
    ``prorate_demand`` is false, demand charges (Hydro-Quebec, Electricity Rates, states
    its monthly charges, the demand charge included, on a 30-day basis prorated to the
    days of the consumption period; tariffs that bill a partial month's peak in full set
    ``prorate_demand: false``).
    """

    cycle_day: int = Field(default=1, ge=1, le=28, description="local day a cycle starts on")
    prorate: bool = True
    prorate_demand: bool = Field(
        default=True, description="prorate demand charges of partial cycles (with prorate)"
    )


class Tariff(_Strict):
    """A complete tariff."""

    name: str
    description: str = ""
    utility: str = ""
    sector: str = ""
    source: str = ""
    currency: str = Field(default="USD", min_length=3, max_length=3)
    timezone: str = "UTC"
    holidays: list[date] = Field(default_factory=list, description="local dates rated as weekend")
    billing: BillingCycle = Field(default_factory=BillingCycle)
    fixed: list[FixedCharge] = Field(default_factory=list)
    energy: Energy
    demand: Demand | None = None
    reactive: Reactive | None = None
    power_factor: PowerFactor | None = None
    export: Export = Field(default_factory=Export)
    minimum: Minimum = Field(default_factory=Minimum)
    taxes: list[Tax] = Field(default_factory=list)
    prepaid: Prepaid | None = None

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[date]) -> list[date]:
        if len(set(value)) != len(value):
            dupes = sorted({d.isoformat() for d in value if value.count(d) > 1})
            raise ValueError(f"holidays listed twice: {dupes}")
        return value

    @model_validator(mode="after")
    def _pf_needs(self) -> Tariff:
        if (
            self.power_factor is not None
            and self.power_factor.method in ("demand_ratio", "kva_demand")
            and self.demand is None
        ):
            raise ValueError(
                f"power_factor.method {self.power_factor.method!r} adjusts demand: "
                "the tariff has no demand charge"
            )
        return self
