"""The meter's communication module: a :class:`~meterstack.meter.Meter` on the link.

The module ties one meter to its outbox, its keys and a transport (seed 001's "management
module"). It does three things:

* :meth:`CommunicationModule.collect` moves what the meter has produced into the outbox:
  alarms (``Meter.drain_alarms``), new load-profile rows and event-log entries (by their
  ``seq``, with the cursors stored in the same transaction), and once per local day the
  register snapshot. Call it after stepping the meter.
* :meth:`CommunicationModule.run` sends from the outbox, best class first, each attempt
  sealed afresh (new invocation counter), and retries until acknowledged.
* :meth:`CommunicationModule.receive` opens downlink frames (acknowledgements, commands),
  rejecting tampered, replayed, reflected or misaddressed ones into the dead-letter store,
  and executes commands exactly once (a repeated command id gets the stored response).

Commands: ``remote_disconnect``, ``remote_reconnect``, ``top_up``, ``deliver_token``,
``set_limiter_threshold``, ``set_clock``, ``billing_reset``, ``set_tariff``,
``read_registers``, ``read_profile``, ``read_events``, ``diagnostics``, ``rotate_key``,
``firmware_offer``, ``firmware_chunk``, ``firmware_activate``, ``firmware_status``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from meterstack.core.aio import wait_event
from meterstack.core.errors import CommandRefusedError, InvalidInputError, MeterstackError
from meterstack.core.time import Clock, ensure_utc, from_epoch, zone
from meterstack.link import topics
from meterstack.link.counters import InvocationCounter, ReplayGuard
from meterstack.link.deadletter import DeadLetter
from meterstack.link.envelope import SessionKeys, open_frame, read_header, seal
from meterstack.link.errors import EnvelopeError, FirmwareError, LinkDownError, RejectReason
from meterstack.link.firmware import FirmwareManifest, FirmwareSlot, FirmwareState
from meterstack.link.keys import KeyRing, MeterCredentials, unwrap_key
from meterstack.link.outbox import Outbox, OutboxEntry, OutboxPolicy, Priority
from meterstack.link.schema import (
    AckBody,
    AlarmBody,
    Body,
    CommandBody,
    EventBlock,
    EventRow,
    Message,
    MessageKind,
    ProfileBlock,
    ProfileRow,
    RegisterRead,
    ResponseBody,
    ResponseStatus,
    decode,
    encode,
)
from meterstack.link.shutdown import cancel_all
from meterstack.link.store import MeterLinkStore
from meterstack.link.transports.base import Transport
from meterstack.meter import LogKind, Meter, MeterConfig, NonVolatileStore, ProfileEntry

#: Delivers a 20-digit STS token to the meter's token gateway; returns what it did.
TokenGateway = Callable[[Meter, str, datetime], str]

_PRIORITY_OF = {
    MessageKind.ALARM: Priority.ALARM,
    MessageKind.RESPONSE: Priority.RESPONSE,
    MessageKind.REGISTERS: Priority.REGISTER,
    MessageKind.EVENTS: Priority.REGISTER,
    MessageKind.PROFILE: Priority.PROFILE,
    MessageKind.POWER_QUALITY: Priority.POWER_QUALITY,
}


@dataclass(frozen=True)
class ModuleConfig:
    """How the module packs and paces its uplink.

    Attributes
    ----------
    profile_rows_per_message : int
        Load-profile intervals per PROFILE message. [count]
    event_rows_per_message : int
        Event-log entries per EVENTS message. [count]
    max_parallel_bulk : int
        Bulk publishes awaiting their PUBACK at once; alarms and responses are never
        held back by this. Kept small so that an alarm raised during a bulk upload finds
        few bulk frames ahead of it on the connection and in the broker (4 keeps a
        backlog upload near the link's rate; 8 doubled the alarm p99 under load in
        ``bench/link.py``). [count]
    command_results_kept : int
        Responses remembered to answer a repeated command without executing it twice.
    daily_snapshot : bool
        Send the register snapshot at each local midnight (essential in degraded mode).
    """

    profile_rows_per_message: int = 1
    event_rows_per_message: int = 32
    max_parallel_bulk: int = 4
    command_results_kept: int = 64
    daily_snapshot: bool = True

    def __post_init__(self) -> None:
        for name in (
            "profile_rows_per_message",
            "event_rows_per_message",
            "max_parallel_bulk",
            "command_results_kept",
        ):
            if getattr(self, name) < 1:
                raise InvalidInputError(name, getattr(self, name), "at least 1")


def profile_row(entry: ProfileEntry) -> ProfileRow:
    return ProfileRow(
        seq=entry.seq,
        interval_end_s=round(entry.interval_end),
        a_plus_wh=entry.a_plus_wh,
        a_minus_wh=entry.a_minus_wh,
        r_plus_varh=entry.r_plus_varh,
        r_minus_varh=entry.r_minus_varh,
        average_voltage_cv=round(entry.average_voltage_v * 100),
        demand_dw=round(entry.demand_w * 10),
        status=int(entry.status),
    )


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CommunicationModule:
    """One meter's link to the head-end.

    Parameters
    ----------
    meter : Meter
        The device model. The module reads it and executes commands on it.
    credentials : MeterCredentials
        System title, suite, KEK and the first session keys (factory provisioning).
    store : MeterLinkStore
        The meter's persistent link state (outbox, counters, windows, dead letters, keys).
    transport : Transport
        Where frames go (an MQTT path, or two with failover).
    clock : Clock
        Real time for the outbox's timers and the messages' ``created_ms``; the meter's own
        time (``meter.now``) stamps readings and commands.
    firmware : FirmwareSlot, optional
        Without one the firmware commands are unsupported.
    meter_store : NonVolatileStore, optional
        The meter's non-volatile store, needed to re-commission it with a pushed tariff.
    token_gateway : TokenGateway, optional
        Applies STS tokens (``deliver_token``) in place of the meter's own token gateway;
        without either the command is unsupported.
    meter_key_encryption_key : bytes, optional
        The KEK the meter's STS decoder key is sealed under, needed to re-commission an
        STS meter with a pushed tariff (``set_tariff``).
    """

    def __init__(
        self,
        meter: Meter,
        credentials: MeterCredentials,
        *,
        store: MeterLinkStore,
        transport: Transport,
        clock: Clock,
        outbox_policy: OutboxPolicy | None = None,
        config: ModuleConfig | None = None,
        firmware: FirmwareSlot | None = None,
        meter_store: NonVolatileStore | None = None,
        token_gateway: TokenGateway | None = None,
        meter_key_encryption_key: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if credentials.serial != meter.config.serial:
            raise InvalidInputError(
                "credentials.serial", credentials.serial, f"the meter is {meter.config.serial}"
            )
        self.meter = meter
        self.credentials = credentials
        self.serial = credentials.serial
        self.store = store
        self.transport = transport
        self.clock = clock
        self.config = config or ModuleConfig()
        self.firmware = firmware
        self.meter_store = meter_store
        self.token_gateway = token_gateway
        self.meter_key_encryption_key = meter_key_encryption_key
        self.outbox = Outbox(store, outbox_policy, rng=rng)
        self.counter = InvocationCounter(store, "ic.uplink")
        self.replay = ReplayGuard(store)
        saved_ring = store.get_value("keys")
        self.keys = KeyRing.from_state(saved_ring) if saved_ring else KeyRing(credentials.keys)
        if saved_ring is None:
            store.put_values({"keys": self.keys.to_state()})
        self._results: list[list[Any]] = list(store.get_value("commands") or [])
        self._wake = asyncio.Event()
        self._bulk_publishing = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.publish_failures = 0
        self.acks_received = 0
        self.commands_executed = 0

    # ---------------------------------------------------------------- time
    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _meter_time(self) -> datetime:
        return self.meter.now

    # ---------------------------------------------------------------- uplink
    def _message(self, kind: MessageKind, seq: int, body: Body, now: float) -> Message:
        return Message(kind, self.serial, self.outbox.origin, seq, round(now * 1000), body)

    def collect(self) -> int:
        """Move new alarms, profile rows, events and the daily snapshot into the outbox.

        Returns the number of messages enqueued.
        """
        now = self._now()
        meter = self.meter
        bodies: list[tuple[MessageKind, Body, bool]] = []
        for alarm in meter.drain_alarms():
            bodies.append(
                (
                    MessageKind.ALARM,
                    AlarmBody(round(alarm.at * 1000), alarm.code, alarm.detail),
                    True,
                )
            )
        values: dict[str, Any] = {}
        profile_seq = int(self.store.get_value("cursor.profile") or 0)
        rows = meter.load_profile.since(profile_seq)
        if rows:
            period = meter.config.capture_period_s
            for block in _chunks(rows, self.config.profile_rows_per_message):
                bodies.append(
                    (
                        MessageKind.PROFILE,
                        ProfileBlock(period, tuple(profile_row(e) for e in block)),
                        False,
                    )
                )
            values["cursor.profile"] = rows[-1].seq
        event_cursors = dict(self.store.get_value("cursor.events") or {})
        events_changed = False
        for kind, log in meter.event_logs.items():
            entries = log.since(int(event_cursors.get(kind.value, 0)))
            if not entries:
                continue
            for block in _chunks(entries, self.config.event_rows_per_message):
                bodies.append(
                    (
                        MessageKind.EVENTS,
                        EventBlock(
                            kind.value,
                            tuple(
                                EventRow(e.seq, round(e.at * 1000), e.code, e.detail) for e in block
                            ),
                        ),
                        False,
                    )
                )
            event_cursors[kind.value] = entries[-1].seq
            events_changed = True
        if events_changed:
            values["cursor.events"] = event_cursors
        if self.config.daily_snapshot:
            today = meter.now.astimezone(zone(meter.config.timezone)).date().isoformat()
            last = self.store.get_value("daily.last")
            if last != today:
                bodies.append((MessageKind.REGISTERS, self._register_read(daily=True), True))
                values["daily.last"] = today
        return self._enqueue(bodies, now, values)

    def _register_read(self, *, daily: bool) -> RegisterRead:
        values = tuple((code, float(v)) for code, v in sorted(self.meter.register_values().items()))
        return RegisterRead(round(self.meter.now.timestamp() * 1000), values, daily)

    def _enqueue(
        self, bodies: list[tuple[MessageKind, Body, bool]], now: float, values: dict[str, Any]
    ) -> int:
        if not bodies and not values:
            return 0
        seq = self.outbox.reserve_seq()
        items = []
        for offset, (kind, body, essential) in enumerate(bodies):
            payload = encode(self._message(kind, seq + offset, body, now))
            items.append((_PRIORITY_OF[kind], essential, int(kind), payload))
        self.outbox.enqueue(items, now, values=values)
        if items:
            self._wake.set()
        return len(items)

    def submit_power_quality(self, rows: list[tuple[int, Any, float]]) -> int:
        """Queue bulk power-quality records ``(at_ms, obis, value)`` (lowest class)."""
        from meterstack.link.schema import PowerQualityBlock  # noqa: PLC0415

        return self._enqueue(
            [(MessageKind.POWER_QUALITY, PowerQualityBlock(tuple(rows)), False)], self._now(), {}
        )

    def seal(self, payload: bytes) -> bytes:
        """Encrypt ``payload`` for the head-end with the current keys and a fresh IC."""
        return seal(
            payload,
            self.keys.current,
            system_title=self.credentials.system_title,
            invocation_counter=self.counter.take(),
            signing_key=self.credentials.meter_signing_key,
        )

    async def run(self) -> None:
        """Send from the outbox until cancelled."""
        while True:
            sent = self.pump()
            if sent:
                await asyncio.sleep(0)
                continue
            wakeup = self.outbox.next_wakeup()
            timeout = 0.5 if wakeup is None else min(max(wakeup - self._now(), 0.001), 0.5)
            await wait_event(self._wake, timeout)
            self._wake.clear()

    def pump(self) -> int:
        """Start sending everything that may go now; return how many publishes started."""
        started = 0
        degraded = self.transport.degraded
        limit = self.config.max_parallel_bulk
        while True:
            now = self._now()
            entry = self.outbox.next_due(now, essential_only=degraded)
            if entry is None:
                return started
            bulk = entry.priority >= Priority.REGISTER
            if bulk and self._bulk_publishing >= limit:
                return started
            self.outbox.mark_sent(entry, now)
            frame = self.seal(entry.payload)
            if bulk:
                self._bulk_publishing += 1
            task = asyncio.ensure_future(self._publish(entry, frame, bulk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1

    async def _publish(self, entry: OutboxEntry, frame: bytes, bulk: bool) -> None:
        try:
            await self.transport.publish(topics.uplink(self.serial, MessageKind(entry.kind)), frame)
        except LinkDownError:
            self.publish_failures += 1
            if entry.seq in self.outbox:
                self.outbox.mark_failed(entry, self._now())
        finally:
            if bulk:
                self._bulk_publishing -= 1
            self._wake.set()

    @property
    def bulk_in_flight(self) -> int:
        """Bulk publishes handed to the transport and not yet settled. [count]"""
        return self._bulk_publishing

    async def stop(self) -> None:
        """End the publishes in flight (what they carried stays in the outbox)."""
        await cancel_all(self._tasks)

    # ---------------------------------------------------------------- downlink
    def _dead_letter(self, topic: str, frame: bytes, reason: RejectReason, detail: str) -> None:
        self.store.add_dead_letter(DeadLetter(self._now(), topic, reason, detail, frame))

    async def receive(self, topic: str, frame: bytes, path: str = "") -> None:
        """Transport callback: handle one downlink frame."""
        self.handle_downlink(topic, frame)

    def handle_downlink(self, topic: str, frame: bytes) -> Message | None:
        """Open, check and act on one downlink frame; a refused frame becomes a dead letter."""
        try:
            message = self._open(topic, frame)
        except EnvelopeError as exc:
            self._dead_letter(topic, frame, exc.reason, exc.detail)
            return None
        if isinstance(message.body, AckBody):
            origin = self.outbox.origin
            held = self.outbox.acknowledge([seq for o, seq in message.body.keys if o == origin])
            self.acks_received += held
            if held:
                self._wake.set()
        elif isinstance(message.body, CommandBody):
            self._command(topic, frame, message.body)
        return message

    def _open(self, topic: str, frame: bytes) -> Message:
        try:
            serial, direction, kind = topics.parse(topic)
        except InvalidInputError as exc:
            raise EnvelopeError(RejectReason.WRONG_METER, str(exc)) from None
        if serial != self.serial or direction != "down":
            raise EnvelopeError(
                RejectReason.WRONG_METER, f"topic {topic} is not this meter's downlink"
            )
        header = read_header(frame)
        if header.system_title == self.credentials.system_title:
            raise EnvelopeError(RejectReason.WRONG_METER, "frame carries this meter's own title")
        keys = self.keys.for_key_id(header.key_id)
        if keys is None:
            raise EnvelopeError(
                RejectReason.UNKNOWN_KEY, f"key generation {header.key_id} is not held"
            )
        _, plaintext = open_frame(frame, keys, verify_key=self.credentials.headend_verify_key)
        if self.replay.seen(header.system_title, header.invocation_counter):
            raise EnvelopeError(
                RejectReason.REPLAY,
                f"invocation counter {header.invocation_counter} of "
                f"{header.system_title.hex()} already seen",
            )
        try:
            message = decode(plaintext)
        except InvalidInputError as exc:
            raise EnvelopeError(RejectReason.BAD_SCHEMA, str(exc)) from None
        if message.meter != self.serial:
            raise EnvelopeError(RejectReason.WRONG_METER, f"message is for {message.meter}")
        if message.kind is not kind:
            raise EnvelopeError(
                RejectReason.BAD_SCHEMA, f"{message.kind.name} message on a {kind.name} topic"
            )
        self.replay.accept(header.system_title, header.invocation_counter)
        if keys is self.keys.current and self.keys.previous is not None:
            # The head-end uses the new keys: the old generation is no longer needed.
            self.keys.retire()
            self.store.put_values({"keys": self.keys.to_state()})
        return message

    # ---------------------------------------------------------------- commands
    def _command(self, topic: str, frame: bytes, command: CommandBody) -> None:
        for command_id, status, detail, result in self._results:
            if command_id == command.command_id:
                self._respond(ResponseBody(command_id, ResponseStatus(status), detail, result))
                return
        if command.expires_ms < round(self._now() * 1000):
            self._dead_letter(topic, frame, RejectReason.EXPIRED, f"command {command.command_id}")
            response = ResponseBody(command.command_id, ResponseStatus.REFUSED, "expired")
        else:
            response = self.execute(command)
        self._results = (
            [
                *self._results,
                [response.command_id, int(response.status), response.detail, response.result],
            ]
        )[-self.config.command_results_kept :]
        self.store.put_values({"commands": self._results})
        self.collect()  # the command may have logged events
        self._respond(response)

    def _respond(self, response: ResponseBody) -> None:
        self._enqueue([(MessageKind.RESPONSE, response, True)], self._now(), {})

    def execute(self, command: CommandBody) -> ResponseBody:
        """Run ``command`` on the meter and say how it went (never raises for bad input)."""
        handler = getattr(self, f"_cmd_{command.name}", None)
        if handler is None:
            return ResponseBody(
                command.command_id, ResponseStatus.UNSUPPORTED, f"unknown command {command.name!r}"
            )
        self.commands_executed += 1
        try:
            detail, result = handler(command.args)
        except CommandRefusedError as exc:
            return ResponseBody(command.command_id, ResponseStatus.REFUSED, exc.reason)
        except FirmwareError as exc:
            return ResponseBody(command.command_id, ResponseStatus.REFUSED, exc.reason)
        except InvalidInputError as exc:
            return ResponseBody(command.command_id, ResponseStatus.INVALID, str(exc))
        except _UnsupportedError as exc:
            return ResponseBody(command.command_id, ResponseStatus.UNSUPPORTED, str(exc))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            return ResponseBody(
                command.command_id, ResponseStatus.INVALID, f"bad arguments: {exc!r}"
            )
        except MeterstackError as exc:
            return ResponseBody(command.command_id, ResponseStatus.ERROR, str(exc))
        if isinstance(result, _Failed):
            return ResponseBody(command.command_id, ResponseStatus.ERROR, detail, result.value)
        return ResponseBody(command.command_id, ResponseStatus.OK, detail, result)

    def _at(self, args: dict[str, Any]) -> datetime:
        at = self._meter_time()
        if "at_ms" in args:
            at = max(at, from_epoch(_int_arg(args, "at_ms") / 1000))
        return at

    def _cmd_remote_disconnect(self, args: dict[str, Any]) -> tuple[str, Any]:
        self.meter.remote_disconnect(self._at(args))
        return f"relay {self.meter.relay.state.name.lower()}", None

    def _cmd_remote_reconnect(self, args: dict[str, Any]) -> tuple[str, Any]:
        self.meter.remote_reconnect(self._at(args))
        return f"relay {self.meter.relay.state.name.lower()}", None

    def _cmd_top_up(self, args: dict[str, Any]) -> tuple[str, Any]:
        amount = Decimal(str(args["amount"]))
        result = self.meter.top_up(amount, self._at(args), str(args.get("reference", "")))
        credit = self.meter.credit
        return f"credit {None if credit is None else credit.credit}", str(result)

    def _cmd_deliver_token(self, args: dict[str, Any]) -> tuple[str, Any]:
        token = str(args["token"])
        if len(token) != 20 or not token.isdigit():
            raise InvalidInputError("args.token", token, "an STS token is 20 digits")
        if self.token_gateway is not None:
            return self.token_gateway(self.meter, token, self._at(args)), None
        if self.meter.token_gateway is None:
            raise _UnsupportedError("the meter has no STS token gateway configured")
        # The meter's own gateway (IEC 62055-41 checks: CRC, key, TID, lockout).
        result = self.meter.enter_token(token, self._at(args))
        if not result.accepted:
            reason = "refused" if result.reason is None else result.reason.value
            raise CommandRefusedError("deliver_token", f"{reason}: {result.effect}")
        return result.effect, {
            "token_class": result.token_class,
            "subclass": result.subclass,
            "tid": result.tid,
            "amount": None if result.amount is None else str(result.amount),
        }

    def _cmd_set_limiter_threshold(self, args: dict[str, Any]) -> tuple[str, Any]:
        threshold = float(args["threshold_w"])
        if not threshold > 0:
            raise InvalidInputError("args.threshold_w", threshold, "a positive power [W]")
        self.meter.set_limiter_threshold(threshold, self._at(args))
        return f"threshold {threshold:.0f} W", None

    def _cmd_set_clock(self, args: dict[str, Any]) -> tuple[str, Any]:
        new_time = from_epoch(_int_arg(args, "new_time_ms") / 1000)
        self.meter.set_clock(self._meter_time(), new_time)
        return f"clock set to {new_time.isoformat()}", None

    def _cmd_billing_reset(self, args: dict[str, Any]) -> tuple[str, Any]:
        record = self.meter.billing_reset(self._at(args))
        return "billing reset", {
            "a_plus_wh": record.a_plus_wh,
            "maximum_demand_w": record.maximum_demand_w,
        }

    def _cmd_set_tariff(self, args: dict[str, Any]) -> tuple[str, Any]:
        if self.meter_store is None:
            raise _UnsupportedError("no non-volatile store to re-commission the meter with")
        update: dict[str, Any] = {}
        config = self.meter.config
        if "tou" in args:
            update["tou"] = args["tou"]
        if "price_per_kwh" in args:
            if config.prepaid is None:
                raise CommandRefusedError("set_tariff", "prices apply to prepaid meters only")
            prepaid = config.prepaid.model_dump()
            prepaid["price_per_kwh"] = {int(k): str(v) for k, v in args["price_per_kwh"].items()}
            update["prepaid"] = prepaid
        if not update:
            raise InvalidInputError("args", args, "give tou and/or price_per_kwh")
        merged = config.model_dump()
        merged.update(update)
        try:
            new_config = MeterConfig.model_validate(merged)
        except ValueError as exc:
            raise InvalidInputError("args", args, f"not a valid tariff: {exc}") from exc
        self.meter.checkpoint()
        restored = Meter.restore(
            new_config, self.meter_store, key_encryption_key=self.meter_key_encryption_key
        )
        if restored is None:
            raise _UnsupportedError("the meter's store holds no image")
        self.meter = restored
        return "tariff activated", sorted(update)

    def _cmd_read_registers(self, args: dict[str, Any]) -> tuple[str, Any]:
        read = self._register_read(daily=False)
        return "registers", {
            "at_ms": read.at_ms,
            "values": [[str(code), value] for code, value in read.values],
        }

    def _cmd_read_profile(self, args: dict[str, Any]) -> tuple[str, Any]:
        from_seq = _int_arg(args, "from_seq")
        rows = self.meter.load_profile.since(from_seq)
        bodies: list[tuple[MessageKind, Body, bool]] = [
            (
                MessageKind.PROFILE,
                ProfileBlock(
                    self.meter.config.capture_period_s, tuple(profile_row(e) for e in block)
                ),
                False,
            )
            for block in _chunks(rows, max(self.config.profile_rows_per_message, 48))
        ]
        self._enqueue(bodies, self._now(), {})
        return f"{len(rows)} profile rows queued", {"rows": len(rows)}

    def _cmd_read_events(self, args: dict[str, Any]) -> tuple[str, Any]:
        log = LogKind(str(args["log"]))
        entries = self.meter.event_logs[log].since(_int_arg(args, "from_seq"))
        bodies: list[tuple[MessageKind, Body, bool]] = [
            (
                MessageKind.EVENTS,
                EventBlock(
                    log.value,
                    tuple(EventRow(e.seq, round(e.at * 1000), e.code, e.detail) for e in block),
                ),
                False,
            )
            for block in _chunks(entries, self.config.event_rows_per_message)
        ]
        self._enqueue(bodies, self._now(), {})
        return f"{len(entries)} events queued", {"rows": len(entries)}

    def _cmd_diagnostics(self, args: dict[str, Any]) -> tuple[str, Any]:
        return "diagnostics", self.diagnostics()

    def diagnostics(self) -> dict[str, Any]:
        """Link quality, outbox depth, last errors: what remote troubleshooting reads."""
        letters = self.store.dead_letters(5)
        return {
            "link": self.transport.diagnostics(),
            "outbox": asdict(self.outbox.stats()),
            "last_errors": [
                {"at": letter.at, "reason": letter.reason.value, "detail": letter.detail}
                for letter in letters
            ],
            "dead_letters": {k.value: v for k, v in self.store.dead_letter_counts().items()},
            "publish_failures": self.publish_failures,
            "key_id": self.keys.current.key_id,
            "invocation_counter": self.counter.next_value,
            "firmware": None if self.firmware is None else self.firmware.status().to_wire(),
        }

    def _cmd_rotate_key(self, args: dict[str, Any]) -> tuple[str, Any]:
        key_id = _int_arg(args, "key_id")
        suite = self.keys.suite
        new = SessionKeys(
            suite,
            key_id,
            unwrap_key(self.credentials.kek, args["wrapped_ek"], "args.wrapped_ek"),
            unwrap_key(self.credentials.kek, args["wrapped_ak"], "args.wrapped_ak"),
        )
        self.keys.install(new)
        self.store.put_values({"keys": self.keys.to_state()})
        return f"key generation {key_id} installed", {"key_id": key_id}

    def _slot(self) -> FirmwareSlot:
        if self.firmware is None:
            raise _UnsupportedError("this module has no firmware slot")
        return self.firmware

    def _cmd_firmware_offer(self, args: dict[str, Any]) -> tuple[str, Any]:
        status = self._slot().offer(FirmwareManifest.from_wire(args))
        return f"receiving from offset {status.next_offset}", status.to_wire()

    def _cmd_firmware_chunk(self, args: dict[str, Any]) -> tuple[str, Any]:
        status = self._slot().chunk(str(args["version"]), _int_arg(args, "offset"), args["data"])
        return f"next offset {status.next_offset}", status.to_wire()

    def _cmd_firmware_status(self, args: dict[str, Any]) -> tuple[str, Any]:
        status = self._slot().status()
        return status.state.value, status.to_wire()

    def _cmd_firmware_activate(self, args: dict[str, Any]) -> tuple[str, Any]:
        status = self._slot().activate()
        if status.state is FirmwareState.ROLLED_BACK:
            return status.detail, _Failed(status.to_wire())
        return status.detail, status.to_wire()


class _UnsupportedError(Exception):
    pass


@dataclass(frozen=True)
class _Failed:
    value: Any


def _int_arg(args: dict[str, Any], name: str) -> int:
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"args.{name}", value, "expected an integer")
    return value


def route_downlink(modules: dict[str, CommunicationModule]) -> Callable[[str, bytes, str], Any]:
    """A transport callback that hands each downlink frame to its meter's module (a data
    concentrator: many meters behind one connection). Frames for unknown meters are
    ignored here; the transport only subscribes to the meters it serves."""

    async def deliver(topic: str, frame: bytes, path: str) -> None:
        parts = topic.split("/")
        module = modules.get(parts[2]) if len(parts) == 5 else None
        if module is not None:
            module.handle_downlink(topic, frame)

    return deliver


def meter_clock_at(meter: Meter, seconds: float) -> datetime:
    """The meter's time ``seconds`` after its latest: for simulations stepping a meter."""
    return ensure_utc(meter.now) + timedelta(seconds=seconds)
