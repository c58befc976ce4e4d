"""The maximum-power limiter: trip after N seconds over; restore after a back-off or on request."""

from datetime import timedelta

import pytest

from meterstack.core import InvalidInputError
from meterstack.meter import ControlState, EventCode, LimiterConfig, LogKind, Meter

from .support import START, config, load

SECOND = timedelta(seconds=1)


def _limited(**overrides: object) -> Meter:
    values: dict[str, object] = {
        "threshold_w": 5000.0,
        "min_over_threshold_s": 30,
        "backoff_s": 120,
    }
    values.update(overrides)
    return Meter(config(limiter=LimiterConfig(**values)), commissioned_at=START)  # type: ignore[arg-type]


def _feed(meter: Meter, start_s: int, seconds: int, watts: float) -> None:
    for k in range(start_s + 1, start_s + seconds + 1):
        meter.step(load(START + k * SECOND, watts if meter.relay.output_state else 0.0))


def test_trips_only_after_the_minimum_time_over_the_threshold() -> None:
    meter = _limited()
    _feed(meter, 0, 20, 6000.0)  # 20 s over
    _feed(meter, 20, 5, 4000.0)  # dips under: the count restarts
    _feed(meter, 25, 29, 6000.0)  # 29 s over: not yet
    assert meter.relay.state == ControlState.CONNECTED
    _feed(meter, 54, 1, 6000.0)  # the 30th second
    assert meter.relay.state == ControlState.READY_FOR_RECONNECTION
    entries = meter.event_logs[LogKind.DISCONNECTOR].entries()
    assert [(e.code, e.detail) for e in entries] == [
        (EventCode.LIMITER_THRESHOLD_EXCEEDED, "6000 W > 5000 W"),
        (EventCode.LOCAL_DISCONNECTION, "limiter"),
    ]
    assert entries[0].at == (START + 55 * SECOND).timestamp()


def test_restores_automatically_after_the_back_off() -> None:
    meter = _limited()
    _feed(meter, 0, 30, 6000.0)
    assert not meter.relay.output_state
    _feed(meter, 30, 119, 6000.0)
    assert not meter.relay.output_state
    _feed(meter, 149, 1, 6000.0)
    assert meter.relay.output_state
    assert meter.event_logs[LogKind.DISCONNECTOR].entries()[-1].code == EventCode.LOCAL_CONNECTION


def test_without_auto_restore_the_customer_asks() -> None:
    meter = _limited(auto_restore=False)
    _feed(meter, 0, 30, 6000.0)
    _feed(meter, 30, 600, 0.0)
    assert not meter.relay.output_state
    meter.manual_reconnect(START + 631 * SECOND)
    assert meter.relay.output_state
    codes = [e.code for e in meter.event_logs[LogKind.DISCONNECTOR]]
    assert codes[-2:] == [EventCode.LIMITER_THRESHOLD_OK, EventCode.MANUAL_CONNECTION]


def test_threshold_change_is_logged_and_checked() -> None:
    meter = _limited()
    meter.set_limiter_threshold(7000.0, START + SECOND)
    assert meter.limiter is not None
    assert meter.limiter.threshold_w == 7000.0
    _feed(meter, 1, 60, 6000.0)
    assert meter.relay.output_state
    with pytest.raises(InvalidInputError):
        meter.set_limiter_threshold(-1.0, START + 62 * SECOND)
