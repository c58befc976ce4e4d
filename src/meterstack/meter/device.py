"""The meter: a pure, deterministic model of a smart electricity meter's logic.

:class:`Meter` turns measurements into energy registers, demand, a load profile and event
logs, and runs the prepaid credit, the limiter and the supply relay. It never reads the wall
clock: every call carries its time, and time never goes backwards. Its state goes to an
injected :class:`~meterstack.meter.store.NonVolatileStore` at every load-profile capture (or
every ``checkpoint_every_captures``), after every command, and at the last gasp.

A measurement describes the span since the previous one. The meter cuts that span at every
boundary it meets (capture period, demand subperiod, tariff switch, local midnight, friendly
window edge, billing reset) and books each piece where it belongs, so the result does not
depend on the measurement rate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from meterstack.core.errors import (
    ClockError,
    CommandRefusedError,
    ConfigError,
    CorruptStateError,
    InvalidInputError,
)
from meterstack.core.obis import ObisCode
from meterstack.core.time import LocalDays, ensure_utc, from_epoch, next_aligned, zone
from meterstack.core.units import WH_PER_KWH
from meterstack.meter import obis
from meterstack.meter.calendar import FriendlySchedule, TouCalendar
from meterstack.meter.config import LimiterConfig, MeterConfig
from meterstack.meter.credit import PrepaidCredit, TopUp
from meterstack.meter.events import (
    EVENTS,
    EXTERNAL_EVENTS,
    LOAD_WARNINGS,
    MISSING_VOLTAGE,
    OVER_VOLTAGE,
    UNDER_VOLTAGE,
    VOLTAGE_NORMAL,
    Event,
    EventCode,
    EventLog,
    LogKind,
)
from meterstack.meter.inquiry import CustomerInquiry
from meterstack.meter.limiter import Limiter
from meterstack.meter.measurement import Measurement, validate_measurement
from meterstack.meter.profile import LoadProfile, ProfileStatus
from meterstack.meter.registers import BillingRecord, DemandRegister, EnergyRegisters
from meterstack.meter.relay import ControlState, DisconnectControl, DisconnectReason, Trigger
from meterstack.meter.store import MeterImage, NonVolatileStore
from meterstack.meter.token_gateway import (
    Received,
    TokenGateway,
    TokenRejection,
    TokenResult,
)
from meterstack.sts.tokens import (
    CLEAR_ALL_REGISTERS,
    CreditKind,
    CreditToken,
    ManagementKind,
    ManagementToken,
    MeterTestToken,
)

STATE_VERSION = 1
ALARM_QUEUE_CAPACITY = 1024
BILLING_HISTORY_CAPACITY = 15
_INF = math.inf

# Causes of a local disconnection; the relay reconnects locally only when none is left.
CAUSE_CREDIT_LOW = "credit_low"
CAUSE_CREDIT_EXHAUSTED = "credit_exhausted"
CAUSE_LIMITER = "limiter"
CAUSE_TAMPER = "tamper"
_CAUSE_REASON = {
    CAUSE_CREDIT_LOW: DisconnectReason.CREDIT,
    CAUSE_CREDIT_EXHAUSTED: DisconnectReason.CREDIT,
    CAUSE_LIMITER: DisconnectReason.LIMITER,
    CAUSE_TAMPER: DisconnectReason.TAMPER,
}

# Voltage state of a phase.
_NORMAL, _UNDER, _OVER, _MISSING = 0, 1, 2, 3

_FRAUD_CONDITIONS = (
    "terminal_cover_open",
    "main_cover_open",
    "magnetic_field",
    "current_reversal",
    "missing_neutral",
    "current_with_relay_open",
)


class Alarm(NamedTuple):
    """An event the meter pushes to the head-end at once (POSIX seconds, UTC)."""

    at: float
    code: int
    detail: str

    @property
    def name(self) -> str:
        return EventCode(self.code).name.lower()


class Meter:
    """One meter: registers, profile, logs, relay, credit and limiter.

    Parameters
    ----------
    config : MeterConfig
        Everything fixed about the meter.
    commissioned_at : datetime
        When the meter starts measuring; energy is integrated from here.
    store : NonVolatileStore, optional
        Where state is checkpointed. Without one, nothing survives the object.
    key_encryption_key : bytes, optional
        The 32-byte key that opens the sealed STS decoder key of ``config.sts`` (and seals
        new ones). Required when the meter has an STS section; never stored.
    """

    def __init__(
        self,
        config: MeterConfig,
        *,
        commissioned_at: datetime,
        store: NonVolatileStore | None = None,
        key_encryption_key: bytes | None = None,
        _commission: bool = True,
    ) -> None:
        self.config = config
        self._store = store
        self._tz = zone(config.timezone)
        self._days = LocalDays(self._tz)
        self._gain = 1.0 + config.calibration_error_pct / 100.0
        thresholds = config.thresholds
        nominal = config.nominal_voltage_v
        self._power_fail_v = nominal * thresholds.power_fail_pct / 100.0
        self._missing_v = nominal * thresholds.missing_voltage_pct / 100.0
        self._over_on = nominal * (1 + thresholds.over_voltage_pct / 100.0)
        self._over_off = nominal * (
            1 + (thresholds.over_voltage_pct - thresholds.hysteresis_pct) / 100.0
        )
        self._under_on = nominal * (1 - thresholds.under_voltage_pct / 100.0)
        self._under_off = nominal * (
            1 - (thresholds.under_voltage_pct - thresholds.hysteresis_pct) / 100.0
        )

        self.registers = EnergyRegisters(config.rates)
        self.demand = DemandRegister(config.demand.period_s, config.demand.subperiods)
        self.load_profile = LoadProfile(config.capture_period_s, config.profile_capacity_days)
        self.event_logs = {kind: EventLog(kind, config.event_log_capacity) for kind in LogKind}
        self._named_logs = [(kind.value, log) for kind, log in self.event_logs.items()]
        self.relay = DisconnectControl(config.relay_control_mode)
        self.credit = PrepaidCredit(config.prepaid) if config.prepaid is not None else None
        self.limiter = Limiter(config.limiter) if config.limiter is not None else None
        self.token_gateway: TokenGateway | None = None
        if config.sts is not None:
            if key_encryption_key is None:
                raise ConfigError(
                    f"meter {config.serial} has an sts section: give its key_encryption_key"
                )
            self.token_gateway = TokenGateway(
                config.sts, config.serial, key_encryption_key, config.timezone
            )
        self.billing_history: deque[BillingRecord] = deque(maxlen=BILLING_HISTORY_CAPACITY)
        self._tou = TouCalendar(config.tou, self._days)
        self._friendly = (
            FriendlySchedule(config.prepaid.friendly, self._days)
            if config.prepaid is not None
            else None
        )
        self._alarms: deque[Alarm] = deque(maxlen=ALARM_QUEUE_CAPACITY)

        start = ensure_utc(commissioned_at, "commissioned_at").timestamp()
        self.commissioned_at = start
        self._t = start  # energy is integrated up to here
        self._now = start  # the latest time any call has carried
        self._powered = True
        self._power_down_at: float | None = None
        self._causes: set[str] = set()
        self._opened_by: str | None = None
        self._conditions: dict[str, bool] = dict.fromkeys(_FRAUD_CONDITIONS, False)
        self._conditions["overload"] = False
        self._voltage_state = [_NORMAL] * config.phases
        self._lp_base = (0, 0, 0, 0)
        self._lp_voltage_integral = 0.0
        self._lp_powered_s = 0.0
        self._lp_status = 0
        self._captures_since_checkpoint = 0
        self._checkpoint_due = False
        self._reset_boundaries(start)
        if _commission:
            # A prepaid meter installed without credit starts with its supply off.
            self._evaluate_credit(start)

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> datetime:
        """The latest time the meter has been told."""
        return from_epoch(self._now)

    @property
    def measured_until(self) -> datetime:
        """The end of the last span integrated into the registers."""
        return from_epoch(self._t)

    def _touch(self, at: datetime, field: str = "at") -> float:
        epoch = ensure_utc(at, field).timestamp()
        if epoch < self._now:
            raise ClockError(
                field,
                at,
                f"earlier than {from_epoch(self._now).isoformat()}, already seen by this meter",
            )
        self._now = epoch
        return epoch

    def _reset_boundaries(self, t: float) -> None:
        tz = self._tz
        self._next_capture = next_aligned(t, self.config.capture_period_s, tz)
        self._next_demand = next_aligned(t, self.demand.subperiod_s, tz)
        self._rate, self._next_rate = self._tou.rate_at(t)
        self._next_midnight = self._days.next_day_start(t)
        if self._friendly is not None:
            self._friendly_now, self._next_friendly = self._friendly.state_at(t)
        else:
            self._friendly_now, self._next_friendly = False, _INF
        self._next_billing = self._billing_reset_after(t)
        self._update_next_boundary()

    def _update_next_boundary(self) -> None:
        self._next_boundary = min(
            self._next_capture,
            self._next_demand,
            self._next_rate,
            self._next_midnight,
            self._next_friendly,
            self._next_billing,
        )

    def _billing_reset_after(self, t: float) -> float:
        day = self.config.billing_reset_day
        if day is None:
            return _INF
        local = self._days.local_date(t)
        candidate = local.replace(day=day)
        if self._days.day_start(candidate) <= t:
            month = local.month % 12 + 1
            year = local.year + (local.month == 12)
            candidate = candidate.replace(year=year, month=month)
        return self._days.day_start(candidate)

    # ------------------------------------------------------------------ measurements

    def step(self, measurement: Measurement) -> None:
        """Book ``measurement``, the mean values over the span since the previous one.

        Raises
        ------
        MeasurementError
            A value is not finite, a voltage or current is negative, or the phase count is
            wrong. The meter's state is unchanged.
        ClockError
            The timestamp is naive or earlier than a time the meter has already seen. The
            meter's state is unchanged.
        """
        t = validate_measurement(measurement, self.config.phases)
        if t < self._now:
            raise ClockError(
                "timestamp",
                measurement.timestamp,
                f"earlier than {from_epoch(self._now).isoformat()}, already seen by this meter",
            )
        start = self._t
        gain = self._gain
        voltages = measurement.voltage_v
        currents = measurement.current_a
        active_w = sum(measurement.active_power_w) * gain
        reactive_var = sum(measurement.reactive_power_var) * gain
        apparent_va = sum(v * i for v, i in zip(voltages, currents, strict=True)) * gain
        voltage_avg = sum(voltages) / len(voltages)
        supply_present = max(voltages) >= self._power_fail_v
        current_flows = max(currents) > self.config.thresholds.starting_current_a

        self._now = t
        self._segment_status = self._status_bits()
        powered_now = supply_present or current_flows
        if self._powered or powered_now:
            # Coming back from an outage, the measuring element has integrated since the
            # supply returned: its mean over the span is booked, flagged as power down.
            self._advance(t, active_w, reactive_var, apparent_va, voltage_avg)
        else:
            self._advance(t, 0.0, 0.0, 0.0, 0.0)

        if self._powered and not powered_now:
            self._power_down(t)
        elif not self._powered and powered_now:
            self._power_up(t)
        if powered_now:
            self._evaluate_inputs(measurement, t, supply_present, current_flows)
            self._evaluate_limiter(max(active_w, 0.0), start, t)
            self._evaluate_credit(t)
        self._cross_due(t)
        if self._checkpoint_due:
            self.checkpoint()

    def _status_bits(self) -> int:
        bits = 0
        if not self._powered:
            bits |= ProfileStatus.POWER_DOWN
        if self.relay.state != ControlState.CONNECTED:
            bits |= ProfileStatus.RELAY_OPEN
        if self._tamper_active():
            bits |= ProfileStatus.TAMPER
        return bits

    def _tamper_active(self) -> bool:
        conditions = self._conditions
        return any(conditions[name] for name in _FRAUD_CONDITIONS)

    def _advance(
        self, end: float, active_w: float, reactive_var: float, apparent_va: float, voltage_v: float
    ) -> None:
        """Integrate constant powers from ``self._t`` to ``end``, crossing the boundaries
        strictly before ``end`` (those at ``end`` wait until the step's events are in)."""
        while self._next_boundary < end:
            boundary = self._next_boundary
            if boundary > self._t:
                self._accumulate(boundary - self._t, active_w, reactive_var, apparent_va, voltage_v)
                self._t = boundary
            self._cross(boundary)
        if end > self._t:
            self._accumulate(end - self._t, active_w, reactive_var, apparent_va, voltage_v)
            self._t = end

    def _accumulate(
        self,
        seconds: float,
        active_w: float,
        reactive_var: float,
        apparent_va: float,
        voltage_v: float,
    ) -> None:
        hours = seconds / 3600.0
        active_wh = active_w * hours
        import_wh = self.registers.accumulate(
            active_wh, reactive_var * hours, apparent_va * hours, self._rate
        )
        if active_wh > 0:
            self.demand.add(active_wh)
        if import_wh and self.credit is not None:
            self.credit.charge_energy(import_wh, self._rate)
        if voltage_v > 0:
            self._lp_voltage_integral += voltage_v * seconds
            self._lp_powered_s += seconds
        self._lp_status |= self._segment_status

    def _cross_due(self, t: float) -> None:
        while self._next_boundary <= t:
            self._cross(self._next_boundary)

    def _cross(self, boundary: float) -> None:
        """Handle everything that happens at ``boundary``, in a fixed order."""
        if self._next_demand <= boundary:
            self.demand.close_subperiod(boundary)
            self._next_demand = next_aligned(boundary, self.demand.subperiod_s, self._tz)
        if self._next_capture <= boundary:
            self._capture(boundary)
            self._next_capture = next_aligned(boundary, self.config.capture_period_s, self._tz)
        if self._next_rate <= boundary:
            self._rate, self._next_rate = self._tou.rate_at(boundary)
        if self._next_midnight <= boundary:
            self._next_midnight = self._days.next_day_start(boundary)
            if self.credit is not None and self.config.prepaid is not None:
                standing = self.config.prepaid.standing_charge_per_day
                if standing:
                    self.credit.charge(standing)
                    self._evaluate_credit(boundary)
        if self._next_friendly <= boundary and self._friendly is not None:
            self._friendly_now, self._next_friendly = self._friendly.state_at(boundary)
            self._evaluate_credit(boundary)
        if self._next_billing <= boundary:
            self._billing_reset(boundary)
            self._next_billing = self._billing_reset_after(boundary)
        self._update_next_boundary()

    def _capture(self, at: float) -> None:
        registers = self.registers
        a_plus, a_minus = registers.a_plus, registers.a_minus
        r_plus, r_minus = registers.r_plus, registers.r_minus
        base = self._lp_base
        import_wh = a_plus - base[0]
        average_voltage = (
            self._lp_voltage_integral / self._lp_powered_s if self._lp_powered_s > 0 else 0.0
        )
        self.load_profile.append(
            interval_end=at,
            a_plus_wh=import_wh,
            a_minus_wh=a_minus - base[1],
            r_plus_varh=r_plus - base[2],
            r_minus_varh=r_minus - base[3],
            average_voltage_v=round(average_voltage, 2),
            demand_w=round(import_wh * 3600.0 / self.config.capture_period_s, 1),
            status=self._lp_status,
        )
        self._lp_base = (a_plus, a_minus, r_plus, r_minus)
        self._lp_voltage_integral = 0.0
        self._lp_powered_s = 0.0
        self._lp_status = 0
        self._captures_since_checkpoint += 1
        if self._captures_since_checkpoint >= self.config.checkpoint_every_captures:
            self._checkpoint_due = True

    # ------------------------------------------------------------------ supply

    def _power_down(self, at: float) -> None:
        self._powered = False
        self._power_down_at = at
        self._lp_status |= ProfileStatus.POWER_DOWN
        self._log(EventCode.POWER_DOWN, at, "last gasp")
        self._checkpoint_due = True

    def _power_up(self, at: float) -> None:
        down_at = self._power_down_at
        duration = at - down_at if down_at is not None else 0.0
        self._powered = True
        self._power_down_at = None
        self._lp_status |= ProfileStatus.POWER_DOWN
        self._log(EventCode.POWER_UP, at, f"outage {duration:.0f} s")
        self._checkpoint_due = True

    def power_down(self, at: datetime) -> None:
        """The supply fails at ``at`` (the meter records it and sends its last gasp)."""
        epoch = self._touch(at)
        if not self._powered:
            return
        self._segment_status = self._status_bits()
        self._advance(epoch, 0.0, 0.0, 0.0, 0.0)
        self._power_down(epoch)
        self._cross_due(epoch)
        self.checkpoint()

    def power_up(self, at: datetime) -> None:
        """The supply returns at ``at``; the span since the last measurement had none.

        After a restart from non-volatile memory, call this with the time of the restart:
        the meter books the outage since its last checkpoint.
        """
        epoch = self._touch(at)
        if self._powered:
            self._power_down(self._t)
        self._segment_status = self._status_bits()
        self._advance(epoch, 0.0, 0.0, 0.0, 0.0)
        self._power_up(epoch)
        self._cross_due(epoch)
        self.checkpoint()

    @property
    def powered(self) -> bool:
        return self._powered

    # ------------------------------------------------------------------ conditions

    def _evaluate_inputs(
        self, m: Measurement, t: float, supply_present: bool, current_flows: bool
    ) -> None:
        thresholds = self.config.thresholds
        self._condition(
            "terminal_cover_open",
            m.terminal_cover_open,
            t,
            EventCode.TERMINAL_COVER_REMOVED,
            EventCode.TERMINAL_COVER_CLOSED,
        )
        self._condition(
            "main_cover_open",
            m.main_cover_open,
            t,
            EventCode.METER_COVER_REMOVED,
            EventCode.METER_COVER_CLOSED,
        )
        self._condition(
            "magnetic_field",
            m.magnetic_field,
            t,
            EventCode.STRONG_DC_FIELD_DETECTED,
            EventCode.NO_STRONG_DC_FIELD,
        )
        self._condition(
            "missing_neutral",
            current_flows and not supply_present,
            t,
            EventCode.MISSING_NEUTRAL,
            EventCode.NEUTRAL_RESTORED,
        )

        limit = thresholds.reverse_power_w
        powers = m.active_power_w
        if self.config.export_expected:
            reversal = len(powers) > 1 and max(powers) > limit and min(powers) < -limit
        else:
            reversal = min(powers) < -limit
        self._condition(
            "current_reversal",
            reversal,
            t,
            EventCode.CURRENT_REVERSAL,
            EventCode.CURRENT_REVERSAL_ENDED,
        )
        relay_open_current = current_flows and self.relay.state != ControlState.CONNECTED
        self._condition(
            "current_with_relay_open",
            relay_open_current,
            t,
            EventCode.CURRENT_WITH_RELAY_OPEN,
            None,
        )
        self._condition(
            "overload",
            max(m.current_a) > thresholds.max_current_a,
            t,
            EventCode.OVERLOAD,
            EventCode.OVERLOAD_ENDED,
        )

        if supply_present:
            polyphase = self.config.phases > 1
            states = self._voltage_state
            for phase, voltage in enumerate(m.voltage_v):
                current = states[phase]
                if polyphase and voltage < self._missing_v:
                    new = _MISSING
                elif voltage > self._over_on or (current == _OVER and voltage > self._over_off):
                    new = _OVER
                elif voltage < self._under_on or (current == _UNDER and voltage < self._under_off):
                    new = _UNDER
                else:
                    new = _NORMAL
                if new != current:
                    states[phase] = new
                    code = (VOLTAGE_NORMAL, UNDER_VOLTAGE, OVER_VOLTAGE, MISSING_VOLTAGE)[new][
                        phase
                    ]
                    self._log(code, t, f"{voltage:.1f} V")
        if self._tamper_active():
            self._lp_status |= ProfileStatus.TAMPER

    def _condition(
        self, name: str, active: bool, t: float, start_code: EventCode, end_code: EventCode | None
    ) -> None:
        if active == self._conditions[name]:
            return
        self._conditions[name] = active
        if active:
            self._log(start_code, t)
            if name in _FRAUD_CONDITIONS and self.config.disconnect_on_tamper:
                self._add_cause(CAUSE_TAMPER, t)
        elif end_code is not None:
            self._log(end_code, t)

    def _evaluate_limiter(self, import_w: float, start: float, end: float) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        if limiter.observe(import_w, start, end):
            self._log(
                EventCode.LIMITER_THRESHOLD_EXCEEDED,
                end,
                f"{import_w:.0f} W > {limiter.threshold_w:.0f} W",
            )
            self._add_cause(CAUSE_LIMITER, end)
        elif limiter.restore_due(end):
            limiter.restore()
            self._log(EventCode.LIMITER_THRESHOLD_OK, end, "automatic restore after back-off")
            self._remove_cause(CAUSE_LIMITER, end, DisconnectReason.LIMITER)

    def _evaluate_credit(self, t: float) -> None:
        credit = self.credit
        if credit is None:
            return
        assert self.config.prepaid is not None
        if credit.low:
            if not credit.low_latched:
                credit.low_latched = True
                self._log(EventCode.CREDIT_LOW, t, f"{credit.available} left")
                if (
                    self.config.prepaid.low_credit_trip
                    and not credit.exhausted
                    and not self._friendly_now
                ):
                    self._add_cause(CAUSE_CREDIT_LOW, t)
        else:
            credit.low_latched = False
        if credit.exhausted:
            if not self._friendly_now and CAUSE_CREDIT_EXHAUSTED not in self._causes:
                self._log(EventCode.CREDIT_EXHAUSTED, t, f"debt {credit.debt}")
                self._add_cause(CAUSE_CREDIT_EXHAUSTED, t)
            elif self._friendly_now and CAUSE_CREDIT_EXHAUSTED in self._causes:
                self._remove_cause(CAUSE_CREDIT_EXHAUSTED, t, DisconnectReason.CREDIT)
        elif CAUSE_CREDIT_EXHAUSTED in self._causes:
            self._log(EventCode.CREDIT_RESTORED, t, f"{credit.available} available")
            self._remove_cause(CAUSE_CREDIT_EXHAUSTED, t, DisconnectReason.CREDIT)

    # ------------------------------------------------------------------ relay

    @property
    def disconnect_causes(self) -> frozenset[str]:
        """Why the meter holds its supply off on its own (credit, limiter, tamper)."""
        return frozenset(self._causes)

    def _add_cause(self, cause: str, at: float) -> None:
        if cause in self._causes:
            return
        self._causes.add(cause)
        relay = self.relay
        if relay.state == ControlState.CONNECTED and relay.allows(Trigger.LOCAL_DISCONNECT):
            relay.apply(Trigger.LOCAL_DISCONNECT)
            self._opened_by = "local"
            self._lp_status |= ProfileStatus.RELAY_OPEN
            self._log(EventCode.LOCAL_DISCONNECTION, at, _CAUSE_REASON[cause].value)
            self._checkpoint_due = True

    def _remove_cause(self, cause: str, at: float, reason: DisconnectReason) -> None:
        self._causes.discard(cause)
        self._try_local_reconnect(at, reason)

    def _try_local_reconnect(self, at: float, reason: DisconnectReason) -> None:
        """Undo the meter's own disconnection once nothing holds it (transition h)."""
        relay = self.relay
        if (
            not self._causes
            and relay.state == ControlState.READY_FOR_RECONNECTION
            and self._opened_by == "local"
            and relay.allows(Trigger.LOCAL_RECONNECT)
        ):
            relay.apply(Trigger.LOCAL_RECONNECT)
            self._opened_by = None
            self._log(EventCode.LOCAL_CONNECTION, at, reason.value)
            self._checkpoint_due = True

    def remote_disconnect(self, at: datetime) -> None:
        """The head-end disconnects the supply (transitions b, c)."""
        epoch = self._touch(at)
        if self.relay.apply(Trigger.REMOTE_DISCONNECT) is not None:
            self._opened_by = "remote"
            self._lp_status |= ProfileStatus.RELAY_OPEN
            self._log(EventCode.REMOTE_DISCONNECTION, epoch, DisconnectReason.REMOTE.value)
        self.checkpoint()

    def remote_reconnect(self, at: datetime) -> None:
        """The head-end reconnects (transition a) or arms reconnection (d), per the control
        mode. It also lifts a limiter trip and a low-credit trip: that is a request."""
        epoch = self._touch(at)
        self._causes.discard(CAUSE_LIMITER)
        self._causes.discard(CAUSE_CREDIT_LOW)
        if self.limiter is not None:
            self.limiter.restore()
        letter = self.relay.apply(Trigger.REMOTE_RECONNECT)
        if letter is None:
            self._try_local_reconnect(epoch, DisconnectReason.REMOTE)
        else:
            self._opened_by = None if self.relay.state == ControlState.CONNECTED else "remote"
            self._log(EventCode.REMOTE_CONNECTION, epoch, DisconnectReason.REMOTE.value)
        self.checkpoint()

    def manual_disconnect(self, at: datetime) -> None:
        """The customer presses the button to switch the supply off (transition f)."""
        epoch = self._touch(at)
        if self.relay.apply(Trigger.MANUAL_DISCONNECT) is not None:
            self._opened_by = "manual"
            self._lp_status |= ProfileStatus.RELAY_OPEN
            self._log(EventCode.MANUAL_DISCONNECTION, epoch, DisconnectReason.LOCAL.value)
        self.checkpoint()

    def manual_reconnect(self, at: datetime) -> None:
        """The customer presses the button (or inserts the card) to reconnect (transition e).

        This acknowledges a low-credit trip and asks the limiter to restore; it is refused
        while credit is exhausted, while a tamper hold is in force, or while the head-end
        holds the supply disconnected.
        """
        epoch = self._touch(at)
        blocking = self._causes - {CAUSE_CREDIT_LOW, CAUSE_LIMITER}
        if blocking:
            raise CommandRefusedError(
                "manual_reconnect", f"supply held off: {', '.join(sorted(blocking))}"
            )
        if self.relay.state == ControlState.DISCONNECTED:
            raise CommandRefusedError(
                "manual_reconnect", "disconnected by the head-end; it must reconnect first"
            )
        if self.relay.state == ControlState.READY_FOR_RECONNECTION and not self.relay.allows(
            Trigger.MANUAL_RECONNECT
        ):
            raise CommandRefusedError(
                "manual_reconnect", f"control mode {self.relay.control_mode} does not allow it"
            )
        if CAUSE_CREDIT_LOW in self._causes:
            self._log(EventCode.LOW_CREDIT_ACKNOWLEDGED, epoch)
        self._causes.discard(CAUSE_CREDIT_LOW)
        if CAUSE_LIMITER in self._causes:
            self._causes.discard(CAUSE_LIMITER)
            if self.limiter is not None:
                self.limiter.restore()
            self._log(EventCode.LIMITER_THRESHOLD_OK, epoch, "restore on request")
        if self.relay.apply(Trigger.MANUAL_RECONNECT) is not None:
            self._opened_by = None
            self._log(EventCode.MANUAL_CONNECTION, epoch, DisconnectReason.LOCAL.value)
        self.checkpoint()

    def acknowledge_low_credit(self, at: datetime) -> None:
        """The customer inserts the card after a low-credit trip: the supply comes back."""
        if CAUSE_CREDIT_LOW not in self._causes:
            self._touch(at)
            return
        self.manual_reconnect(at)

    # ------------------------------------------------------------------ prepayment

    def _require_credit(self, command: str) -> PrepaidCredit:
        if self.credit is None:
            raise CommandRefusedError(command, f"meter {self.config.serial} is not a prepaid meter")
        return self.credit

    def top_up(self, amount: Decimal, at: datetime, reference: str = "") -> TopUp:
        """Add purchased credit (money or kWh, per the meter's mode).

        A top-up also counts as the customer's acknowledgement of a low-credit trip.
        """
        self._require_credit("top_up")
        if not isinstance(amount, Decimal):
            raise InvalidInputError("amount", amount, "a top-up is a Decimal")
        epoch = self._touch(at)
        result = self._top_up(amount, epoch, reference)
        self.checkpoint()
        return result

    def _top_up(self, amount: Decimal, epoch: float, reference: str) -> TopUp:
        credit = self._require_credit("top_up")
        result = credit.top_up(amount, epoch)
        self._log(EventCode.CREDIT_TOKEN_ACCEPTED, epoch, f"{amount} {reference}".strip())
        if CAUSE_CREDIT_LOW in self._causes and not credit.low:
            self._remove_cause(CAUSE_CREDIT_LOW, epoch, DisconnectReason.CREDIT)
        self._evaluate_credit(epoch)
        return result

    def activate_emergency_credit(self, at: datetime) -> Decimal:
        """The customer takes emergency credit; it is repaid from the next top-up."""
        credit = self._require_credit("activate_emergency_credit")
        epoch = self._touch(at)
        granted = credit.activate_emergency()
        self._log(EventCode.EMERGENCY_CREDIT_ACTIVATED, epoch, str(granted))
        self._evaluate_credit(epoch)
        self.checkpoint()
        return granted

    @property
    def friendly_now(self) -> bool:
        """Whether the meter is in a friendly-credit period."""
        return self._friendly_now

    # ------------------------------------------------------------------ STS tokens

    def enter_token(self, token: str, at: datetime) -> TokenResult:
        """A 20-digit STS token entered on the keypad (or pushed by the head-end) at ``at``.

        The token gateway checks it (format, keypad lockout, key, CRC, TID, key type); the
        meter then applies it: class 0 credit through the prepaid top-up (kWh tokens on an
        ``energy`` meter, currency tokens on a ``money`` meter; the other way round is the
        standard's ``function`` refusal, as are water, gas and time credit), clear credit,
        clear tamper, maximum power (on the limiter, created if the meter has none), and key
        changes once every section has arrived. Every outcome goes to the token log.

        Raises
        ------
        CommandRefusedError
            The meter has no STS token gateway.
        ClockError
            ``at`` is naive or earlier than a time the meter has seen.
        """
        gateway = self.token_gateway
        if gateway is None:
            raise CommandRefusedError(
                "enter_token", f"meter {self.config.serial} has no STS token gateway"
            )
        if not isinstance(token, str):
            raise InvalidInputError("token", token, "a token is a string of 20 digits")
        epoch = self._touch(at)
        received = gateway.receive(token, epoch)
        if isinstance(received, Received):
            result = self._apply_token(gateway, received, epoch)
        else:
            result = received
        if not result.accepted:
            assert result.reason is not None
            where = (
                ""
                if result.token_class is None
                else f" class {result.token_class} subclass {result.subclass}"
            )
            self._log(EventCode.TOKEN_REJECTED, epoch, f"{result.reason.value}{where}")
            if result.lockout_s is not None:
                self._log(EventCode.KEYPAD_LOCKED, epoch, f"{result.lockout_s:.0f} s")
        self.checkpoint()
        return result

    def _apply_token(self, gateway: TokenGateway, received: Received, epoch: float) -> TokenResult:
        """Apply a token the gateway let through, or refuse it with the meter's reason."""
        token = received.token

        def refuse(reason: TokenRejection, effect: str) -> TokenResult:
            return TokenResult(
                False,
                reason,
                received.token_class,
                received.subclass,
                effect,
                received.tid,
                received.issued_at,
            )

        def accept(effect: str, amount: Decimal | None = None) -> TokenResult:
            return TokenResult(
                True,
                None,
                received.token_class,
                received.subclass,
                effect,
                received.tid,
                received.issued_at,
                amount,
            )

        if isinstance(token, CreditToken):
            credit = self.credit
            mode = None if credit is None else credit.config.mode
            wanted = {CreditKind.ELECTRICITY: "energy", CreditKind.ELECTRICITY_CURRENCY: "money"}
            if credit is None or wanted.get(token.kind) != mode:
                return refuse(
                    TokenRejection.FUNCTION,
                    f"{token.kind.name.lower()} credit on a {mode or 'non-prepaid'} meter",
                )
            amount = token.amount
            if amount <= 0:
                return refuse(TokenRejection.RANGE, "a credit token of zero")
            assert self.config.sts is not None
            if credit.credit + amount > self.config.sts.credit_limit:
                return refuse(
                    TokenRejection.OVERFLOW,
                    f"credit would exceed {self.config.sts.credit_limit} {credit.unit}",
                )
            gateway.commit(received)
            self._top_up(amount, epoch, f"STS TID {token.tid}")
            return accept(f"credit {amount} {token.kind.unit}", amount)
        if isinstance(token, MeterTestToken):
            gateway.commit(received)
            detail = f"control {token.control} manufacturer {token.manufacturer_code}"
            self._log(EventCode.TEST_TOKEN_ACCEPTED, epoch, detail)
            return accept(f"test/display: {detail}")
        if isinstance(token, ManagementToken):
            return self._apply_management(
                gateway, received, token, epoch, refuse=refuse, accept=accept
            )
        effect = gateway.commit(received)
        changed = effect.startswith("decoder key changed")
        self._log(
            EventCode.DECODER_KEY_CHANGED if changed else EventCode.KEY_CHANGE_TOKEN_ACCEPTED,
            epoch,
            effect,
        )
        return accept(effect)

    def _apply_management(
        self,
        gateway: TokenGateway,
        received: Received,
        token: ManagementToken,
        epoch: float,
        *,
        refuse: Callable[[TokenRejection, str], TokenResult],
        accept: Callable[..., TokenResult],
    ) -> TokenResult:
        kind = token.kind
        if kind is ManagementKind.SET_MAXIMUM_POWER_LIMIT:
            watts = token.power_limit_w
            if watts <= 0:
                return refuse(TokenRejection.RANGE, "a maximum power limit of 0 W")
            gateway.commit(received)
            if self.limiter is None:
                self.limiter = Limiter(LimiterConfig(threshold_w=watts))
            else:
                self.limiter.set_threshold(float(watts))
            self._log(EventCode.LIMITER_THRESHOLD_CHANGED, epoch, f"{watts} W by STS token")
            self._log(EventCode.MANAGEMENT_TOKEN_ACCEPTED, epoch, f"maximum power {watts} W")
            return accept(f"maximum power limit {watts} W", Decimal(watts))
        if kind is ManagementKind.CLEAR_CREDIT:
            register = token.value
            if register not in (0, CLEAR_ALL_REGISTERS):
                reason = TokenRejection.FUNCTION if register <= 3 else TokenRejection.RANGE
                return refuse(reason, f"clear credit register {register}")
            if self.credit is None:
                return refuse(TokenRejection.FUNCTION, "clear credit on a non-prepaid meter")
            gateway.commit(received)
            cleared = self.credit.clear()
            self._log(EventCode.CREDIT_CLEARED, epoch, f"{cleared} {self.credit.unit}")
            self._evaluate_credit(epoch)
            return accept(f"credit cleared ({cleared} {self.credit.unit})", cleared)
        if kind is ManagementKind.CLEAR_TAMPER:
            gateway.commit(received)
            self._clear_tamper(epoch, "by STS token")
            self._log(EventCode.MANAGEMENT_TOKEN_ACCEPTED, epoch, "clear tamper")
            return accept("tamper condition cleared")
        return refuse(TokenRejection.FUNCTION, f"{kind.name.lower()} is not supported here")

    # ------------------------------------------------------------------ other commands

    def set_limiter_threshold(self, threshold_w: float, at: datetime) -> None:
        if self.limiter is None:
            raise CommandRefusedError(
                "set_limiter_threshold", "this meter has no limiter configured"
            )
        epoch = self._touch(at)
        self.limiter.set_threshold(threshold_w)
        self._log(EventCode.LIMITER_THRESHOLD_CHANGED, epoch, f"{threshold_w:.0f} W")
        self.checkpoint()

    def load_warning(self, kind: str, active: bool, at: datetime, detail: str = "") -> None:
        """The measuring element reports that a load warning starts or ends.

        ``kind`` is one of ``voltage_harmonics``, ``current_harmonics`` (IEEE 519 limits)
        or ``unbalance``; the meter logs the transition in its power-quality log (codes
        240-245; a start raises an alarm). A report that changes nothing logs nothing.
        Overload is not reported here: the meter detects it from its measurements.
        """
        if kind not in LOAD_WARNINGS:
            raise InvalidInputError("kind", kind, f"one of {', '.join(LOAD_WARNINGS)}")
        epoch = self._touch(at)
        name = f"load_warning_{kind}"
        if self._conditions.get(name, False) == active:
            return
        self._conditions[name] = active
        start_code, end_code = LOAD_WARNINGS[kind]
        self._log(start_code if active else end_code, epoch, detail)

    def clear_tamper(self, at: datetime) -> None:
        """Lift a tamper hold (an authorised technician, or a clear-tamper token)."""
        epoch = self._touch(at)
        self._clear_tamper(epoch, "")
        self.checkpoint()

    def _clear_tamper(self, epoch: float, detail: str) -> None:
        self._log(EventCode.TAMPER_CLEARED, epoch, detail)
        if CAUSE_TAMPER in self._causes:
            self._remove_cause(CAUSE_TAMPER, epoch, DisconnectReason.TAMPER)

    def billing_reset(self, at: datetime) -> BillingRecord:
        """Freeze the registers and the maximum demand into the billing history."""
        epoch = self._touch(at)
        record = self._billing_reset(epoch)
        self.checkpoint()
        return record

    def _billing_reset(self, at: float) -> BillingRecord:
        registers = self.registers
        maximum, maximum_at = self.demand.reset_maximum()
        record = BillingRecord(
            at,
            registers.a_plus,
            registers.a_minus,
            tuple(registers.a_plus_rate[1:]),
            registers.r_plus,
            registers.r_minus,
            maximum,
            maximum_at,
        )
        self.billing_history.append(record)
        self._log(EventCode.BILLING_RESET, at, f"maximum demand {maximum:.0f} W")
        return record

    def set_clock(self, at: datetime, new_time: datetime) -> None:
        """Adjust the meter's clock from ``at`` to ``new_time`` (forward or back).

        Both times are logged; the load-profile interval in progress is flagged "clock
        adjusted". Moving forward books no energy for the skipped span; moving back lets
        later measurements carry times from ``new_time`` on.
        """
        old = self._touch(at)
        new = ensure_utc(new_time, "new_time").timestamp()
        self._log(EventCode.CLOCK_ADJUSTED_OLD_TIME, old, from_epoch(old).isoformat())
        self._lp_status |= ProfileStatus.CLOCK_ADJUSTED
        if new >= self._t:
            self._segment_status = self._status_bits() | ProfileStatus.CLOCK_ADJUSTED
            self._advance(new, 0.0, 0.0, 0.0, 0.0)
            self._cross_due(new)
        else:
            self._t = new
            self._reset_boundaries(new)
        self._now = new
        self._log(EventCode.CLOCK_ADJUSTED_NEW_TIME, new, from_epoch(new).isoformat())
        self._lp_status |= ProfileStatus.CLOCK_ADJUSTED
        self.checkpoint()

    # ------------------------------------------------------------------ events and alarms

    def _log(self, code: EventCode, at: float, detail: str = "") -> Event:
        definition = EVENTS[code]
        event = self.event_logs[definition.log].append(at, code, detail)
        if definition.alarm:
            self._alarms.append(Alarm(at, int(code), detail))
        return event

    def record_event(self, code: EventCode, at: datetime, detail: str = "") -> Event:
        """Log an event reported by a component beside the meter's own logic.

        Only the codes in :data:`~meterstack.meter.events.EXTERNAL_EVENTS` are accepted
        (firmware image transfer, export control); the meter's own events come only from
        its own logic.

        Raises
        ------
        InvalidInputError
            ``code`` is not an external event code.
        ClockError
            ``at`` is naive or earlier than a time the meter has seen.
        """
        if code not in EXTERNAL_EVENTS:
            raise InvalidInputError("code", code, "not an event other components may record")
        epoch = self._touch(at)
        event = self._log(EventCode(code), epoch, detail)
        self._checkpoint_due = True
        return event

    def drain_alarms(self) -> list[Alarm]:
        """Alarms raised since the last call, oldest first (the link sends them)."""
        alarms = list(self._alarms)
        self._alarms.clear()
        return alarms

    def requeue_alarms(self, alarms: Iterable[Alarm]) -> None:
        """Put alarms that were drained but never delivered back in the queue.

        They join the alarms still queued in time order; past the queue's capacity the
        oldest are dropped, as when alarms are raised.
        """
        merged = sorted([*alarms, *self._alarms], key=lambda alarm: alarm.at)
        self._alarms.clear()
        self._alarms.extend(merged[-ALARM_QUEUE_CAPACITY:])
        self._checkpoint_due = True

    @property
    def pending_alarms(self) -> int:
        return len(self._alarms)

    # ------------------------------------------------------------------ reading

    @property
    def rate(self) -> int:
        """The tariff rate in force."""
        return self._rate

    def register_values(self) -> dict[ObisCode, int | float]:
        """Every register by OBIS code (energy in Wh/varh/VAh, demand in W)."""
        r = self.registers
        values: dict[ObisCode, int | float] = {
            obis.ACTIVE_ENERGY_IMPORT: r.a_plus,
            obis.ACTIVE_ENERGY_EXPORT: r.a_minus,
            obis.REACTIVE_ENERGY_IMPORT: r.r_plus,
            obis.REACTIVE_ENERGY_EXPORT: r.r_minus,
            obis.REACTIVE_ENERGY_QI: r.quadrant[0],
            obis.REACTIVE_ENERGY_QII: r.quadrant[1],
            obis.REACTIVE_ENERGY_QIII: r.quadrant[2],
            obis.REACTIVE_ENERGY_QIV: r.quadrant[3],
            obis.APPARENT_ENERGY_IMPORT: r.s_plus,
            obis.APPARENT_ENERGY_EXPORT: r.s_minus,
            obis.DEMAND_CURRENT_AVERAGE: self.demand.current_average_w,
            obis.DEMAND_LAST_AVERAGE: self.demand.last_average_w,
            obis.MAXIMUM_DEMAND: self.demand.maximum_w,
        }
        for rate in range(1, self.config.rates + 1):
            values[obis.active_energy_import_rate(rate)] = r.a_plus_rate[rate]
            values[obis.active_energy_export_rate(rate)] = r.a_minus_rate[rate]
        return values

    def inquiry(self) -> CustomerInquiry:
        """What the customer sees on inquiry (seed 002): purchases, use, credit, constants."""
        config = self.config
        credit = self.credit
        return CustomerInquiry(
            serial=config.serial,
            customer_name=config.customer_name,
            customer_address=config.customer_address,
            meter_constant_imp_per_kwh=config.meter_constant_imp_per_kwh,
            cumulative_consumption_kwh=Decimal(self.registers.a_plus) / WH_PER_KWH,
            prepaid=credit is not None,
            credit_unit=None if credit is None else credit.unit,
            total_purchased=None if credit is None else credit.total_purchased,
            purchase_count=0 if credit is None else credit.purchase_count,
            last_purchase_amount=None if credit is None else credit.last_purchase_amount,
            last_purchase_at=(
                None
                if credit is None or credit.last_purchase_at is None
                else from_epoch(credit.last_purchase_at)
            ),
            remaining_credit=None if credit is None else credit.credit,
            debt=None if credit is None else credit.debt,
        )

    # ------------------------------------------------------------------ persistence

    def checkpoint(self) -> None:
        """Write the whole state to the non-volatile store (if there is one)."""
        self._checkpoint_due = False
        self._captures_since_checkpoint = 0
        if self._store is not None:
            self._store.save(self._image(live=True))

    def image(self) -> MeterImage:
        """A copy of the meter's non-volatile image: state, load profile and event logs."""
        return self._image(live=False)

    def _image(self, *, live: bool) -> MeterImage:
        # A live image shares the ring buffers (no copying per checkpoint); the store
        # writes it before the meter moves on.
        return MeterImage(
            serial=self.config.serial,
            state=self._state(),
            profile=self.load_profile.held() if live else self.load_profile.entries(),
            profile_last_seq=self.load_profile.last_seq,
            events={name: log.held() if live else log.entries() for name, log in self._named_logs},
            event_last_seq={name: log.last_seq for name, log in self._named_logs},
        )

    def _state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "commissioned_at": self.commissioned_at,
            "t": self._t,
            "now": self._now,
            "powered": self._powered,
            "power_down_at": self._power_down_at,
            "registers": self.registers.to_state(),
            "demand": self.demand.to_state(),
            "relay": {"state": int(self.relay.state), "opened_by": self._opened_by},
            "causes": sorted(self._causes),
            "conditions": dict(self._conditions),
            "voltage_state": list(self._voltage_state),
            "credit": None if self.credit is None else self.credit.to_state(),
            "limiter": None if self.limiter is None else self.limiter.to_state(),
            "sts": None if self.token_gateway is None else self.token_gateway.to_state(),
            "billing_history": [list(record) for record in self.billing_history],
            "alarms": [list(alarm) for alarm in self._alarms],
            "lp": {
                "base": list(self._lp_base),
                "voltage_integral": self._lp_voltage_integral,
                "powered_s": self._lp_powered_s,
                "status": self._lp_status,
            },
        }

    @classmethod
    def restore(
        cls,
        config: MeterConfig,
        store: NonVolatileStore,
        *,
        key_encryption_key: bytes | None = None,
    ) -> Meter | None:
        """Rebuild the meter from ``store``; ``None`` if the store holds nothing yet.

        A meter with an STS section needs its ``key_encryption_key`` again.

        Raises
        ------
        CorruptStateError
            The stored image does not belong to this meter or cannot be decoded.
        """
        image = store.load()
        if image is None:
            return None
        if image.serial != config.serial:
            raise CorruptStateError(
                f"the stored image is of meter {image.serial}, not {config.serial}"
            )
        state = image.state
        try:
            if state["version"] != STATE_VERSION:
                raise CorruptStateError(f"state version {state['version']} is not {STATE_VERSION}")
            meter = cls(
                config,
                commissioned_at=from_epoch(state["commissioned_at"]),
                store=store,
                key_encryption_key=key_encryption_key,
                _commission=False,
            )
            meter._load(image)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptStateError(
                f"meter {config.serial}: stored state is incomplete: {exc}"
            ) from exc
        return meter

    def _load(self, image: MeterImage) -> None:
        state = image.state
        self._t = float(state["t"])
        self._now = float(state["now"])
        self._powered = bool(state["powered"])
        self._power_down_at = state["power_down_at"]
        self.registers.load_state(state["registers"])
        self.demand.load_state(state["demand"])
        self.relay.state = ControlState(state["relay"]["state"])
        self._opened_by = state["relay"]["opened_by"]
        self._causes = set(state["causes"])
        self._conditions = {name: bool(value) for name, value in state["conditions"].items()}
        self._voltage_state = [int(v) for v in state["voltage_state"]]
        if self.credit is not None:
            self.credit.load_state(state["credit"])
        if state["limiter"] is not None:
            if self.limiter is None:  # created by a maximum power token
                self.limiter = Limiter(LimiterConfig(threshold_w=state["limiter"]["threshold_w"]))
            self.limiter.load_state(state["limiter"])
        if self.token_gateway is not None and state.get("sts") is not None:
            self.token_gateway.load_state(state["sts"])
        self.billing_history.clear()
        for row in state["billing_history"]:
            row[3] = tuple(row[3])
            self.billing_history.append(BillingRecord(*row))
        self._alarms.clear()
        self._alarms.extend(Alarm(*row) for row in state["alarms"])
        lp = state["lp"]
        self._lp_base = tuple(lp["base"])
        self._lp_voltage_integral = float(lp["voltage_integral"])
        self._lp_powered_s = float(lp["powered_s"])
        self._lp_status = int(lp["status"])
        self.load_profile.restore(list(image.profile), image.profile_last_seq)
        for kind, log in self.event_logs.items():
            log.restore(
                list(image.events.get(kind.value, [])), image.event_last_seq.get(kind.value, 0)
            )
        self._reset_boundaries(self._t)
