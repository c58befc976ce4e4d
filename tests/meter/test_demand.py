"""Maximum demand: block and sliding windows, billing reset."""

from datetime import timedelta

import pytest

from meterstack.meter import DemandConfig, Meter

from .support import START, config, load


def _feed(meter: Meter, minutes_and_watts: list[tuple[int, float]]) -> None:
    at = START
    for minutes, watts in minutes_and_watts:
        at += timedelta(minutes=minutes)
        meter.step(load(at, watts))


def test_block_demand_averages_each_period() -> None:
    meter = Meter(config(demand=DemandConfig(period_s=1800)), commissioned_at=START)
    # Period 1: 15 min at 1 kW then 15 min at 3 kW -> 2 kW. Period 2: 30 min at 2.5 kW.
    _feed(meter, [(15, 1000.0), (15, 3000.0), (30, 2500.0)])
    assert meter.demand.maximum_w == pytest.approx(2500.0)
    assert meter.demand.last_average_w == pytest.approx(2500.0)
    assert meter.demand.maximum_at == (START + timedelta(hours=1)).timestamp()


def test_a_step_across_the_period_boundary_is_split() -> None:
    meter = Meter(config(demand=DemandConfig(period_s=900)), commissioned_at=START)
    # One 20-minute measurement at 4 kW: the first 15-min period averages 4 kW.
    _feed(meter, [(20, 4000.0)])
    assert meter.demand.maximum_w == pytest.approx(4000.0)
    # The running period has 5 of its 15 minutes at 4 kW.
    assert meter.demand.current_average_w == pytest.approx(4000.0 * 5 / 15)


def test_sliding_demand_updates_every_subperiod() -> None:
    sliding = Meter(config(demand=DemandConfig(period_s=900, subperiods=3)), commissioned_at=START)
    block = Meter(config(demand=DemandConfig(period_s=900)), commissioned_at=START)
    # A 10-minute burst at 6 kW from minute 10 to 20 straddles two block periods.
    profile = [(10, 0.0), (10, 6000.0), (10, 0.0), (15, 0.0)]
    _feed(sliding, profile)
    _feed(block, profile)
    # Block periods see 5 minutes each: 2 kW. The sliding window 05-20 sees all 10: 4 kW.
    assert block.demand.maximum_w == pytest.approx(2000.0)
    assert sliding.demand.maximum_w == pytest.approx(4000.0)


def test_billing_reset_freezes_registers_and_restarts_the_maximum() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(meter, [(30, 4000.0), (30, 1000.0)])
    record = meter.billing_reset(START + timedelta(hours=1))
    assert record.maximum_demand_w == pytest.approx(4000.0)
    assert record.a_plus_wh == 2500
    assert meter.demand.maximum_w == 0.0
    assert list(meter.billing_history) == [record]
    _feed(meter, [(90, 0.0), (30, 500.0)])
    assert meter.demand.maximum_w == pytest.approx(500.0)


def test_automatic_monthly_billing_reset_at_local_midnight() -> None:
    meter = Meter(config(billing_reset_day=1, timezone="Europe/Paris"), commissioned_at=START)
    at = START
    for _ in range(40 * 24):
        at += timedelta(hours=1)
        meter.step(load(at, 1000.0))
    records = list(meter.billing_history)
    assert len(records) == 1
    # 1 February 00:00 in Paris (UTC+1) is 31 January 23:00 UTC.
    assert records[0].at == START.replace(day=31, hour=23).timestamp()
    assert records[0].a_plus_wh == (30 * 24 + 23) * 1000
