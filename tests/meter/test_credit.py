"""Prepaid credit: charging by rate, low credit, exhaustion, emergency credit, friendly
periods, debt recovery and the standing charge."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from meterstack.core import CommandRefusedError, InvalidInputError
from meterstack.meter import (
    ControlState,
    EventCode,
    FriendlyCalendar,
    FriendlyWindow,
    LogKind,
    Meter,
)

from .support import START, config, load, prepaid, run, two_rate_tou

HALF_HOUR = timedelta(minutes=30)


def test_credit_falls_by_energy_times_price() -> None:
    meter = Meter(config(prepaid=prepaid(initial_credit=Decimal("100"))), commissioned_at=START)
    run(meter, START, steps=20, step=HALF_HOUR, watts=1000.0)  # 10 kWh at 0.20
    assert meter.credit is not None
    assert meter.credit.credit == Decimal("98.00")
    assert meter.credit.total_charged == Decimal("2.00")


def test_each_rate_has_its_price() -> None:
    plan = prepaid(
        initial_credit=Decimal("100"),
        price_per_kwh={1: Decimal("0.10"), 2: Decimal("0.30")},
    )
    meter = Meter(config(tou=two_rate_tou(), prepaid=plan), commissioned_at=START)
    run(meter, START, steps=48, step=HALF_HOUR, watts=1000.0)
    # Monday: 8 kWh at night (0.10) and 16 kWh by day (0.30).
    assert meter.credit is not None
    assert meter.credit.credit == Decimal(100) - Decimal("0.80") - Decimal("4.80")


def test_prices_must_cover_every_rate() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"no price for rate\(s\) \[2\]"):
        config(tou=two_rate_tou(), prepaid=prepaid())


def test_low_credit_alarms_and_trips_once_until_acknowledged() -> None:
    meter = Meter(
        config(prepaid=prepaid(initial_credit=Decimal("3"), low_credit_trip=True)),
        commissioned_at=START,
    )
    at = run(meter, START, steps=10, step=HALF_HOUR, watts=1000.0)  # 1.00 spent: 2.00 left
    assert meter.relay.state == ControlState.CONNECTED
    at = run(meter, at, steps=1, step=HALF_HOUR, watts=1000.0)  # 1.90 left: below 2
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    assert [e.code for e in meter.event_logs[LogKind.STANDARD]] == [EventCode.CREDIT_LOW]
    assert [a.code for a in meter.drain_alarms()] == [
        EventCode.CREDIT_LOW,
        EventCode.LOCAL_DISCONNECTION,
    ]
    at = run(meter, at, steps=2, step=HALF_HOUR, watts=0.0)
    meter.acknowledge_low_credit(at)  # the customer inserts the card
    assert meter.relay.state == ControlState.CONNECTED
    run(meter, at, steps=4, step=HALF_HOUR, watts=1000.0)  # still low, no second trip
    assert meter.relay.state == ControlState.CONNECTED
    assert [e.code for e in meter.event_logs[LogKind.DISCONNECTOR]] == [
        EventCode.LOCAL_DISCONNECTION,
        EventCode.MANUAL_CONNECTION,
    ]


def test_exhausted_credit_disconnects_and_a_top_up_reconnects() -> None:
    meter = Meter(config(prepaid=prepaid(initial_credit=Decimal("1"))), commissioned_at=START)
    at = run(meter, START, steps=10, step=HALF_HOUR, watts=1000.0)
    assert meter.credit is not None
    assert meter.credit.credit == 0
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    assert meter.disconnect_causes == {"credit_exhausted"}
    disconnect = meter.event_logs[LogKind.DISCONNECTOR].entries()[-1]
    assert (disconnect.code, disconnect.detail, disconnect.at) == (
        EventCode.LOCAL_DISCONNECTION,
        "credit",
        at.timestamp(),
    )
    result = meter.top_up(Decimal("20"), at + timedelta(minutes=5), reference="vend-1")
    assert result.credit_after == Decimal("20")
    assert meter.relay.state == ControlState.CONNECTED  # mode 5 reconnects locally
    assert meter.event_logs[LogKind.TOKEN].entries()[-1].detail == "20 vend-1"


def test_in_mode_one_the_customer_presses_the_button_after_the_top_up() -> None:
    meter = Meter(
        config(relay_control_mode=1, prepaid=prepaid(initial_credit=Decimal("1"))),
        commissioned_at=START,
    )
    at = run(meter, START, steps=10, step=HALF_HOUR, watts=1000.0)
    with pytest.raises(CommandRefusedError, match="credit_exhausted"):
        meter.manual_reconnect(at + timedelta(minutes=1))
    meter.top_up(Decimal("5"), at + timedelta(minutes=2))
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    meter.manual_reconnect(at + timedelta(minutes=3))
    assert meter.relay.state == ControlState.CONNECTED


def test_use_beyond_the_credit_becomes_debt_and_is_recovered() -> None:
    plan = prepaid(initial_credit=Decimal("1"), debt_recovery_pct=Decimal("25"))
    meter = Meter(config(prepaid=plan), commissioned_at=START)
    # One 10-hour step of 1 kW costs 2.00 with 1.00 left: the other 1.00 is debt.
    meter.step(load(START + timedelta(hours=10), 1000.0))
    assert meter.credit is not None
    assert (meter.credit.credit, meter.credit.debt) == (Decimal(0), Decimal("1.00"))
    result = meter.top_up(Decimal("2"), START + timedelta(hours=11))
    assert result.debt_recovered == Decimal("0.50")
    assert (meter.credit.credit, meter.credit.debt) == (Decimal("1.50"), Decimal("0.50"))
    meter.top_up(Decimal("10"), START + timedelta(hours=12))
    assert (meter.credit.credit, meter.credit.debt) == (Decimal("11.00"), Decimal(0))


def test_emergency_credit_is_offered_when_low_and_repaid_from_the_top_up() -> None:
    plan = prepaid(initial_credit=Decimal("1"), emergency_credit=Decimal("3"))
    meter = Meter(config(prepaid=plan), commissioned_at=START)
    with pytest.raises(CommandRefusedError, match="below the low-credit threshold"):
        Meter(
            config(prepaid=prepaid(emergency_credit=Decimal(3))), commissioned_at=START
        ).activate_emergency_credit(START + timedelta(minutes=1))
    at = run(meter, START, steps=10, step=HALF_HOUR, watts=1000.0)
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    meter.activate_emergency_credit(at + timedelta(minutes=1))
    assert meter.relay.state == ControlState.CONNECTED
    assert meter.credit is not None
    at = run(meter, at + timedelta(minutes=1), steps=40, step=HALF_HOUR, watts=1000.0)
    assert meter.credit.credit == Decimal("-3")  # the floor, and no lower
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    result = meter.top_up(Decimal("10"), at + timedelta(minutes=1))
    assert result.emergency_repaid
    assert meter.credit.credit == Decimal("7")
    assert not meter.credit.emergency_active


FRIENDLY = FriendlyCalendar(daily=[FriendlyWindow(start="18:00", end="08:00")])


def test_no_disconnection_inside_a_friendly_window_then_at_its_end() -> None:
    plan = prepaid(initial_credit=Decimal("1"), friendly=FRIENDLY)
    start = START + timedelta(hours=16)  # 16:00
    meter = Meter(config(prepaid=plan), commissioned_at=start)
    # 1 kW: credit runs out at 21:00, inside the 18:00-08:00 window.
    at = run(meter, start, steps=28, step=HALF_HOUR, watts=1000.0)  # until 06:00
    assert meter.credit is not None
    assert meter.credit.exhausted
    assert meter.relay.state == ControlState.CONNECTED
    assert meter.credit.debt == Decimal("1.80")  # 21:00 -> 06:00 at 0.20/kWh
    run(meter, at, steps=6, step=HALF_HOUR, watts=1000.0)  # until 09:00
    disconnect = meter.event_logs[LogKind.DISCONNECTOR].entries()[-1]
    assert disconnect.code == EventCode.LOCAL_DISCONNECTION
    assert disconnect.at == (START + timedelta(days=1, hours=8)).timestamp()


def test_weekends_and_holidays_are_friendly() -> None:
    friendly = FriendlyCalendar(weekends=True, holidays=[date(2024, 1, 3)])
    plan = prepaid(initial_credit=Decimal("0.01"), friendly=friendly)
    saturday = START + timedelta(days=5)
    meter = Meter(config(prepaid=plan), commissioned_at=saturday)
    at = run(meter, saturday, steps=95, step=HALF_HOUR, watts=500.0)
    assert meter.relay.state == ControlState.CONNECTED  # all weekend, to Sunday 23:30
    run(meter, at, steps=1, step=HALF_HOUR, watts=500.0)
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION  # Monday 00:00
    wednesday = START + timedelta(days=2)
    meter = Meter(config(prepaid=plan), commissioned_at=wednesday)
    run(meter, wednesday, steps=47, step=HALF_HOUR, watts=500.0)
    assert meter.relay.state == ControlState.CONNECTED


def test_standing_charge_at_local_midnight() -> None:
    plan = prepaid(initial_credit=Decimal("10"), standing_charge_per_day=Decimal("0.45"))
    meter = Meter(config(prepaid=plan, timezone="Africa/Johannesburg"), commissioned_at=START)
    run(meter, START, steps=3 * 48, step=HALF_HOUR, watts=0.0)
    assert meter.credit is not None
    # Midnights in Johannesburg (UTC+2) at 22:00 UTC on the 1st, 2nd and 3rd.
    assert meter.credit.credit == Decimal("10") - 3 * Decimal("0.45")


def test_energy_mode_counts_kilowatt_hours() -> None:
    plan = prepaid(mode="energy", initial_credit=Decimal("5"), low_credit_threshold=Decimal(1))
    meter = Meter(config(prepaid=plan), commissioned_at=START)
    run(meter, START, steps=4, step=HALF_HOUR, watts=750.0)
    assert meter.credit is not None
    assert meter.credit.credit == Decimal("3.5")
    assert meter.inquiry().credit_unit == "kWh"


def test_top_up_input_checks() -> None:
    meter = Meter(config(prepaid=prepaid()), commissioned_at=START)
    for amount in (Decimal(0), Decimal(-5), Decimal("NaN")):
        with pytest.raises(InvalidInputError) as caught:
            meter.top_up(amount, START + timedelta(minutes=1))
        assert caught.value.field == "amount"
    with pytest.raises(InvalidInputError):
        meter.top_up(5.0, START + timedelta(minutes=1))  # type: ignore[arg-type]
    postpaid = Meter(config(), commissioned_at=START)
    with pytest.raises(CommandRefusedError, match="not a prepaid meter"):
        postpaid.top_up(Decimal(5), START + timedelta(minutes=1))


def test_customer_inquiry() -> None:
    plan = prepaid(initial_credit=Decimal("0"))
    meter = Meter(
        config(prepaid=plan, customer_name="A. Customer", customer_address="1 Grid Road"),
        commissioned_at=START,
    )
    meter.top_up(Decimal("10"), START)
    meter.top_up(Decimal("15"), START + timedelta(minutes=2))
    run(meter, START, steps=10, step=HALF_HOUR, watts=2000.0)
    inquiry = meter.inquiry()
    assert inquiry.total_purchased == Decimal("25")
    assert inquiry.purchase_count == 2
    assert inquiry.last_purchase_amount == Decimal("15")
    assert inquiry.last_purchase_at == START + timedelta(minutes=2)
    assert inquiry.cumulative_consumption_kwh == Decimal("10")
    assert inquiry.remaining_credit == Decimal("23.00")
    assert inquiry.debt == Decimal(0)
    assert (inquiry.customer_name, inquiry.customer_address) == ("A. Customer", "1 Grid Road")
    assert inquiry.meter_constant_imp_per_kwh == 1000
