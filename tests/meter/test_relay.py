"""The DLMS disconnect control (class 70): every control mode, every trigger, every state."""

from datetime import timedelta

import pytest

from meterstack.core import CommandRefusedError
from meterstack.meter import ControlState, EventCode, LogKind, Meter
from meterstack.meter.relay import DisconnectControl, Trigger

from .support import START, config

D, C, R = ControlState.DISCONNECTED, ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION

# IEC 62056-6-2 class 70, written out per mode as (trigger, from) -> to.
REMOTE_DISCONNECT = {(Trigger.REMOTE_DISCONNECT, C): D, (Trigger.REMOTE_DISCONNECT, R): D}
LOCAL_DISCONNECT = {(Trigger.LOCAL_DISCONNECT, C): R}
MANUAL_DISCONNECT = {(Trigger.MANUAL_DISCONNECT, C): R}
MANUAL_RECONNECT = {(Trigger.MANUAL_RECONNECT, R): C}
REMOTE_RECONNECT_DIRECT = {(Trigger.REMOTE_RECONNECT, D): C}
REMOTE_RECONNECT_ARMED = {(Trigger.REMOTE_RECONNECT, D): R}
LOCAL_RECONNECT = {(Trigger.LOCAL_RECONNECT, R): C}
MODES = {
    1: REMOTE_DISCONNECT
    | MANUAL_DISCONNECT
    | LOCAL_DISCONNECT
    | REMOTE_RECONNECT_ARMED
    | MANUAL_RECONNECT,
    2: REMOTE_DISCONNECT
    | MANUAL_DISCONNECT
    | LOCAL_DISCONNECT
    | REMOTE_RECONNECT_DIRECT
    | MANUAL_RECONNECT,
    3: REMOTE_DISCONNECT | LOCAL_DISCONNECT | REMOTE_RECONNECT_ARMED | MANUAL_RECONNECT,
    4: REMOTE_DISCONNECT | LOCAL_DISCONNECT | REMOTE_RECONNECT_DIRECT | MANUAL_RECONNECT,
    5: REMOTE_DISCONNECT
    | MANUAL_DISCONNECT
    | LOCAL_DISCONNECT
    | REMOTE_RECONNECT_ARMED
    | MANUAL_RECONNECT
    | LOCAL_RECONNECT,
    6: REMOTE_DISCONNECT
    | LOCAL_DISCONNECT
    | REMOTE_RECONNECT_ARMED
    | MANUAL_RECONNECT
    | LOCAL_RECONNECT,
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("state", [D, C, R])
def test_transition_table(mode: int, trigger: Trigger, state: ControlState) -> None:
    relay = DisconnectControl(mode, state)
    expected = MODES[mode].get((trigger, state))
    if expected is not None:
        relay.apply(trigger)
        assert relay.state == expected
        assert relay.output_state == (expected == C)
        return
    # Not a transition: either there is nothing to do, or it is refused.
    nothing_to_do = {
        Trigger.REMOTE_DISCONNECT: state == D,
        Trigger.MANUAL_DISCONNECT: state != C,
        Trigger.LOCAL_DISCONNECT: state != C,
        Trigger.REMOTE_RECONNECT: state != D,
        Trigger.MANUAL_RECONNECT: state == C,
        Trigger.LOCAL_RECONNECT: state == C,
    }[trigger]
    if nothing_to_do:
        assert relay.apply(trigger) is None
        assert relay.state == state
    else:
        with pytest.raises(CommandRefusedError) as caught:
            relay.apply(trigger)
        assert caught.value.command == trigger.value
        assert relay.state == state


def test_mode_zero_is_always_connected() -> None:
    relay = DisconnectControl(0, D)
    assert relay.state == C
    with pytest.raises(CommandRefusedError, match="control mode 0"):
        relay.apply(Trigger.REMOTE_DISCONNECT)


def test_remote_disconnect_cannot_be_overridden_by_the_customer() -> None:
    meter = Meter(config(relay_control_mode=1), commissioned_at=START)
    meter.remote_disconnect(START + timedelta(minutes=1))
    with pytest.raises(CommandRefusedError, match="head-end"):
        meter.manual_reconnect(START + timedelta(minutes=2))
    meter.remote_reconnect(START + timedelta(minutes=3))
    assert meter.relay.state == R  # mode 1: armed, the customer completes it
    meter.manual_reconnect(START + timedelta(minutes=4))
    assert meter.relay.state == C
    log = meter.event_logs[LogKind.DISCONNECTOR].entries()
    assert [(e.code, e.detail) for e in log] == [
        (EventCode.REMOTE_DISCONNECTION, "remote"),
        (EventCode.REMOTE_CONNECTION, "remote"),
        (EventCode.MANUAL_CONNECTION, "local"),
    ]


def test_mode_two_reconnects_remotely_at_once() -> None:
    meter = Meter(config(relay_control_mode=2), commissioned_at=START)
    meter.remote_disconnect(START + timedelta(minutes=1))
    meter.remote_reconnect(START + timedelta(minutes=2))
    assert meter.relay.state == C


def test_manual_disconnect_only_where_the_mode_allows_it() -> None:
    meter = Meter(config(relay_control_mode=3), commissioned_at=START)
    with pytest.raises(CommandRefusedError, match="control mode 3"):
        meter.manual_disconnect(START + timedelta(minutes=1))
    meter = Meter(config(relay_control_mode=5), commissioned_at=START)
    meter.manual_disconnect(START + timedelta(minutes=1))
    assert meter.relay.state == R
    assert meter.event_logs[LogKind.DISCONNECTOR].entries()[0].detail == "local"
