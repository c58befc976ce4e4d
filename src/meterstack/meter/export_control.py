"""Export control for no-export zones: keep the site's export under a limit by throttling
the solar inverter, and disconnect it when throttling cannot clear the export in time
(seed 000's "inverter power throttle").

The controller is pure: every call carries the time, the latest meter reading (net active
power at the point of connection and the time it was measured) and, when the inverter
reports it, the inverter's output. It returns the generation limit to send and whether the
inverter may stay connected.

Why a throttle alone is not enough
----------------------------------
A real inverter follows a new limit as a first-order lag (time constant ``tau`` of 1-2 s)
after a command latency (0.2-0.5 s). Cut to zero from ``P0`` while the load falls to
``L``, its output stays above the load for ``tau * ln(P0 / L)``: 5.4 s for 4.4 kW over a
300 W load with ``tau`` = 2 s, before the time to notice the export and the latency. No
throttle law can beat the converter's own dynamics, so the scheme has two stages, as
ENA G100 allows [1]_: throttle hard, and disconnect the generation (SunSpec ``Conn`` = 0,
the output contactor) if the export is still above the limit ``trip_after_s`` after the
first reading that showed it.

Control law, at every tick (period ``period_s``, 1 s or less):

    G(t_r)   = the inverter's output when the reading was measured (the controller keeps
               the outputs it was told; the reading is older than the output)
    L_site   = P_net(t_r) + G(t_r)                       (the load, feed-forward) [W]
    L_safe   = clamp(L_site + P_export_limit - P_margin, 0, P_rated)      [W]
    export above the limit (-P_net > P_export_limit):
        L = 0                              (cut hard: the lag decays fastest towards 0)
        disconnect if t - t_first_over >= trip_after_s
    otherwise:
        L = L_safe                         if L_safe < L_previous (reduce at once)
        L = min(max(L_previous, G_now) + R dt, L_safe)   (hold where the output is, then
                                           rise at R [W/s]; never above L_safe)

A reading older than ``stale_after_s`` (2 s) or none at all is a lost measurement: the
controller fails safe (limit 0 and disconnect). After a trip the inverter stays off for
``reconnect_after_s``; it is reconnected, with the limit at ``L_safe``, once a fresh
reading shows no export above the limit. Every command also arms the inverter's revert
timer, so an inverter that stops hearing from the controller falls back to its safe
default on its own. Each change of state is reported as a meter event (codes 246, 247,
250-255).

Time budget (checked when the configuration is built):

    reading_period_s + trip_after_s + period_s + command_latency_s <= clear_within_s

The export can start up to one reading period before the first reading that shows it;
the disconnection is decided at the next tick after ``trip_after_s`` and acts after the
command latency (a contactor opens in tens of milliseconds).

References
----------
.. [1] Energy Networks Association, Engineering Recommendation G100 Issue 2 (2022),
   "Technical Guidance for Customer Export Limiting Schemes": export above the agreed
   limit must be brought back within 5 s; loss of the measurement must fail safe.
.. [2] SunSpec Alliance, Inverter Controls model 123 (Conn, WMaxLimPct,
   WMaxLimPct_RvrtTms, WMaxLimPct_RmpTms) and DER AC Controls model 704 (WRmp: a ramp
   for increases of active power only).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from meterstack.core.errors import InvalidInputError
from meterstack.meter.events import EventCode


class ExportState(StrEnum):
    NORMAL = "normal"
    CURTAILING = "curtailing"
    TRIPPED = "tripped"
    FAIL_SAFE = "fail_safe"


@dataclass(frozen=True, slots=True)
class ExportControlConfig:
    """Settings of the export limiting scheme.

    Parameters
    ----------
    rated_power_w : float
        The inverter's maximum output (WMax). [W]
    export_limit_w : float
        The agreed export limit; 0 in a no-export zone. [W]
    margin_w : float
        How far below the limit the controller aims. [W]
    ramp_up_w_per_s : float
        The slow rise of the generation limit. [W/s]
    stale_after_s : float
        A reading older than this means the measurement is lost (fail safe). [s]
    revert_timeout_s : float
        The inverter's watchdog: it reverts to its safe default this long after the last
        command. [s]
    period_s : float
        The control period, 1 s or faster. [s]
    clear_within_s : float
        The longest export above the limit allowed (G100: 5 s). [s]
    reading_period_s : float
        The longest interval between two meter readings the scheme is built for. [s]
    command_latency_s : float
        The longest time the inverter takes to act on a command. [s]
    trip_after_s : float
        Export above the limit this long after the first reading that showed it
        disconnects the generation. [s]
    reconnect_after_s : float
        How long a tripped inverter stays disconnected. [s]
    """

    rated_power_w: float
    export_limit_w: float = 0.0
    margin_w: float = 100.0
    ramp_up_w_per_s: float = 250.0
    stale_after_s: float = 2.0
    revert_timeout_s: float = 2.0
    period_s: float = 0.2
    clear_within_s: float = 5.0
    reading_period_s: float = 1.0
    command_latency_s: float = 0.5
    trip_after_s: float = 3.0
    reconnect_after_s: float = 10.0

    def __post_init__(self) -> None:
        checks = {
            "rated_power_w": self.rated_power_w > 0,
            "export_limit_w": self.export_limit_w >= 0,
            "margin_w": self.margin_w >= 0,
            "ramp_up_w_per_s": self.ramp_up_w_per_s > 0,
            "stale_after_s": 0 < self.stale_after_s <= 2.0,
            "revert_timeout_s": self.revert_timeout_s > self.period_s,
            "period_s": 0 < self.period_s <= 1.0,
            "clear_within_s": 0 < self.clear_within_s <= 5.0,
            "reading_period_s": 0 < self.reading_period_s <= self.stale_after_s,
            "command_latency_s": self.command_latency_s >= 0,
            "trip_after_s": self.trip_after_s > 0,
            "reconnect_after_s": self.reconnect_after_s >= 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                raise InvalidInputError(name, value, "out of range for an export limiting scheme")
        budget = self.worst_clearing_s
        if budget > self.clear_within_s + 1e-9:
            raise InvalidInputError(
                "trip_after_s",
                self.trip_after_s,
                f"reading period + trip delay + control period + command latency is "
                f"{budget:g} s, over the {self.clear_within_s:g} s allowed",
            )

    @property
    def worst_clearing_s(self) -> float:
        """The longest export above the limit the scheme allows by construction. [s]"""
        return self.reading_period_s + self.trip_after_s + self.period_s + self.command_latency_s


@dataclass(frozen=True, slots=True)
class MeterReading:
    """Net active power at the connection point (import positive) and when it was measured."""

    at: float
    net_power_w: float


@dataclass(frozen=True, slots=True)
class Setpoint:
    """What to send the inverter now: its limit, and whether it may stay connected."""

    limit_w: float
    limit_pct: float
    revert_timeout_s: float
    state: ExportState
    events: tuple[tuple[EventCode, str], ...] = field(default=())
    connect: bool = True


#: How long the controller remembers the inverter's outputs (to align them with readings).
_HISTORY_S = 5.0


class ExportController:
    """The export limiting loop (pure; see the module docstring for the law)."""

    def __init__(self, config: ExportControlConfig) -> None:
        self.config = config
        self.state = ExportState.FAIL_SAFE
        self.limit_w = 0.0
        self.connected = False
        self.exceeded = False
        self._last: float | None = None
        self._armed = False
        self._outputs: deque[tuple[float, float]] = deque()
        self._reading_at: float | None = None
        self._over_since: float | None = None
        self._off_since = -math.inf
        self._started = False

    def _output_at(self, at: float, fallback: float) -> float:
        """The newest inverter output reported at or before ``at`` (step-hold)."""
        chosen = None
        for t, output in self._outputs:
            if t > at:
                break
            chosen = output
        if chosen is None:
            return self._outputs[0][1] if self._outputs else fallback
        return chosen

    def update(
        self, now: float, reading: MeterReading | None, inverter_output_w: float | None = None
    ) -> Setpoint:
        """One control tick at ``now`` [s]; returns the new setpoint and its events.

        Raises
        ------
        InvalidInputError
            A reading or output that is not finite, or a time that goes backwards.
        """
        if not math.isfinite(now) or (self._last is not None and now < self._last):
            raise InvalidInputError("now", now, "a finite time that does not go backwards")
        if reading is not None and not (
            math.isfinite(reading.at) and math.isfinite(reading.net_power_w)
        ):
            raise InvalidInputError("reading", reading, "finite time and power")
        if inverter_output_w is not None and not math.isfinite(inverter_output_w):
            raise InvalidInputError("inverter_output_w", inverter_output_w, "a finite power")
        config = self.config
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        events: list[tuple[EventCode, str]] = []
        if not self._armed:
            self._armed = True
            events.append(
                (EventCode.EXPORT_WATCHDOG_ARMED, f"revert after {config.revert_timeout_s:g} s")
            )
        if inverter_output_w is not None:
            self._outputs.append((now, inverter_output_w))
        while self._outputs and self._outputs[0][0] < now - _HISTORY_S:
            self._outputs.popleft()

        if reading is None or now - reading.at > config.stale_after_s:
            self._fail_safe(now, reading, events)
        else:
            self._control(now, dt, reading, inverter_output_w, events)
        pct = min(max(100.0 * self.limit_w / config.rated_power_w, 0.0), 100.0)
        return Setpoint(
            self.limit_w,
            pct,
            config.revert_timeout_s,
            self.state,
            tuple(events),
            self.connected,
        )

    def _fail_safe(
        self, now: float, reading: MeterReading | None, events: list[tuple[EventCode, str]]
    ) -> None:
        if self.state != ExportState.FAIL_SAFE:
            age = "none" if reading is None else f"{now - reading.at:.1f} s old"
            events.append((EventCode.EXPORT_FAIL_SAFE, f"meter reading {age}"))
            self._off_since = now
        self.state = ExportState.FAIL_SAFE
        self.limit_w = 0.0
        self.connected = False
        self._over_since = None

    def _control(
        self,
        now: float,
        dt: float,
        reading: MeterReading,
        output_now: float | None,
        events: list[tuple[EventCode, str]],
    ) -> None:
        config = self.config
        fresh = reading.at != self._reading_at
        self._reading_at = reading.at
        generation_then = self._output_at(reading.at, self.limit_w)
        generation_now = self.limit_w if output_now is None else output_now
        export_w = -reading.net_power_w
        site_load = reading.net_power_w + generation_then
        safe = min(
            max(0.0, site_load + config.export_limit_w - config.margin_w), config.rated_power_w
        )
        over = export_w > config.export_limit_w
        if over and not self.exceeded:
            events.append((EventCode.EXPORT_LIMIT_EXCEEDED, f"export {export_w:.0f} W"))
        self.exceeded = over
        if fresh:
            if not over:
                self._over_since = None
            elif self._over_since is None:
                self._over_since = reading.at

        if self.state == ExportState.FAIL_SAFE:
            if self._started:
                events.append((EventCode.EXPORT_READING_RESTORED, "meter reading fresh"))
            self.state = ExportState.TRIPPED
        if self.state == ExportState.TRIPPED:
            if over or now - self._off_since < config.reconnect_after_s:
                self.limit_w = 0.0
                self.connected = False
                return
            self.connected = True
            self.limit_w = safe
            if self._started:
                events.append((EventCode.EXPORT_GENERATION_RECONNECTED, f"limit {safe:.0f} W"))
        elif over and self._over_since is not None:
            above_s = now - self._over_since
            if above_s >= config.trip_after_s:
                self.state = ExportState.TRIPPED
                self.limit_w = 0.0
                self.connected = False
                self._off_since = now
                events.append(
                    (
                        EventCode.EXPORT_GENERATION_TRIPPED,
                        f"export {export_w:.0f} W for {above_s:.1f} s",
                    )
                )
                return
            self.limit_w = 0.0
        elif safe < self.limit_w:
            self.limit_w = safe
        else:
            held = max(self.limit_w, min(generation_now, safe))
            self.limit_w = min(held + config.ramp_up_w_per_s * dt, safe)
        self.connected = True
        self._started = True
        new_state = (
            ExportState.NORMAL if self.limit_w >= config.rated_power_w else ExportState.CURTAILING
        )
        if new_state != self.state:
            code = (
                EventCode.EXPORT_CONTROL_NORMAL
                if new_state == ExportState.NORMAL
                else EventCode.EXPORT_CURTAILING
            )
            events.append((code, f"limit {self.limit_w:.0f} W"))
        self.state = new_state
