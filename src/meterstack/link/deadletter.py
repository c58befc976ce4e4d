"""The dead-letter store: every frame or message that was not accepted, with its reason.

Nothing that arrives is silently dropped. A frame that fails authentication, a replay, a
message that does not decode, a command past its expiry: each is kept here with the raw
bytes, where it came from and why it was refused, so an operator can count, inspect and
(for a bug on our side) replay it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from meterstack.link.errors import RejectReason


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused frame."""

    at: float  # POSIX seconds, UTC
    source: str  # the topic (or path) it came from
    reason: RejectReason
    detail: str
    frame: bytes


class DeadLetterStore(Protocol):
    """Where refused frames are kept."""

    def add_dead_letter(self, letter: DeadLetter) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def dead_letter_counts(self) -> dict[RejectReason, int]: ...


class MemoryDeadLetters:
    """A dead-letter store in memory (tests, simulations)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self.letters[-limit:]

    def dead_letter_counts(self) -> dict[RejectReason, int]:
        return dict(Counter(letter.reason for letter in self.letters))
