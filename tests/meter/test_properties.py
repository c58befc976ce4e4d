"""Invariants of the device model, checked over random histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from meterstack.core import CommandRefusedError
from meterstack.meter import (
    ControlState,
    EventCode,
    FriendlyCalendar,
    FriendlyWindow,
    LogKind,
    MemoryStore,
    Meter,
    MeterConfig,
)

from .support import START, config, load, prepaid, two_rate_tou

# Mostly a real import (whole watts up to 9 kW for up to 3 h, against top-ups of at most 4,
# so credit does run out and debt does accrue), sometimes any float in range, export
# included. Without this weighting most histories never reach the states the invariants
# are about (credit exhausted, debt, emergency credit, relay open).
watts = st.one_of(
    st.integers(min_value=0, max_value=9000).map(float),
    st.integers(min_value=0, max_value=9000).map(float),
    st.floats(min_value=-3000, max_value=9000, allow_nan=False),
)
steps = st.tuples(
    st.just("step"),
    st.integers(min_value=1, max_value=10800),
    watts,
    st.floats(min_value=-2000, max_value=2000, allow_nan=False),
)
actions = st.one_of(
    st.none(),
    st.tuples(st.just("top_up"), st.decimals(min_value="0.1", max_value="4", places=2)),
    st.tuples(st.just("emergency")),
    st.tuples(st.just("acknowledge")),
)
# Every step may be followed by a customer action; a flat list of operations.
operations = st.lists(st.tuples(steps, actions), min_size=4, max_size=40).map(
    lambda pairs: [op for pair in pairs for op in pair if op is not None]
)


@st.composite
def prepaid_configs(draw: st.DrawFn) -> MeterConfig:
    windows = []
    if draw(st.booleans()):
        start, end = draw(
            st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda p: p[0] != p[1])
        )
        windows.append(FriendlyWindow(start=f"{start:02d}:00", end=f"{end:02d}:30"))
    friendly = FriendlyCalendar(daily=windows, weekends=draw(st.booleans()))
    plan = prepaid(
        price_per_kwh={1: Decimal("0.12"), 2: Decimal("0.31")},
        initial_credit=draw(st.decimals(min_value="0", max_value="5", places=2)),
        emergency_credit=draw(st.sampled_from([Decimal(0), Decimal("1.5"), Decimal(4)])),
        low_credit_threshold=Decimal(2),
        low_credit_trip=False,
        friendly=friendly,
        debt_recovery_pct=draw(st.sampled_from([Decimal(0), Decimal(20)])),
        standing_charge_per_day=draw(st.sampled_from([Decimal(0), Decimal("0.6")])),
    )
    return config(
        tou=two_rate_tou(),
        prepaid=plan,
        timezone=draw(st.sampled_from(["UTC", "Europe/London", "America/New_York"])),
        capture_period_s=draw(st.sampled_from([900, 1800, 3600])),
        export_expected=True,
    )


def _apply(meter: Meter, operation: tuple[Any, ...], at: datetime) -> datetime:
    kind = operation[0]
    if kind == "step":
        at += timedelta(seconds=operation[1])
        watts = operation[2] if meter.relay.output_state else 0.0
        meter.step(load(at, watts, var=operation[3]))
        return at
    before = meter.image()
    try:
        if kind == "top_up":
            meter.top_up(operation[1], at)
        elif kind == "emergency":
            meter.activate_emergency_credit(at)
        else:
            meter.acknowledge_low_credit(at)
    except CommandRefusedError:
        assert meter.image() == before  # a refused command changes nothing
    return at


def _friendly(config: MeterConfig, epoch: float) -> bool:
    """Friendly-period test written from the configuration, independently of the meter."""
    assert config.prepaid is not None
    friendly = config.prepaid.friendly
    local = datetime.fromtimestamp(epoch, ZoneInfo(config.timezone))
    if friendly.weekends and local.weekday() >= 5:
        return True
    minute = local.hour * 60 + local.minute + local.second / 60
    for window in friendly.daily:
        start = int(window.start[:2]) * 60 + int(window.start[3:])
        end = int(window.end[:2]) * 60 + int(window.end[3:])
        if (start <= minute < end) if start < end else (minute >= start or minute < end):
            return True
    return False


@given(prepaid_configs(), operations)
def test_credit_and_relay_invariants(config_: MeterConfig, history: list[tuple[Any, ...]]) -> None:
    meter = Meter(config_, commissioned_at=START)
    assert meter.credit is not None
    assert config_.prepaid is not None
    at = START
    for operation in history:
        at = _apply(meter, operation, at)
        credit = meter.credit
        # Credit never falls below minus the emergency credit, nor below zero unless
        # emergency credit is in use: what a step overshoots becomes debt.
        assert credit.credit >= -config_.prepaid.emergency_credit
        if not credit.emergency_active:
            assert credit.credit >= 0
        # The relay is open exactly when credit is exhausted outside a friendly period.
        friendly = _friendly(config_, meter.now.timestamp())
        assert meter.friendly_now == friendly
        assert (meter.relay.state != ControlState.CONNECTED) == (credit.exhausted and not friendly)
    for event in meter.event_logs[LogKind.DISCONNECTOR]:
        if event.code == EventCode.LOCAL_DISCONNECTION:
            assert event.detail == "credit"
            assert not _friendly(config_, event.at)  # never inside a friendly period


@given(
    st.sampled_from([900, 1800, 3600]),
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=7200),
            st.floats(min_value=-5000, max_value=12000, allow_nan=False),
            st.floats(min_value=-3000, max_value=3000, allow_nan=False),
        ),
        min_size=1,
        max_size=80,
    ),
)
def test_load_profile_sums_to_the_register_delta(
    period_s: int, history: list[tuple[int, float, float]]
) -> None:
    meter = Meter(config(capture_period_s=period_s, export_expected=True), commissioned_at=START)
    at = START
    for seconds, watts, var in history:
        at += timedelta(seconds=seconds)
        meter.step(load(at, watts, var=var))
    # End on a capture boundary so the last interval is in the profile.
    boundary = START + timedelta(seconds=-(-(at - START).total_seconds() // period_s) * period_s)
    meter.step(load(boundary + timedelta(seconds=period_s), 0.0))
    entries = meter.load_profile.entries()
    registers = meter.registers
    assert sum(e.a_plus_wh for e in entries) == registers.a_plus
    assert sum(e.a_minus_wh for e in entries) == registers.a_minus
    assert sum(e.r_plus_varh for e in entries) == registers.r_plus
    assert sum(e.r_minus_varh for e in entries) == registers.r_minus
    assert all(e.interval_end % period_s == 0 for e in entries)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


@given(prepaid_configs(), operations, operations)
def test_state_round_trips_through_the_store(
    config_: MeterConfig, history: list[tuple[Any, ...]], future: list[tuple[Any, ...]]
) -> None:
    store = MemoryStore()
    meter = Meter(config_, commissioned_at=START, store=store)
    at = START
    for operation in history:
        at = _apply(meter, operation, at)
    meter.checkpoint()
    restored = Meter.restore(config_, store)
    assert restored is not None
    assert restored.image() == meter.image()
    twin_at = at
    for operation in future:
        at = _apply(meter, operation, at)
        twin_at = _apply(restored, operation, twin_at)
    assert restored.image() == meter.image()
    assert restored.drain_alarms() == meter.drain_alarms()


def test_the_examples_start_on_a_monday() -> None:
    assert datetime(2024, 1, 1, tzinfo=UTC) == START
    assert START.weekday() == 0
