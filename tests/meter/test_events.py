"""Event logs: one entry per transition, in the right log, with alarms where they matter."""

from dataclasses import replace
from datetime import timedelta

from meterstack.meter import EventCode, LogKind, Meter

from .support import START, config, load

STEP = timedelta(minutes=1)


def _codes(meter: Meter, kind: LogKind) -> list[int]:
    return [event.code for event in meter.event_logs[kind]]


def _feed(meter: Meter, measurements: list[dict[str, object]], phases: int = 1) -> None:
    at = START
    for values in measurements:
        at += STEP
        watts = float(values.pop("watts", 500.0))  # type: ignore[arg-type]
        meter.step(load(at, watts, phases=phases, **values))


def test_cover_open_is_one_entry_however_many_samples() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(
        meter,
        [{}] + [{"terminal_cover_open": True}] * 5 + [{}] * 3 + [{"main_cover_open": True}, {}],
    )
    assert _codes(meter, LogKind.FRAUD) == [
        EventCode.TERMINAL_COVER_REMOVED,
        EventCode.TERMINAL_COVER_CLOSED,
        EventCode.METER_COVER_REMOVED,
        EventCode.METER_COVER_CLOSED,
    ]
    alarms = [alarm.code for alarm in meter.drain_alarms()]
    assert alarms == [EventCode.TERMINAL_COVER_REMOVED, EventCode.METER_COVER_REMOVED]
    assert meter.drain_alarms() == []


def test_magnetic_field_reverse_current_and_missing_neutral() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(
        meter,
        [
            {"magnetic_field": True},
            {"magnetic_field": False},
            {"watts": -800.0},
            {"watts": -800.0},
            {"watts": 800.0},
        ],
    )
    # Current without voltage: the neutral has been cut (the meter runs on its backup).
    at = START + 6 * STEP
    missing = load(at, 0.0, voltage=0.0)
    meter.step(replace(missing, current_a=(12.0,)))
    meter.step(load(at + STEP, 800.0))
    assert _codes(meter, LogKind.FRAUD) == [
        EventCode.STRONG_DC_FIELD_DETECTED,
        EventCode.NO_STRONG_DC_FIELD,
        EventCode.CURRENT_REVERSAL,
        EventCode.CURRENT_REVERSAL_ENDED,
        EventCode.MISSING_NEUTRAL,
        EventCode.NEUTRAL_RESTORED,
    ]
    assert _codes(meter, LogKind.POWER_FAILURE) == []  # no power failure was recorded


def test_a_reversed_ct_on_a_generating_polyphase_meter() -> None:
    meter = Meter(config(phases=3, export_expected=True), commissioned_at=START)
    at = START + STEP
    reversed_l2 = load(at, 3000.0, phases=3)
    meter.step(replace(reversed_l2, active_power_w=(1000.0, -1000.0, 1000.0)))
    meter.step(load(at + STEP, -3000.0, phases=3))  # plain export: fine
    assert _codes(meter, LogKind.FRAUD) == [
        EventCode.CURRENT_REVERSAL,
        EventCode.CURRENT_REVERSAL_ENDED,
    ]


def test_voltage_events_use_hysteresis() -> None:
    meter = Meter(config(), commissioned_at=START)
    # Over at > 253 V; back to normal only below 248.4 V (2 % hysteresis).
    volts = [230, 254, 250, 252, 247, 230, 206, 205, 209, 212, 230]
    _feed(meter, [{"voltage": float(v)} for v in volts])
    assert [(e.code, e.detail) for e in meter.event_logs[LogKind.POWER_QUALITY]] == [
        (EventCode.OVER_VOLTAGE_L1, "254.0 V"),
        (EventCode.VOLTAGE_NORMAL_L1, "247.0 V"),
        (EventCode.UNDER_VOLTAGE_L1, "206.0 V"),
        (EventCode.VOLTAGE_NORMAL_L1, "212.0 V"),
    ]


def test_missing_phase_on_a_polyphase_meter() -> None:
    meter = Meter(config(phases=3), commissioned_at=START)
    at = START + STEP
    normal = load(at, 3000.0, phases=3)
    meter.step(replace(normal, voltage_v=(231.0, 40.0, 229.0)))
    meter.step(load(at + STEP, 3000.0, phases=3))
    assert _codes(meter, LogKind.POWER_QUALITY) == [
        EventCode.MISSING_VOLTAGE_L2,
        EventCode.VOLTAGE_NORMAL_L2,
    ]
    assert meter.powered


def test_power_failure_sends_a_last_gasp_and_logs_the_outage() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(meter, [{}, {"voltage": 0.0, "watts": 0.0}, {"voltage": 0.0, "watts": 0.0}, {}])
    events = meter.event_logs[LogKind.POWER_FAILURE].entries()
    assert [e.code for e in events] == [EventCode.POWER_DOWN, EventCode.POWER_UP]
    assert events[0].at == (START + 2 * STEP).timestamp()
    assert events[1].detail == "outage 120 s"
    assert [a.code for a in meter.drain_alarms()] == [EventCode.POWER_DOWN, EventCode.POWER_UP]


def test_overload_and_current_with_relay_open() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(meter, [{"watts": 25_000.0}, {"watts": 25_000.0}, {"watts": 1000.0}])
    meter.remote_disconnect(START + 3 * STEP)
    meter.step(load(START + 4 * STEP, 1000.0))  # someone bypassed the open relay
    assert _codes(meter, LogKind.POWER_QUALITY) == [EventCode.OVERLOAD, EventCode.OVERLOAD_ENDED]
    assert _codes(meter, LogKind.FRAUD) == [EventCode.CURRENT_WITH_RELAY_OPEN]


def test_clock_set_logs_old_and_new_time() -> None:
    meter = Meter(config(), commissioned_at=START)
    meter.step(load(START + STEP, 100.0))
    meter.set_clock(START + STEP, START - timedelta(minutes=5))
    codes = _codes(meter, LogKind.STANDARD)
    assert codes == [EventCode.CLOCK_ADJUSTED_OLD_TIME, EventCode.CLOCK_ADJUSTED_NEW_TIME]
    # After setting the clock back, earlier timestamps are valid again.
    meter.step(load(START, 100.0))
    assert meter.now == START


def test_event_logs_are_ring_buffers() -> None:
    meter = Meter(config(event_log_capacity=3), commissioned_at=START)
    _feed(meter, [{"magnetic_field": bool(k % 2 == 0)} for k in range(10)])
    fraud = meter.event_logs[LogKind.FRAUD]
    assert len(fraud) == 3
    assert [e.seq for e in fraud] == [8, 9, 10]


def test_requeued_alarms_join_the_queue_in_time_order() -> None:
    meter = Meter(config(), commissioned_at=START)
    _feed(meter, [{}, {"terminal_cover_open": True}, {}])
    drained = meter.drain_alarms()
    assert [a.code for a in drained] == [EventCode.TERMINAL_COVER_REMOVED]
    at = START + 3 * STEP
    for values in ({}, {"main_cover_open": True}, {}):
        at += STEP
        meter.step(load(at, 500.0, **values))
    meter.requeue_alarms(drained)
    assert meter.pending_alarms == 2
    again = meter.drain_alarms()
    assert [a.code for a in again] == [
        EventCode.TERMINAL_COVER_REMOVED,
        EventCode.METER_COVER_REMOVED,
    ]
    assert again[0] == drained[0]
