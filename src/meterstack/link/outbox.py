"""The outbox: persistent store-and-forward with priority classes.

Everything a meter sends goes through its outbox. An entry is stored (SQLite, one
transaction) before it is sent and deleted only when the head-end acknowledges it, so a
crash, a dead broker or a lost link loses nothing. Each entry has the idempotency key
``(meter, origin, seq)``: ``origin`` is drawn once when the outbox is created, ``seq``
counts its entries; the head-end applies each key once, so a retransmission is harmless.

Priority classes, best first (:class:`Priority`)::

    ALARM > RESPONSE (to a command) > REGISTER (register reads, event logs)
          > PROFILE (load profile) > POWER_QUALITY (bulk)

The next entry to send is the oldest ready entry of the best class, so an alarm goes out
before any queued bulk data. Bulk classes (REGISTER and below) are limited to
``max_in_flight_bulk`` unacknowledged entries, so they cannot fill the link ahead of an
alarm; alarms and responses are never held back. In degraded mode only *essential* entries
go (alarms, responses, the daily register snapshot).

Retries: an entry sent and not acknowledged within ``ack_timeout_s`` is sent again, after
``ack_timeout_s * 2**(attempts - 1)`` (capped at ``backoff_max_s``, with up to
``jitter`` relative random spread); an entry whose send failed waits
``backoff_base_s * 2**(attempts - 1)`` (same cap).

Overflow: above ``capacity_bytes`` the oldest entry of the lowest class present is dropped,
POWER_QUALITY first, then PROFILE, then REGISTER. Alarms and responses are never dropped;
they may take the outbox beyond its capacity. Dropped entries are counted per class
(``dropped``); load-profile rows dropped here are still in the meter's 60-day profile
buffer and the head-end re-reads them (``read_profile``) when it sees the gap in ``seq``.
The default capacity (4 MiB) holds more than 60 days of 30-minute profile sent one
interval per message (2880 entries of ~100 bytes).
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from meterstack.core.errors import InvalidInputError


class Priority(IntEnum):
    """Priority classes of the outbox, 0 best."""

    ALARM = 0
    RESPONSE = 1
    REGISTER = 2
    PROFILE = 3
    POWER_QUALITY = 4


#: Classes dropped on overflow, first to last.
OVERFLOW_ORDER = (Priority.POWER_QUALITY, Priority.PROFILE, Priority.REGISTER)


class OutboxStore(Protocol):
    """Durable rows of one outbox (:class:`~meterstack.link.store.MeterLinkStore`)."""

    def load_outbox(self) -> list[tuple[int, int, bool, int, float, bytes]]: ...

    def insert_outbox(
        self,
        entries: list[tuple[int, int, bool, int, float, bytes]],
        deleted: list[int],
        values: dict[str, Any],
    ) -> None: ...

    def delete_outbox(self, seqs: list[int]) -> None: ...

    def get_value(self, name: str) -> Any: ...

    def put_values(self, values: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class OutboxPolicy:
    """How the outbox retries, limits and overflows.

    Attributes
    ----------
    capacity_bytes : int
        Payload bytes kept before bulk entries are dropped. [bytes]
    ack_timeout_s : float
        Wait for an acknowledgement before sending again. [s]
    backoff_base_s : float
        First wait after a failed send. [s]
    backoff_max_s : float
        Longest wait between attempts. [s]
    jitter : float
        Relative random spread added to every wait, 0-1. [1]
    max_in_flight_bulk : int
        Unacknowledged bulk entries (REGISTER and below) at once. [count]
    """

    capacity_bytes: int = 4 * 1024 * 1024
    ack_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    jitter: float = 0.1
    max_in_flight_bulk: int = 32

    def __post_init__(self) -> None:
        for name in ("capacity_bytes", "ack_timeout_s", "backoff_base_s", "backoff_max_s"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(name, getattr(self, name), "must be positive")
        if not 0 <= self.jitter <= 1:
            raise InvalidInputError("jitter", self.jitter, "a fraction 0-1")
        if self.max_in_flight_bulk < 1:
            raise InvalidInputError("max_in_flight_bulk", self.max_in_flight_bulk, "at least 1")


@dataclass
class OutboxEntry:
    """One stored message (plaintext CBOR: it is encrypted afresh at every attempt)."""

    seq: int
    priority: Priority
    essential: bool
    kind: int
    created: float
    payload: bytes
    attempts: int = 0
    in_flight: bool = False
    due: float = 0.0


@dataclass
class OutboxStats:
    depth: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    in_flight: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    retransmitted: int = 0
    acknowledged: int = 0


class Outbox:
    """The priority outbox of one meter.

    Parameters
    ----------
    store : OutboxStore
        Durable rows (the meter's :class:`~meterstack.link.store.MeterLinkStore`).
    policy : OutboxPolicy
        Retries, limits, capacity.
    rng : random.Random, optional
        Source of jitter and of a new outbox's ``origin`` (seed it for reproducible tests).
    """

    def __init__(
        self,
        store: OutboxStore,
        policy: OutboxPolicy | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self.policy = policy or OutboxPolicy()
        self._rng = rng or random.Random()
        origin = store.get_value("outbox.origin")
        if origin is None:
            origin = self._rng.randrange(1, 2**32)
            store.put_values({"outbox.origin": origin})
        self.origin: int = int(origin)
        self._dropped: dict[int, int] = {
            int(k): v for k, v in (store.get_value("outbox.dropped") or {}).items()
        }
        self._entries: dict[int, OutboxEntry] = {}
        self._by_class: dict[Priority, OrderedDict[int, None]] = {
            p: OrderedDict() for p in Priority
        }
        self._ready: dict[tuple[int, bool], list[int]] = {
            (p, e): [] for p in Priority for e in (True, False)
        }
        self._waiting: list[tuple[float, int]] = []
        self._in_flight_bulk: set[int] = set()
        self._bytes = 0
        self.sent = 0
        self.retransmitted = 0
        self.acknowledged = 0
        next_seq = int(store.get_value("outbox.next_seq") or 1)
        for seq, priority, essential, kind, created, payload in store.load_outbox():
            self._add(OutboxEntry(seq, Priority(priority), essential, kind, created, payload))
            next_seq = max(next_seq, seq + 1)
        self._next_seq = next_seq

    # ---------------------------------------------------------------- adding
    def _add(self, entry: OutboxEntry) -> None:
        self._entries[entry.seq] = entry
        self._by_class[entry.priority][entry.seq] = None
        self._bytes += len(entry.payload)
        heapq.heappush(self._ready[(entry.priority, entry.essential)], entry.seq)

    def reserve_seq(self) -> int:
        """The ``seq`` the next entry gets (messages embed it before they are stored)."""
        return self._next_seq

    def enqueue(
        self,
        items: list[tuple[Priority, bool, int, bytes]],
        now: float,
        *,
        values: dict[str, Any] | None = None,
    ) -> list[OutboxEntry]:
        """Store ``items`` — ``(priority, essential, kind, payload)``, numbered from
        :meth:`reserve_seq` in order — and ``values`` (cursors) in one transaction."""
        entries = []
        for offset, (priority, essential, kind, payload) in enumerate(items):
            if not isinstance(payload, bytes):
                raise InvalidInputError(f"items[{offset}].payload", payload, "expected bytes")
            entries.append(
                OutboxEntry(
                    self._next_seq + offset, Priority(priority), essential, kind, now, payload
                )
            )
        dropped = self._make_room(sum(len(e.payload) for e in entries))
        stored_values = dict(values or {})
        stored_values["outbox.next_seq"] = self._next_seq + len(entries)
        if dropped:
            stored_values["outbox.dropped"] = {str(k): v for k, v in self._dropped.items()}
        self._store.insert_outbox(
            [(e.seq, int(e.priority), e.essential, e.kind, e.created, e.payload) for e in entries],
            dropped,
            stored_values,
        )
        self._next_seq += len(entries)
        for entry in entries:
            self._add(entry)
        return entries

    def _make_room(self, incoming: int) -> list[int]:
        dropped: list[int] = []
        excess = self._bytes + incoming - self.policy.capacity_bytes
        for priority in OVERFLOW_ORDER:
            queue = self._by_class[priority]
            while excess > 0 and queue:
                seq, _ = queue.popitem(last=False)
                entry = self._entries.pop(seq)
                self._bytes -= len(entry.payload)
                self._in_flight_bulk.discard(seq)
                excess -= len(entry.payload)
                self._dropped[priority] = self._dropped.get(priority, 0) + 1
                dropped.append(seq)
        return dropped

    # ---------------------------------------------------------------- sending
    def _release_due(self, now: float) -> None:
        waiting = self._waiting
        while waiting and waiting[0][0] <= now:
            due, seq = heapq.heappop(waiting)
            entry = self._entries.get(seq)
            if entry is None or entry.due != due:
                continue
            if entry.in_flight:
                entry.in_flight = False
                self._in_flight_bulk.discard(seq)
            heapq.heappush(self._ready[(entry.priority, entry.essential)], seq)

    def next_due(self, now: float, *, essential_only: bool = False) -> OutboxEntry | None:
        """The entry to send now, or ``None``. It stays in the ready set until
        :meth:`mark_sent` or :meth:`mark_failed`."""
        self._release_due(now)
        bulk_full = len(self._in_flight_bulk) >= self.policy.max_in_flight_bulk
        for priority in Priority:
            if bulk_full and priority >= Priority.REGISTER:
                return None
            for essential in (True, False) if not essential_only else (True,):
                heap = self._ready[(priority, essential)]
                while heap:
                    entry = self._entries.get(heap[0])
                    if entry is None or entry.in_flight or entry.due > now:
                        heapq.heappop(heap)
                        continue
                    return entry
        return None

    def _wait(self, base: float, attempts: int) -> float:
        wait = min(base * 2 ** max(attempts - 1, 0), self.policy.backoff_max_s)
        return float(wait * (1 + self.policy.jitter * self._rng.random()))

    def mark_sent(self, entry: OutboxEntry, now: float) -> None:
        """``entry`` went out; expect its acknowledgement within the ack timeout."""
        heap = self._ready[(entry.priority, entry.essential)]
        if heap and heap[0] == entry.seq:
            heapq.heappop(heap)
        entry.attempts += 1
        self.sent += 1
        if entry.attempts > 1:
            self.retransmitted += 1
        entry.in_flight = True
        if entry.priority >= Priority.REGISTER:
            self._in_flight_bulk.add(entry.seq)
        entry.due = now + self._wait(self.policy.ack_timeout_s, entry.attempts)
        heapq.heappush(self._waiting, (entry.due, entry.seq))

    def mark_failed(self, entry: OutboxEntry, now: float) -> None:
        """Sending ``entry`` failed (no path): wait and try again."""
        heap = self._ready[(entry.priority, entry.essential)]
        if heap and heap[0] == entry.seq:
            heapq.heappop(heap)
        entry.attempts += 1
        entry.in_flight = False
        self._in_flight_bulk.discard(entry.seq)
        entry.due = now + self._wait(self.policy.backoff_base_s, entry.attempts)
        heapq.heappush(self._waiting, (entry.due, entry.seq))

    def acknowledge(self, seqs: list[int]) -> int:
        """The head-end applied these entries: forget them. Returns how many were held."""
        held = list(dict.fromkeys(seq for seq in seqs if seq in self._entries))
        if not held:
            return 0
        self._store.delete_outbox(held)
        for seq in held:
            entry = self._entries.pop(seq)
            del self._by_class[entry.priority][seq]
            self._bytes -= len(entry.payload)
            self._in_flight_bulk.discard(seq)
        self.acknowledged += len(held)
        return len(held)

    def next_wakeup(self) -> float | None:
        """When a waiting entry becomes due (POSIX seconds), if any waits."""
        return self._waiting[0][0] if self._waiting else None

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, seq: object) -> bool:
        return seq in self._entries

    def depth(self) -> dict[Priority, int]:
        return {priority: len(queue) for priority, queue in self._by_class.items()}

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def dropped(self) -> dict[Priority, int]:
        return {Priority(k): v for k, v in self._dropped.items()}

    def stats(self) -> OutboxStats:
        return OutboxStats(
            depth={p.name.lower(): n for p, n in self.depth().items()},
            bytes=self._bytes,
            in_flight=sum(1 for e in self._entries.values() if e.in_flight),
            dropped={p.name.lower(): n for p, n in self.dropped.items()},
            sent=self.sent,
            retransmitted=self.retransmitted,
            acknowledged=self.acknowledged,
        )
