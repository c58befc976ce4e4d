"""The supply relay: the DLMS disconnect control state machine (interface class 70).

States and transitions follow IEC 62056-6-2 (the Blue Book), class 70 "Disconnect
control". The control mode decides which triggers may move the relay:

==== ======================================= ===========================================
mode disconnection                           reconnection
==== ======================================= ===========================================
0    none: always connected                  none
1    remote (b, c), manual (f), local (g)    remote (d), manual (e)
2    remote (b, c), manual (f), local (g)    remote (a), manual (e)
3    remote (b, c), local (g)                remote (d), manual (e)
4    remote (b, c), local (g)                remote (a), manual (e)
5    remote (b, c), manual (f), local (g)    remote (d), manual (e), local (h)
6    remote (b, c), local (g)                remote (d), manual (e), local (h)
==== ======================================= ===========================================

Transitions: a remote_reconnect disconnected->connected; b remote_disconnect
connected->disconnected; c remote_disconnect ready->disconnected; d remote_reconnect
disconnected->ready_for_reconnection; e manual_reconnect ready->connected; f
manual_disconnect connected->ready; g local_disconnect connected->ready; h local_reconnect
ready->connected.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from meterstack.core.errors import CommandRefusedError, InvalidInputError


class ControlState(IntEnum):
    """Attribute 3 of class 70."""

    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


class Trigger(StrEnum):
    """What asks the relay to move."""

    REMOTE_DISCONNECT = "remote_disconnect"
    REMOTE_RECONNECT = "remote_reconnect"
    MANUAL_DISCONNECT = "manual_disconnect"
    MANUAL_RECONNECT = "manual_reconnect"
    LOCAL_DISCONNECT = "local_disconnect"
    LOCAL_RECONNECT = "local_reconnect"


class DisconnectReason(StrEnum):
    """Why the relay moved, recorded with every change."""

    CREDIT = "credit"
    LIMITER = "limiter"
    REMOTE = "remote"
    LOCAL = "local"
    TAMPER = "tamper"


_D, _C, _R = ControlState.DISCONNECTED, ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION

# Transition letter -> (trigger, from, to).
TRANSITIONS: dict[str, tuple[Trigger, ControlState, ControlState]] = {
    "a": (Trigger.REMOTE_RECONNECT, _D, _C),
    "b": (Trigger.REMOTE_DISCONNECT, _C, _D),
    "c": (Trigger.REMOTE_DISCONNECT, _R, _D),
    "d": (Trigger.REMOTE_RECONNECT, _D, _R),
    "e": (Trigger.MANUAL_RECONNECT, _R, _C),
    "f": (Trigger.MANUAL_DISCONNECT, _C, _R),
    "g": (Trigger.LOCAL_DISCONNECT, _C, _R),
    "h": (Trigger.LOCAL_RECONNECT, _R, _C),
}

# Control mode -> the transitions it enables.
MODE_TRANSITIONS: dict[int, frozenset[str]] = {
    0: frozenset(),
    1: frozenset("bcfgde"),
    2: frozenset("bcfgae"),
    3: frozenset("bcgde"),
    4: frozenset("bcgae"),
    5: frozenset("bcfgdeh"),
    6: frozenset("bcgdeh"),
}


class DisconnectControl:
    """The relay and its control state, moved only through permitted transitions."""

    def __init__(self, control_mode: int = 5, state: ControlState = ControlState.CONNECTED) -> None:
        if control_mode not in MODE_TRANSITIONS:
            raise InvalidInputError("control_mode", control_mode, "DLMS control modes are 0-6")
        self.control_mode = control_mode
        self.state = ControlState.CONNECTED if control_mode == 0 else state

    @property
    def output_state(self) -> bool:
        """Attribute 2 of class 70: ``True`` when the supply is connected."""
        return self.state == ControlState.CONNECTED

    def transition_for(self, trigger: Trigger) -> str | None:
        """The letter of the transition ``trigger`` would take now, or ``None``.

        ``None`` means the trigger has nothing to do in the current state (for instance a
        remote disconnect of a relay already disconnected).
        """
        for letter in sorted(MODE_TRANSITIONS[self.control_mode]):
            name, source, _ = TRANSITIONS[letter]
            if name == trigger and source == self.state:
                return letter
        return None

    def allows(self, trigger: Trigger) -> bool:
        return self.transition_for(trigger) is not None

    def apply(self, trigger: Trigger) -> str | None:
        """Move the relay; return the transition letter, or ``None`` if already there.

        Raises
        ------
        CommandRefusedError
            The control mode does not enable ``trigger``, or the trigger is not defined from
            the current state (a customer cannot reconnect a remotely disconnected supply).
        """
        letter = self.transition_for(trigger)
        if letter is not None:
            self.state = TRANSITIONS[letter][2]
            return letter
        if self._already_there(trigger):
            return None
        enabled = [
            letter
            for letter in MODE_TRANSITIONS[self.control_mode]
            if TRANSITIONS[letter][0] == trigger
        ]
        if not enabled:
            raise CommandRefusedError(
                trigger.value, f"control mode {self.control_mode} does not allow it"
            )
        raise CommandRefusedError(
            trigger.value, f"not possible from state {self.state.name.lower()}"
        )

    def _already_there(self, trigger: Trigger) -> bool:
        if trigger == Trigger.REMOTE_DISCONNECT:
            return self.state == ControlState.DISCONNECTED
        if trigger in (Trigger.MANUAL_DISCONNECT, Trigger.LOCAL_DISCONNECT):
            return self.state != ControlState.CONNECTED
        if trigger == Trigger.REMOTE_RECONNECT:
            # Ready for reconnection already: the customer's button completes it.
            return self.state != ControlState.DISCONNECTED
        return self.state == ControlState.CONNECTED
