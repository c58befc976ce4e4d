"""Scenario planning: who the customers are and what happens to them.

From a fleet's load shapes and a seed, :func:`plan_fleet` decides each meter's
configuration (phases, tariff calendar, prepayment, limiter, friendly hours), each prepaid
customer's habits (how soon they top up, how much they buy, whether they take emergency
credit), and the injected ground truth the analytics will later be scored against:
feeder outages, tampering (covers, magnets, reversed CTs, bypasses) and over-voltage.
Everything is drawn from one seeded generator, so a plan is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.meter import (
    FriendlyCalendar,
    FriendlyWindow,
    LimiterConfig,
    MeterConfig,
    PrepaidConfig,
    RateSwitch,
    Season,
    Thresholds,
    TouCalendarConfig,
)
from meterstack.sim.loadshapes import CustomerClass, LoadShapes


class InjectionKind(StrEnum):
    """Ground truth the simulator injects."""

    OUTAGE = "outage"
    TERMINAL_COVER = "terminal_cover"
    MAIN_COVER = "main_cover"
    MAGNET = "magnet"
    REVERSED_CT = "reversed_ct"
    BYPASS = "bypass"
    OVER_VOLTAGE = "over_voltage"


@dataclass(frozen=True, slots=True)
class Injection:
    """Something that happens to one meter over intervals ``[first, last]`` (indices)."""

    meter: int
    kind: InjectionKind
    first: int
    last: int
    #: Share of the real load the meter still sees (a bypass or a magnet steals the rest).
    measured_share: float = 1.0


@dataclass(frozen=True, slots=True)
class Habits:
    """How a prepaid customer behaves."""

    top_up_delay_h: float  # mean delay from a low-credit warning to a purchase
    urgent_delay_h: float  # mean delay once the supply is off
    top_up_amount: Decimal
    takes_emergency_credit: bool
    acknowledge_delay_h: float  # after a low-credit trip, until the card goes in


@dataclass
class FleetPlan:
    """Everything :func:`~meterstack.sim.fleet.run_fleet` needs besides the load shapes."""

    configs: list[MeterConfig]
    feeder: np.ndarray  # int16 (N,)
    habits: dict[int, Habits]
    injections: list[Injection]
    seed: int
    currency: str = "USD"
    notes: list[str] = field(default_factory=list)

    def masks(self, n_intervals: int) -> dict[InjectionKind, np.ndarray]:
        """Boolean (N, T) masks of each injected condition."""
        n = len(self.configs)
        masks = {kind: np.zeros((n, n_intervals), dtype=bool) for kind in InjectionKind}
        for injection in self.injections:
            masks[injection.kind][injection.meter, injection.first : injection.last + 1] = True
        return masks

    def measured_share(self, n_intervals: int) -> np.ndarray:
        """float32 (N, T): the share of the load each meter measures (theft lowers it)."""
        share = np.ones((len(self.configs), n_intervals), dtype=np.float32)
        for injection in self.injections:
            if injection.measured_share != 1.0:
                window = share[injection.meter, injection.first : injection.last + 1]
                np.minimum(window, injection.measured_share, out=window)
        return share


def standard_tou(timezone_holidays: list[date] | None = None) -> TouCalendarConfig:
    """A two-rate calendar: day rate 07:00-23:00 on weekdays, night rate otherwise."""
    return TouCalendarConfig(
        seasons=[Season(start="01-01", week_profile="year")],
        week_profiles={"year": ["weekday"] * 5 + ["weekend"] * 2},
        day_profiles={
            "weekday": [
                RateSwitch(start="00:00", rate=1),
                RateSwitch(start="07:00", rate=2),
                RateSwitch(start="23:00", rate=1),
            ],
            "weekend": [RateSwitch(start="00:00", rate=1)],
        },
        special_days=dict.fromkeys(timezone_holidays or [], "weekend"),
    )


NIGHT_PRICE = Decimal("0.12")
DAY_PRICE = Decimal("0.28")
STANDING_CHARGE = Decimal("0.30")


def plan_fleet(
    shapes: LoadShapes,
    *,
    seed: int,
    timezone: str = "UTC",
    prepaid_share: float = 0.6,
    meters_per_feeder: int = 25,
    tamper_share: float = 0.04,
) -> FleetPlan:
    """Decide configurations, habits and injected events for a fleet.

    Parameters
    ----------
    shapes : LoadShapes
        The fleet's load, which sets the credit each customer starts with and buys.
    seed : int
        Seed of the plan's random choices.
    prepaid_share : float
        Share of residential customers on prepayment. [0-1]
    meters_per_feeder : int
        Meters per low-voltage feeder; outages and voltage problems hit whole feeders.
    tamper_share : float
        Share of meters with an injected tamper or theft. [0-1]
    """
    if not 0 <= prepaid_share <= 1:
        raise InvalidInputError("prepaid_share", prepaid_share, "a share between 0 and 1")
    if not 0 <= tamper_share <= 1:
        raise InvalidInputError("tamper_share", tamper_share, "a share between 0 and 1")
    if meters_per_feeder < 1:
        raise InvalidInputError("meters_per_feeder", meters_per_feeder, "at least one meter")
    rng = np.random.default_rng(seed)
    n, t = shapes.n_meters, shapes.n_intervals
    intervals_per_day = 86400 // shapes.interval_s
    days = max(1, t // intervals_per_day)
    daily_kwh = (shapes.import_wh.sum(axis=1) / 1000.0 / days).astype(float)
    tou = standard_tou()
    residential = shapes.customer_class == CustomerClass.RESIDENTIAL
    prepaid = residential & (rng.random(n) < prepaid_share)
    feeder = (np.arange(n) // meters_per_feeder).astype(np.int16)
    rng.shuffle(feeder)

    peak_w = shapes.import_wh.max(axis=1).astype(float) * 3600.0 / shapes.interval_s
    configs: list[MeterConfig] = []
    habits: dict[int, Habits] = {}
    for index in range(n):
        customer_class = CustomerClass(int(shapes.customer_class[index]))
        phases = int(shapes.phases[index])
        serial = f"MS{index:06d}"
        daily_cost = Decimal(str(round(daily_kwh[index] * 0.22 + 0.30, 2)))
        prepaid_config = None
        limiter = None
        if prepaid[index]:
            friendly = FriendlyCalendar(
                daily=[FriendlyWindow(start="18:00", end="08:00")] if rng.random() < 0.5 else [],
                weekends=bool(rng.random() < 0.5),
            )
            days_of_credit = Decimal(str(round(float(rng.uniform(2, 12)), 1)))
            prepaid_config = PrepaidConfig(
                price_per_kwh={1: NIGHT_PRICE, 2: DAY_PRICE},
                initial_credit=(daily_cost * days_of_credit).quantize(Decimal("0.01")),
                low_credit_threshold=max(Decimal(2), (daily_cost * 2).quantize(Decimal("0.01"))),
                low_credit_trip=bool(rng.random() < 0.3),
                emergency_credit=Decimal(5),
                friendly=friendly,
                debt_recovery_pct=Decimal(25) if rng.random() < 0.2 else Decimal(0),
                initial_debt=Decimal(int(rng.integers(10, 60)))
                if rng.random() < 0.1
                else Decimal(0),
                standing_charge_per_day=STANDING_CHARGE,
            )
            limiter = LimiterConfig(threshold_w=12_000.0, min_over_threshold_s=60, backoff_s=900)
            weeks = int(rng.integers(1, 5))
            habits[index] = Habits(
                top_up_delay_h=float(rng.choice([1.0, 6.0, 24.0, 72.0], p=[0.4, 0.3, 0.2, 0.1])),
                urgent_delay_h=float(rng.uniform(0.5, 8.0)),
                top_up_amount=max(
                    Decimal(10), (daily_cost * 7 * weeks / 10).quantize(Decimal(1)) * 10
                ),
                takes_emergency_credit=bool(rng.random() < 0.4),
                acknowledge_delay_h=float(rng.uniform(0.1, 4.0)),
            )
        configs.append(
            MeterConfig(
                serial=serial,
                phases=1 if phases == 1 else 3,
                timezone=timezone,
                tou=tou,
                prepaid=prepaid_config,
                limiter=limiter,
                export_expected=bool(shapes.has_solar[index]),
                billing_reset_day=None if prepaid[index] else 1,
                customer_name=f"{customer_class.name.title()} customer {index}",
                thresholds=Thresholds(max_current_a=_rated_current(peak_w[index], phases)),
            )
        )

    injections = _injections(
        rng,
        shapes=shapes,
        feeder=feeder,
        tamper_share=tamper_share,
        intervals_per_day=intervals_per_day,
        days=days,
    )
    return FleetPlan(
        configs=configs, feeder=feeder, habits=habits, injections=injections, seed=seed
    )


#: Standard ratings of direct-connected meters and of CT primaries. [A]
_RATINGS_A = (60, 100, 200, 400, 800, 1600, 2000, 3200, 5000)


def _rated_current(peak_w: float, phases: int) -> float:
    """The smallest standard rating above 1.3 x the site's peak current (direct-connected
    meters up to 100 A, CT-connected above)."""
    peak_a = peak_w / (230.0 * phases)
    return float(next((r for r in _RATINGS_A if r >= 1.3 * peak_a), _RATINGS_A[-1]))


def _injections(
    rng: np.random.Generator,
    *,
    shapes: LoadShapes,
    feeder: np.ndarray,
    tamper_share: float,
    intervals_per_day: int,
    days: int,
) -> list[Injection]:
    n, t = shapes.n_meters, shapes.n_intervals
    injections: list[Injection] = []
    feeders = int(feeder.max()) + 1
    # Feeder outages: about one every ten days somewhere, 1 to 6 hours long.
    for _ in range(max(1, days // 10)):
        hit = int(rng.integers(feeders))
        first = int(rng.integers(0, max(1, t - 12)))
        last = min(t - 1, first + int(rng.integers(2, 13)))
        injections.extend(
            Injection(int(m), InjectionKind.OUTAGE, first, last)
            for m in np.flatnonzero(feeder == hit)
        )
    # Over-voltage on one feeder for an afternoon (a tap changer stuck high).
    if days >= 2:
        hit = int(rng.integers(feeders))
        first = int(rng.integers(0, max(1, t - 8)))
        injections.extend(
            Injection(int(m), InjectionKind.OVER_VOLTAGE, first, min(t - 1, first + 7))
            for m in np.flatnonzero(feeder == hit)
        )
    # Tampering and theft.
    for found in np.flatnonzero(rng.random(n) < tamper_share):
        meter = int(found)
        first = int(rng.integers(0, max(1, t - intervals_per_day)))
        last = min(t - 1, first + int(rng.integers(4, 4 * intervals_per_day)))
        polyphase = int(shapes.phases[meter]) == 3
        kind = rng.choice(
            ["cover_bypass", "magnet", "main_cover", "reversed_ct" if polyphase else "magnet"]
        )
        if kind == "cover_bypass":
            injections.append(
                Injection(meter, InjectionKind.TERMINAL_COVER, first, min(last, first + 1))
            )
            injections.append(
                Injection(
                    meter, InjectionKind.BYPASS, first + 1, last, float(rng.uniform(0.3, 0.6))
                )
            )
        elif kind == "magnet":
            injections.append(
                Injection(meter, InjectionKind.MAGNET, first, last, float(rng.uniform(0.5, 0.8)))
            )
        elif kind == "main_cover":
            injections.append(
                Injection(meter, InjectionKind.MAIN_COVER, first, min(last, first + 2))
            )
        else:
            injections.append(Injection(meter, InjectionKind.REVERSED_CT, first, last))
    return injections
