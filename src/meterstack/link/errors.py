"""Errors of the link layer: each names what was wrong, and a rejected frame keeps its reason."""

from __future__ import annotations

from enum import StrEnum

from meterstack.core.errors import InvalidInputError, MeterstackError, StoreError


class RejectReason(StrEnum):
    """Why a frame or message was not accepted (the reason a dead letter carries)."""

    MALFORMED = "malformed"  # the envelope header cannot be parsed
    UNKNOWN_SENDER = "unknown_sender"  # no keys for this system title / meter
    UNKNOWN_KEY = "unknown_key"  # the key generation is not (or no longer) accepted
    SUITE_MISMATCH = "suite_mismatch"  # the frame's suite is not the one agreed with the sender
    AUTHENTICATION_FAILED = "authentication_failed"  # GCM tag does not verify (tampered)
    BAD_SIGNATURE = "bad_signature"  # ECDSA signature does not verify
    REPLAY = "replay"  # invocation counter already seen or too old
    BAD_SCHEMA = "bad_schema"  # decrypted, but not a valid message of this schema version
    WRONG_METER = "wrong_meter"  # topic, key owner and message disagree about the meter
    EXPIRED = "expired"  # a command that arrived after its expiry


class LinkError(MeterstackError):
    """Something went wrong on the link."""


class EnvelopeError(LinkError):
    """A frame was rejected by the security layer.

    Attributes
    ----------
    reason : RejectReason
        Why, as a code a dead-letter store can count.
    detail : str
        Words for a person.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"frame rejected ({reason.value}): {detail}")

    def __reduce__(self) -> tuple[type, tuple[RejectReason, str]]:
        return (type(self), (self.reason, self.detail))


class SchemaError(InvalidInputError):
    """A decoded message does not follow the schema; ``field`` names the place."""


class CounterExhaustedError(LinkError):
    """The invocation counter of a key is used up: the key must be rotated before sending."""

    hint = "rotate the meter's keys (headend key rotation); GCM nonces must never repeat"


class LinkDownError(LinkError):
    """No path could carry a message now; the outbox keeps it and retries."""

    hint = "check that the MQTT broker is reachable; messages stay in the outbox meanwhile"


class FirmwareError(LinkError):
    """A firmware image or transfer was refused; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"firmware refused: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.reason,))


class LinkStoreError(StoreError):
    """The link's persistent store could not be read or written."""
