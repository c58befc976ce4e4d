"""Invocation counters that never repeat, and replay windows that reject old ones.

A sender must never use an invocation counter (IC) twice under one key: in GCM a repeated
nonce reveals the XOR of two plaintexts and lets the authentication key be recovered [1]_.
:class:`InvocationCounter` persists a *reservation* ahead of the values it hands out (a
block of ``reserve`` values at a time), so a crash at any instant resumes above every value
that may have been used, at the cost of skipping at most one block.

A receiver keeps, per sender system title, a sliding window of the highest IC accepted and
a bitmap of the ``size`` values below it, as IPsec ESP does [2]_: a new IC above the top is
accepted and slides the window; one inside the window is accepted once; one below it is a
replay. Out-of-order arrival (two paths, retries) is therefore fine, duplicates are not.

References
----------
.. [1] A. Joux, "Authentication failures in NIST version of GCM", 2006.
.. [2] RFC 4303, IP Encapsulating Security Payload, 3.4.3 Sequence Number Verification.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from meterstack.core.errors import InvalidInputError
from meterstack.link.envelope import MAX_INVOCATION_COUNTER
from meterstack.link.errors import CounterExhaustedError


class CounterStore(Protocol):
    """Where reservations of invocation counters are kept (durably, atomically)."""

    def load_counter(self, name: str) -> int | None: ...

    def save_counter(self, name: str, value: int) -> None: ...


class ReplayStore(Protocol):
    """Where receivers' replay windows are kept."""

    def load_window(self, sender: bytes) -> tuple[int, int] | None: ...

    def save_window(self, sender: bytes, top: int, bitmap: int) -> None: ...


class MemoryCounterStore:
    """Counters and windows in a dict (tests; a meter without non-volatile memory)."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.windows: dict[bytes, tuple[int, int]] = {}

    def load_counter(self, name: str) -> int | None:
        return self.counters.get(name)

    def save_counter(self, name: str, value: int) -> None:
        self.counters[name] = value

    def load_window(self, sender: bytes) -> tuple[int, int] | None:
        return self.windows.get(sender)

    def save_window(self, sender: bytes, top: int, bitmap: int) -> None:
        self.windows[sender] = (top, bitmap)


class InvocationCounter:
    """A persisted, strictly increasing 32-bit counter.

    Parameters
    ----------
    store : CounterStore
        Durable store of the reservation.
    name : str
        Which counter (one per sender system title).
    reserve : int
        Values handed out per store write. [count]
    """

    def __init__(self, store: CounterStore, name: str, *, reserve: int = 256) -> None:
        if reserve < 1:
            raise InvalidInputError("reserve", reserve, "reserve at least one value per write")
        self._store = store
        self._name = name
        self._reserve = reserve
        reserved = store.load_counter(name)
        # After a restart everything up to the old reservation may have been used.
        self._next = 1 if reserved is None else reserved
        self._limit = self._next

    @property
    def next_value(self) -> int:
        """The value the next call to :meth:`take` returns."""
        return self._next

    def take(self) -> int:
        """The next unused value.

        Raises
        ------
        CounterExhaustedError
            All 2**32 values are used: the key must be rotated.
        """
        value = self._next
        if value > MAX_INVOCATION_COUNTER:
            raise CounterExhaustedError(f"invocation counter {self._name} is exhausted")
        if value >= self._limit:
            self._limit = min(value + self._reserve, MAX_INVOCATION_COUNTER + 1)
            self._store.save_counter(self._name, self._limit)
        self._next = value + 1
        return value


@dataclass
class ReplayWindow:
    """The sliding window of one sender: the top IC accepted and a bitmap below it.

    Bit ``k`` of ``bitmap`` is set when ``top - k`` has been accepted (bit 0 is ``top``).
    """

    size: int = 1024
    top: int = 0
    bitmap: int = 0

    def seen(self, counter: int) -> bool:
        """Whether ``counter`` must be rejected (already accepted or older than the window)."""
        if counter > self.top:
            return False
        offset = self.top - counter
        if offset >= self.size:
            return True
        return bool(self.bitmap >> offset & 1)

    def accept(self, counter: int) -> None:
        """Record ``counter`` as used. Call only after :meth:`seen` said no."""
        if counter > self.top:
            shift = counter - self.top
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << self.size) - 1)
            self.top = counter
        else:
            self.bitmap |= 1 << (self.top - counter)


class ReplayGuard:
    """Replay windows of every sender a receiver hears, persisted in a :class:`ReplayStore`."""

    def __init__(self, store: ReplayStore, *, size: int = 1024) -> None:
        if size < 1:
            raise InvalidInputError("size", size, "a replay window holds at least one value")
        self._store = store
        self._size = size
        self._windows: dict[bytes, ReplayWindow] = {}

    def _window(self, sender: bytes) -> ReplayWindow:
        window = self._windows.get(sender)
        if window is None:
            saved = self._store.load_window(sender)
            window = ReplayWindow(self._size)
            if saved is not None:
                window.top, window.bitmap = saved
            self._windows[sender] = window
        return window

    def seen(self, sender: bytes, counter: int) -> bool:
        return self._window(sender).seen(counter)

    def accept(self, sender: bytes, counter: int, *, persist: bool = True) -> None:
        window = self._window(sender)
        window.accept(counter)
        if persist:
            self._store.save_window(sender, window.top, window.bitmap)

    def persist(self, sender: bytes) -> None:
        """Write ``sender``'s window now (after a batch accepted with ``persist=False``)."""
        window = self._window(sender)
        self._store.save_window(sender, window.top, window.bitmap)

    def forget(self) -> None:
        """Drop the cached windows (another process may have moved them)."""
        self._windows.clear()

    def load(self, senders: Iterable[bytes]) -> None:
        """Read the windows of ``senders`` now, in one query where the store offers
        ``load_windows`` (a receiver does this at the start of a batch)."""
        missing = [sender for sender in dict.fromkeys(senders) if sender not in self._windows]
        load_many = getattr(self._store, "load_windows", None)
        if load_many is None:
            for sender in missing:
                self._window(sender)
            return
        saved: dict[bytes, tuple[int, int]] = load_many(missing)
        for sender in missing:
            window = ReplayWindow(self._size)
            if sender in saved:
                window.top, window.bitmap = saved[sender]
            self._windows[sender] = window

    def persist_all(self, senders: Iterable[bytes]) -> None:
        """:meth:`persist` for several senders, in one statement where the store offers
        ``save_windows``."""
        senders = list(senders)
        save_many = getattr(self._store, "save_windows", None)
        if save_many is None:
            for sender in senders:
                self.persist(sender)
            return
        save_many([(s, self._window(s).top, self._window(s).bitmap) for s in senders])
