"""A ring buffer of numbered entries: the storage of the load profile and the event logs.

Entries are numbered from 1 without gaps (``seq``), so a reader that has seen entry ``n``
knows exactly what it has missed; when the buffer is full the oldest entry is overwritten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Generic, TypeVar

Entry = TypeVar("Entry")


class NumberedRing(Generic[Entry]):
    """Numbered entries, oldest first, at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self.last_seq = 0

    def _push(self, entry: Entry) -> Entry:
        self._entries.append(entry)
        return entry

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def held(self) -> Sequence[Entry]:
        """The buffer itself, oldest first (read-only by convention; no copy)."""
        return self._entries

    def since(self, seq: int) -> list[Entry]:
        """Entries numbered above ``seq`` that are still held."""
        count = min(self.last_seq - seq, len(self._entries))
        if count <= 0:
            return []
        newest_first = list(islice(reversed(self._entries), count))
        newest_first.reverse()
        return newest_first

    def restore(self, entries: list[Entry], last_seq: int) -> None:
        self._entries.clear()
        self._entries.extend(entries)
        self.last_seq = last_seq
