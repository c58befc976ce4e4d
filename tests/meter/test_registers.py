"""Energy registers: whole Wh, four quadrants, per-rate registers, no energy lost to rounding."""

from datetime import timedelta

import pytest

from meterstack.meter import Meter, obis

from .support import START, config, load, run, two_rate_tou


def test_constant_load_fills_the_import_register() -> None:
    meter = Meter(config(), commissioned_at=START)
    run(meter, START, steps=20, step=timedelta(minutes=30), watts=1500.0)
    # 1.5 kW for 10 h.
    assert meter.registers.a_plus == 15_000
    assert meter.registers.a_minus == 0
    assert meter.register_values()[obis.ACTIVE_ENERGY_IMPORT] == 15_000


@pytest.mark.parametrize(
    ("watts", "var", "quadrant"),
    [(1000.0, 500.0, 0), (-1000.0, 500.0, 1), (-1000.0, -500.0, 2), (1000.0, -500.0, 3)],
)
def test_reactive_energy_goes_to_its_quadrant(watts: float, var: float, quadrant: int) -> None:
    meter = Meter(config(export_expected=True), commissioned_at=START)
    run(meter, START, steps=4, step=timedelta(minutes=30), watts=watts, var=var)
    registers = meter.registers
    expected = [0, 0, 0, 0]
    expected[quadrant] = 1000  # 500 var for 2 h
    assert registers.quadrant == expected
    assert registers.r_plus == expected[0] + expected[1]
    assert registers.r_minus == expected[2] + expected[3]
    if watts > 0:
        assert (registers.a_plus, registers.a_minus) == (2000, 0)
    else:
        assert (registers.a_plus, registers.a_minus) == (0, 2000)
    # Apparent energy: |S| = sqrt(1000^2 + 500^2) = 1118.03 VA for 2 h.
    assert registers.s_plus + registers.s_minus == 2236


def test_fractions_of_a_watt_hour_are_carried_not_lost() -> None:
    meter = Meter(config(), commissioned_at=START)
    # 1 W for one hour in 1-second steps: each step is 1/3600 Wh.
    run(meter, START, steps=7200, step=timedelta(seconds=1), watts=1.0)
    assert meter.registers.a_plus_precise_wh == pytest.approx(2.0, abs=1e-9)
    # Floating-point carry may leave the second whole Wh a hair short of booking.
    assert meter.registers.a_plus in (1, 2)
    meter.step(load(START + timedelta(hours=2, seconds=1), 1.0))
    assert meter.registers.a_plus == 2


def test_rates_follow_the_calendar_and_sum_to_the_total() -> None:
    # Monday 2024-01-01: rate 2 from 07:00 to 23:00 UTC (16 h), rate 1 for the other 8 h.
    for step in (timedelta(minutes=30), timedelta(minutes=7), timedelta(hours=5)):
        meter = Meter(config(tou=two_rate_tou()), commissioned_at=START)
        at = START
        while at < START + timedelta(days=1):
            at = min(at + step, START + timedelta(days=1))
            meter.step(load(at, 1000.0))
        registers = meter.registers
        assert registers.a_plus_rate[1:] == [8_000, 16_000], step
        assert sum(registers.a_plus_rate) == registers.a_plus


def test_rates_switch_at_local_time_across_daylight_saving() -> None:
    # London, Monday 2024-04-01 (BST, UTC+1): day rate 07:00-23:00 local = 06:00-22:00 UTC.
    start = START.replace(month=3, day=31, hour=23)  # 00:00 BST on the 1st
    meter = Meter(config(tou=two_rate_tou(), timezone="Europe/London"), commissioned_at=start)
    run(meter, start, steps=48, step=timedelta(minutes=30), watts=1000.0)
    assert meter.registers.a_plus_rate[1:] == [8_000, 16_000]


def test_weekends_and_special_days_use_their_day_profile() -> None:
    tou = two_rate_tou().model_copy(update={"special_days": {START.date(): "weekend"}})
    meter = Meter(config(tou=tou), commissioned_at=START)
    run(meter, START, steps=48, step=timedelta(minutes=30), watts=1000.0)  # the holiday
    assert meter.registers.a_plus_rate[1:] == [24_000, 0]
    run(meter, START + timedelta(days=1), steps=48, step=timedelta(minutes=30), watts=1000.0)
    assert meter.registers.a_plus_rate[1:] == [32_000, 16_000]


def test_calibration_error_scales_the_measuring_element() -> None:
    meter = Meter(config(calibration_error_pct=2.0), commissioned_at=START)
    run(meter, START, steps=2, step=timedelta(minutes=30), watts=1000.0)
    assert meter.registers.a_plus == 1020


def test_export_with_a_registered_generator_is_no_tamper() -> None:
    meter = Meter(config(export_expected=True), commissioned_at=START)
    meter.step(load(START + timedelta(minutes=30), -2000.0))
    assert meter.registers.a_minus == 1000
    assert all(len(log) == 0 for log in meter.event_logs.values())
