"""The command queue: every command to a meter, its state, retries and timeouts.

States::

    queued --send--> sent --response OK--> acknowledged
                      |  --response not OK--> failed (refused, invalid, unsupported, error)
                      |  --no response in timeout_s--> sent again (attempts + 1)
                      |  --max_attempts without response--> failed
    queued/sent --past expires--> expired

The command id is the message's idempotency key at the meter: a retry carries the same id,
and a meter that already executed it answers with the stored response instead of executing
it twice. The queue lives in the head-end database, so it survives a restart, and the
responses are recorded by whichever ingest worker receives them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cbor2

from meterstack.core.aio import wait_event
from meterstack.core.errors import InvalidInputError
from meterstack.core.time import Clock
from meterstack.headend.downlink import Downlink
from meterstack.headend.store import HeadEndStore
from meterstack.link.errors import LinkDownError
from meterstack.link.schema import CommandBody, MessageKind, ResponseStatus

COMMAND_NAMES = frozenset(
    {
        "remote_disconnect",
        "remote_reconnect",
        "top_up",
        "deliver_token",
        "set_limiter_threshold",
        "set_clock",
        "billing_reset",
        "set_tariff",
        "read_registers",
        "read_profile",
        "read_events",
        "diagnostics",
        "rotate_key",
        "firmware_offer",
        "firmware_chunk",
        "firmware_activate",
        "firmware_status",
    }
)


class CommandState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def settled(self) -> bool:
        return self in (CommandState.ACKNOWLEDGED, CommandState.FAILED, CommandState.EXPIRED)


@dataclass(frozen=True)
class CommandRecord:
    id: int
    meter: str
    name: str
    args: dict[str, Any]
    state: CommandState
    attempts: int
    max_attempts: int
    timeout_s: float
    created: float
    expires: float
    deadline: float | None
    status: ResponseStatus | None
    detail: str | None
    result: Any


_COLUMNS = (
    "id, meter, name, args, state, attempts, max_attempts, timeout_s, created, expires, "
    "deadline, status, detail, result"
)


def _record(row: Any) -> CommandRecord:
    (ident, meter, name, args, state, attempts, max_attempts, timeout_s, created, expires,
     deadline, status, detail, result) = row  # fmt: skip
    return CommandRecord(
        ident,
        meter,
        name,
        cbor2.loads(bytes.fromhex(args)),
        CommandState(state),
        attempts,
        max_attempts,
        timeout_s,
        created,
        expires,
        deadline,
        None if status is None else ResponseStatus(status),
        detail,
        None if result is None else cbor2.loads(bytes.fromhex(result)),
    )


class CommandQueue:
    """Commands in the head-end database."""

    def __init__(self, store: HeadEndStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def submit(
        self,
        meter: str,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 3,
        ttl_s: float = 3600.0,
    ) -> int:
        """Queue a command; return its id.

        Raises
        ------
        InvalidInputError
            Unknown meter or command, arguments that cannot be sent, or limits out of range.
        """
        if name not in COMMAND_NAMES:
            raise InvalidInputError("name", name, f"one of {', '.join(sorted(COMMAND_NAMES))}")
        if self.store.meter(meter) is None:
            raise InvalidInputError("meter", meter, "not a registered meter")
        if not timeout_s > 0 or not ttl_s > 0:
            raise InvalidInputError("timeout_s", timeout_s, "timeouts must be positive")
        if max_attempts < 1:
            raise InvalidInputError("max_attempts", max_attempts, "at least 1")
        args = dict(args or {})
        try:
            encoded = cbor2.dumps(args).hex()
        except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
            raise InvalidInputError("args", args, f"cannot be encoded: {exc}") from exc
        now = self.clock.now().timestamp()
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO commands (meter, name, args, state, max_attempts, timeout_s, "
                "created, expires, updated) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (meter, name, encoded, max_attempts, timeout_s, now, now + ttl_s, now),
            )
            ident = cursor.lastrowid
        assert ident is not None
        return ident

    def get(self, command_id: int) -> CommandRecord:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM commands WHERE id = ?", (command_id,))
        if not rows:
            raise InvalidInputError("command_id", command_id, "no such command")
        return _record(rows[0])

    def for_meter(self, meter: str) -> list[CommandRecord]:
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM commands WHERE meter = ? ORDER BY id", (meter,)
        )
        return [_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT state, COUNT(*) FROM commands GROUP BY state")
        return dict(rows)

    def expire(self, now: float) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE commands SET state = 'expired', detail = 'expired before a response', "
                "updated = ? WHERE state IN ('queued', 'sent') AND expires <= ?",
                (now, now),
            )
            return cursor.rowcount

    def give_up(self, now: float) -> int:
        """Fail the commands sent ``max_attempts`` times without a response."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE commands SET state = 'failed', detail = 'no response after ' || "
                "attempts || ' attempts', updated = ? WHERE state = 'sent' AND deadline <= ? "
                "AND attempts >= max_attempts",
                (now, now),
            )
            return cursor.rowcount

    def due(self, now: float, limit: int = 256) -> list[CommandRecord]:
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM commands WHERE state = 'queued' OR "
            "(state = 'sent' AND deadline <= ? AND attempts < max_attempts) ORDER BY id LIMIT ?",
            (now, limit),
        )
        return [_record(row) for row in rows]

    def mark_sent(self, command_id: int, now: float, timeout_s: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE commands SET state = 'sent', attempts = attempts + 1, sent_at = ?, "
                "deadline = ?, updated = ? WHERE id = ? AND state IN ('queued', 'sent')",
                (now, now + timeout_s, now, command_id),
            )

    def summary(self, command_id: int) -> dict[str, Any]:
        record = self.get(command_id)
        return {
            "id": record.id,
            "meter": record.meter,
            "name": record.name,
            "state": record.state.value,
            "attempts": record.attempts,
            "status": None if record.status is None else record.status.name.lower(),
            "detail": record.detail,
            "result": json.loads(json.dumps(record.result, default=repr)),
        }


class CommandDispatcher:
    """Sends due commands, resends unanswered ones, expires and fails the rest."""

    def __init__(self, queue: CommandQueue, downlink: Downlink, *, poll_s: float = 0.05) -> None:
        self.queue = queue
        self.downlink = downlink
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self.send_failures = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self.dispatch_once()
            await wait_event(self._wake, self.poll_s)
            self._wake.clear()

    async def dispatch_once(self) -> int:
        now = self.queue.clock.now().timestamp()
        self.queue.expire(now)
        self.queue.give_up(now)
        sent = 0
        for command in self.queue.due(now):
            record = self.queue.store.meter(command.meter)
            if record is None:
                continue
            body = CommandBody(
                command.id, command.name, command.args, round(command.expires * 1000)
            )
            # Sent or not, the attempt counts and the timeout runs: a retry follows. It is
            # counted before the publish: the meter's answer can be applied before the
            # broker's PUBACK wakes this task, and a settled command is not marked again.
            self.queue.mark_sent(command.id, now, command.timeout_s)
            try:
                await self.downlink.send(record, MessageKind.COMMAND, body, seq=command.id)
            except LinkDownError:
                self.send_failures += 1
            sent += 1
        return sent

    async def wait(self, command_id: int, timeout: float) -> CommandRecord:
        """Wait until the command is settled (or ``timeout`` seconds); return its record."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            record = self.queue.get(command_id)
            if record.state.settled or loop.time() >= end:
                return record
            await asyncio.sleep(0.01)
