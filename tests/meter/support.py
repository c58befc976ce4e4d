"""Helpers for the meter tests: configurations and measurements with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from meterstack.meter import (
    Measurement,
    Meter,
    MeterConfig,
    PrepaidConfig,
    RateSwitch,
    Season,
    TouCalendarConfig,
)

#: A Monday.
START = datetime(2024, 1, 1, tzinfo=UTC)


def load(
    at: datetime,
    watts: float,
    *,
    phases: int = 1,
    voltage: float = 230.0,
    var: float = 0.0,
    **inputs: Any,
) -> Measurement:
    """A measurement of ``watts`` (and ``var``) spread evenly over ``phases`` phases."""
    per_phase_w = watts / phases
    per_phase_var = var / phases
    apparent = (per_phase_w**2 + per_phase_var**2) ** 0.5
    current = apparent / voltage if voltage > 0 else 0.0
    return Measurement(
        timestamp=at,
        voltage_v=(voltage,) * phases,
        current_a=(current,) * phases,
        active_power_w=(per_phase_w,) * phases,
        reactive_power_var=(per_phase_var,) * phases,
        frequency_hz=50.0 if voltage > 0 else 0.0,
        **inputs,
    )


def run(
    meter: Meter, start: datetime, steps: int, step: timedelta, watts: float, **kw: Any
) -> datetime:
    """Step ``meter`` ``steps`` times at ``watts``; return the time of the last step."""
    at = start
    for _ in range(steps):
        at += step
        meter.step(load(at, watts, phases=meter.config.phases, **kw))
    return at


def two_rate_tou() -> TouCalendarConfig:
    """Rate 2 (day) 07:00-23:00 on weekdays, rate 1 (night) otherwise and at weekends."""
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
    )


def prepaid(**overrides: Any) -> PrepaidConfig:
    values: dict[str, Any] = {
        "price_per_kwh": {1: Decimal("0.20")},
        "initial_credit": Decimal("10"),
        "low_credit_threshold": Decimal("2"),
        "low_credit_trip": False,
    }
    values.update(overrides)
    return PrepaidConfig(**values)


def config(**overrides: Any) -> MeterConfig:
    values: dict[str, Any] = {"serial": "TEST0001"}
    values.update(overrides)
    return MeterConfig(**values)
