"""The load profile: interval-ending labels, channels, status word, ring buffer."""

from datetime import timedelta

import pytest

from meterstack.meter import Meter, ProfileStatus

from .support import START, config, load, run


@pytest.mark.parametrize("period_s", [900, 1800, 3600])
def test_entries_are_labelled_by_interval_end(period_s: int) -> None:
    meter = Meter(config(capture_period_s=period_s), commissioned_at=START)
    run(meter, START, steps=12, step=timedelta(minutes=10), watts=1200.0)
    ends = [entry.interval_end for entry in meter.load_profile]
    expected = [START.timestamp() + period_s * k for k in range(1, 7200 // period_s + 1)]
    assert ends == expected
    per_interval = 1200 * period_s // 3600
    assert [entry.a_plus_wh for entry in meter.load_profile] == [per_interval] * len(expected)
    assert all(entry.demand_w == pytest.approx(1200.0) for entry in meter.load_profile)


def test_channels_average_voltage_and_reactive() -> None:
    meter = Meter(config(export_expected=True), commissioned_at=START)
    meter.step(load(START + timedelta(minutes=10), 600.0, voltage=220.0, var=300.0))
    meter.step(load(START + timedelta(minutes=30), -600.0, voltage=240.0, var=-300.0))
    (entry,) = meter.load_profile.entries()
    assert entry.a_plus_wh == 100  # 600 W x 10 min
    assert entry.a_minus_wh == 200  # 600 W x 20 min
    assert entry.r_plus_varh == 50
    assert entry.r_minus_varh == 100
    # Time-weighted: (220 x 10 + 240 x 20) / 30.
    assert entry.average_voltage_v == pytest.approx((220 * 10 + 240 * 20) / 30, abs=0.01)


def test_status_flags_power_down_tamper_and_relay() -> None:
    meter = Meter(config(), commissioned_at=START)
    step = timedelta(minutes=30)
    meter.step(load(START + step, 1000.0))  # interval 1: clean
    meter.step(load(START + 2 * step, 0.0, voltage=0.0))  # interval 2: the supply fails
    meter.step(load(START + 3 * step, 0.0, voltage=0.0))  # interval 3: still off
    meter.step(load(START + 4 * step, 1000.0))  # interval 4: back (power up at its end)
    meter.step(load(START + 5 * step, 1000.0, terminal_cover_open=True))  # interval 5
    meter.remote_disconnect(START + 5 * step)
    meter.step(load(START + 6 * step, 0.0))  # interval 6: relay open
    statuses = [entry.status for entry in meter.load_profile]
    assert statuses[0] == 0
    assert statuses[1] & ProfileStatus.POWER_DOWN
    assert statuses[2] & ProfileStatus.POWER_DOWN
    assert statuses[3] & ProfileStatus.POWER_DOWN
    assert statuses[4] & ProfileStatus.TAMPER
    assert not statuses[4] & ProfileStatus.POWER_DOWN
    assert statuses[5] & ProfileStatus.RELAY_OPEN
    # The measurement that finds the supply back carries the energy since it returned.
    assert [entry.a_plus_wh for entry in meter.load_profile] == [500, 0, 0, 500, 500, 0]


def test_clock_adjustment_is_flagged() -> None:
    meter = Meter(config(), commissioned_at=START)
    meter.step(load(START + timedelta(minutes=20), 1000.0))
    meter.set_clock(START + timedelta(minutes=20), START + timedelta(minutes=25))
    meter.step(load(START + timedelta(minutes=30), 1000.0))
    (entry,) = meter.load_profile.entries()
    assert entry.status & ProfileStatus.CLOCK_ADJUSTED


def test_the_ring_buffer_keeps_capacity_days() -> None:
    meter = Meter(config(profile_capacity_days=1), commissioned_at=START)
    run(meter, START, steps=72, step=timedelta(minutes=30), watts=100.0)
    entries = meter.load_profile.entries()
    assert len(entries) == 48
    assert entries[0].seq == 25
    assert entries[-1].seq == 72
    assert meter.load_profile.since(70) == entries[-2:]


def test_selective_access_by_date_range() -> None:
    meter = Meter(config(), commissioned_at=START)
    run(meter, START, steps=8, step=timedelta(minutes=30), watts=100.0)
    window = meter.load_profile.between(
        (START + timedelta(hours=1)).timestamp(), (START + timedelta(hours=2)).timestamp()
    )
    assert [e.interval_end for e in window] == [
        (START + timedelta(minutes=90)).timestamp(),
        (START + timedelta(hours=2)).timestamp(),
    ]
