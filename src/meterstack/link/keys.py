"""Keys: provisioning, wrapping under a key-encryption key, and rotation without loss.

Every meter is provisioned with a key-encryption key (KEK, the DLMS "master key") that never
encrypts messages. New session keys (EK, AK) travel to the meter wrapped under it with the
AES key wrap of RFC 3394 [1]_ (SM4 meters too: the wrap is AES under a 128-bit KEK).

Rotation (:class:`KeyRing`)::

    head-end                                          meter
    offer(new)  -- rotate_key{id, wrap(EK), wrap(AK)} under old -->
    accepts old and new                                install(new): sends with new,
                                                       still accepts old downlink
    confirm(new) <-- response OK, under new ----------
    sends with new; old accepted until the meter acknowledged (the response)
                -- anything under new ------------------>  retire(old)

A message the meter sent under the old key that arrives after the old key was retired is
refused (dead letter, ``unknown_key``) and, being unacknowledged, sent again from the
outbox under the new key: nothing is lost.

References
----------
.. [1] RFC 3394, Advanced Encryption Standard (AES) Key Wrap Algorithm, 2002.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from meterstack.core.errors import InvalidInputError
from meterstack.core.ids import validate_serial
from meterstack.link.envelope import SecuritySuite, SessionKeys, validate_system_title

RandomBytes = Callable[[int], bytes]


class KeyWrapError(InvalidInputError):
    """A wrapped key does not unwrap under the KEK (altered, or another KEK)."""


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """Wrap ``key`` (16 or 32 bytes) under ``kek`` (16, 24 or 32 bytes), RFC 3394 2.2.1."""
    if len(kek) not in (16, 24, 32):
        raise InvalidInputError("kek", f"{len(kek)} bytes", "a KEK is 16, 24 or 32 bytes")
    if len(key) < 16 or len(key) % 8:
        raise InvalidInputError("key", f"{len(key)} bytes", "wrap 16 bytes or more, 8 at a time")
    return aes_key_wrap(kek, key)


def unwrap_key(kek: bytes, wrapped: bytes, field: str = "wrapped_key") -> bytes:
    """Unwrap and check the integrity value (RFC 3394 2.2.2, 2.2.3)."""
    if not isinstance(wrapped, bytes) or len(wrapped) < 24 or len(wrapped) % 8:
        raise KeyWrapError(field, wrapped, "a wrapped key is 24 bytes or more, 8 at a time")
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise KeyWrapError(
            field, wrapped.hex(), "integrity check failed: wrong KEK or altered"
        ) from None


def generate_session_keys(
    suite: SecuritySuite, key_id: int, random_bytes: RandomBytes = os.urandom
) -> SessionKeys:
    length = suite.key_length
    return SessionKeys(suite, key_id % 256, random_bytes(length), random_bytes(length))


def system_title_for(serial: str, manufacturer: bytes = b"MSM") -> bytes:
    """A DLMS-style system title: 3-letter manufacturer id + 5 bytes derived from the serial."""
    validate_serial(serial)
    if len(manufacturer) != 3:
        raise InvalidInputError("manufacturer", manufacturer, "a FLAG id is 3 letters")
    return manufacturer + hashlib.sha256(serial.encode()).digest()[:5]


class KeyRing:
    """The session keys one side holds for one peer.

    ``current`` is what the side sends with. ``previous`` (after a rotation) and ``pending``
    (offered, not yet confirmed) are accepted on receipt as well.
    """

    def __init__(
        self,
        current: SessionKeys,
        *,
        previous: SessionKeys | None = None,
        pending: SessionKeys | None = None,
    ) -> None:
        self.current = current
        self.previous = previous
        self.pending = pending

    @property
    def suite(self) -> SecuritySuite:
        return self.current.suite

    def for_key_id(self, key_id: int) -> SessionKeys | None:
        """The accepted keys of generation ``key_id``, or ``None``."""
        for keys in (self.current, self.pending, self.previous):
            if keys is not None and keys.key_id == key_id:
                return keys
        return None

    # head-end side
    def offer(self, new: SessionKeys) -> None:
        """Start a rotation: accept ``new`` as well, keep sending with the current keys."""
        if new.suite is not self.suite:
            raise InvalidInputError("suite", new.suite, f"the meter uses {self.suite.name}")
        if new.key_id in (self.current.key_id, getattr(self.previous, "key_id", None)):
            raise InvalidInputError("key_id", new.key_id, "a new generation needs a new id")
        self.pending = new

    def confirm(self, key_id: int) -> bool:
        """The peer has shown it holds the pending keys: send with them from now on."""
        if self.pending is None or self.pending.key_id != key_id:
            return False
        self.previous, self.current, self.pending = self.current, self.pending, None
        return True

    # meter side
    def install(self, new: SessionKeys) -> None:
        """Send with ``new`` at once; keep accepting the old keys until :meth:`retire`."""
        if new.suite is not self.suite:
            raise InvalidInputError("suite", new.suite, f"this meter uses {self.suite.name}")
        if new.key_id == self.current.key_id:
            if new != self.current:
                raise InvalidInputError("key_id", new.key_id, "already in use with other keys")
            return
        self.previous, self.current = self.current, new

    def retire(self) -> None:
        """Stop accepting the previous generation."""
        self.previous = None

    def to_state(self) -> dict[str, Any]:
        return {
            name: None
            if keys is None
            else [
                int(keys.suite),
                keys.key_id,
                keys.encryption_key.hex(),
                keys.authentication_key.hex(),
            ]
            for name, keys in (
                ("current", self.current),
                ("previous", self.previous),
                ("pending", self.pending),
            )
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KeyRing:
        def keys(item: Any) -> SessionKeys | None:
            if item is None:
                return None
            suite, key_id, ek, ak = item
            return SessionKeys(SecuritySuite(suite), key_id, bytes.fromhex(ek), bytes.fromhex(ak))

        current = keys(state["current"])
        if current is None:
            raise InvalidInputError("current", None, "a key ring needs current keys")
        return cls(current, previous=keys(state["previous"]), pending=keys(state["pending"]))


@dataclass(frozen=True)
class MeterCredentials:
    """What is provisioned into one meter, and the head-end's copy of it.

    ``meter_signing_key`` and ``headend_verify_key`` are used by the signed suite only (the
    meter's own P-384 key, the head-end's public key); the head-end's copy holds the meter's
    public key instead (``meter_verify_key``).
    """

    serial: str
    system_title: bytes
    suite: SecuritySuite
    kek: bytes
    keys: SessionKeys
    meter_signing_key: ec.EllipticCurvePrivateKey | None = None
    meter_verify_key: ec.EllipticCurvePublicKey | None = None
    headend_verify_key: ec.EllipticCurvePublicKey | None = None

    def __post_init__(self) -> None:
        validate_serial(self.serial)
        validate_system_title(self.system_title)
        if self.keys.suite is not self.suite:
            raise InvalidInputError("keys.suite", self.keys.suite, f"credentials are {self.suite}")


def provision(
    serial: str,
    suite: SecuritySuite = SecuritySuite.AES_128_GCM,
    *,
    headend_signing_key: ec.EllipticCurvePrivateKey | None = None,
    system_title: bytes | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> MeterCredentials:
    """New credentials for a meter (factory provisioning, or a test fleet)."""
    signing = ec.generate_private_key(ec.SECP384R1()) if suite.signed else None
    if suite.signed and headend_signing_key is None:
        raise InvalidInputError(
            "headend_signing_key", None, "the signed suite needs the head-end's P-384 key"
        )
    return MeterCredentials(
        serial=serial,
        system_title=system_title or system_title_for(serial),
        suite=suite,
        kek=random_bytes(16),
        keys=generate_session_keys(suite, 1, random_bytes),
        meter_signing_key=signing,
        meter_verify_key=None if signing is None else signing.public_key(),
        headend_verify_key=(
            None
            if headend_signing_key is None or not suite.signed
            else headend_signing_key.public_key()
        ),
    )


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
