"""Signed firmware images, chunked transfer that resumes, activation with rollback.

The vendor signs a manifest of each image with ECDSA P-256 over SHA-256 [1]_::

    manifest = CBOR ["meterstack-firmware", version, size, sha256(image)]
    signature = ECDSA-P256-SHA256(vendor_key, manifest), raw r || s (64 bytes)

The meter (:class:`FirmwareSlot`) takes an offer (the manifest and its signature), stores
chunks as they come, says which offset it needs next (so a transfer interrupted by a link
loss resumes where it stopped, even after a restart of the meter), and on activation checks
the image's size, SHA-256 and the vendor signature before it switches. A refused image
leaves the running version untouched. An image that passes the checks but fails its
self-test after the switch is rolled back to the previous version and the failure reported.

References
----------
.. [1] FIPS 186-5, Digital Signature Standard, 2023, 6 (ECDSA); SEC 2 v2 (secp256r1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from meterstack.core.errors import InvalidInputError
from meterstack.link.errors import FirmwareError

MANIFEST_TAG = "meterstack-firmware"
MAX_IMAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class FirmwareManifest:
    """What the vendor signs about an image."""

    version: str
    size: int
    sha256: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        return manifest_bytes(self.version, self.size, self.sha256)

    def to_wire(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "size": self.size,
            "sha256": self.sha256,
            "signature": self.signature,
        }

    @classmethod
    def from_wire(cls, args: dict[str, Any]) -> FirmwareManifest:
        try:
            version, size = args["version"], args["size"]
            digest, signature = args["sha256"], args["signature"]
        except KeyError as exc:
            raise InvalidInputError(f"args.{exc.args[0]}", None, "missing") from exc
        if not isinstance(version, str) or not version:
            raise InvalidInputError("args.version", version, "a non-empty text")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMAGE_BYTES:
            raise InvalidInputError("args.size", size, f"1 to {MAX_IMAGE_BYTES} bytes")
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise InvalidInputError("args.sha256", digest, "a 32-byte SHA-256 digest")
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise InvalidInputError("args.signature", signature, "a 64-byte raw r||s signature")
        return cls(version, size, digest, signature)


def manifest_bytes(version: str, size: int, sha256: bytes) -> bytes:
    return cbor2.dumps([MANIFEST_TAG, version, size, sha256])


def sign_image(
    image: bytes, version: str, vendor_key: ec.EllipticCurvePrivateKey
) -> FirmwareManifest:
    """The vendor's side: sign ``image`` as ``version``."""
    if not isinstance(vendor_key.curve, ec.SECP256R1):
        raise InvalidInputError(
            "vendor_key", vendor_key.curve.name, "firmware is signed with P-256"
        )
    if not 0 < len(image) <= MAX_IMAGE_BYTES:
        raise InvalidInputError("image", f"{len(image)} bytes", f"1 to {MAX_IMAGE_BYTES} bytes")
    digest = hashlib.sha256(image).digest()
    der = vendor_key.sign(manifest_bytes(version, len(image), digest), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return FirmwareManifest(
        version, len(image), digest, r.to_bytes(32, "big") + s.to_bytes(32, "big")
    )


def verify_signature(
    message: bytes, signature: bytes, vendor_public_key: ec.EllipticCurvePublicKey
) -> bool:
    """ECDSA P-256/SHA-256 verification of a raw ``r || s`` signature."""
    if len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        vendor_public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class FirmwareState(StrEnum):
    IDLE = "idle"
    RECEIVING = "receiving"
    COMPLETE = "complete"  # every byte is in; not yet checked
    ACTIVE = "active"  # the new version runs
    REFUSED = "refused"  # signature or hash did not verify: the old version runs
    ROLLED_BACK = "rolled_back"  # the new version failed its self-test: the old one runs


class FirmwareStore(Protocol):
    """Where a :class:`FirmwareSlot` keeps its state and chunks (a meter's link store)."""

    def get_value(self, name: str) -> Any: ...

    def put_values(self, values: dict[str, Any]) -> None: ...

    def put_chunk(self, version: str, offset: int, data: bytes) -> None: ...

    def chunks(self, version: str) -> list[tuple[int, bytes]]: ...

    def drop_chunks(self, keep_version: str | None = None) -> None: ...


@dataclass
class FirmwareStatus:
    running_version: str
    state: FirmwareState
    offered_version: str | None
    next_offset: int
    size: int
    detail: str = ""
    previous_version: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "running_version": self.running_version,
            "state": self.state.value,
            "offered_version": self.offered_version,
            "next_offset": self.next_offset,
            "size": self.size,
            "detail": self.detail,
            "previous_version": self.previous_version,
        }


#: A self-test after the switch: given the new version, True if the meter runs well.
SelfTest = Callable[[str, bytes], bool]


class FirmwareSlot:
    """The meter's firmware: the running version and the download slot.

    Parameters
    ----------
    store : FirmwareStore
        Persistent state and chunks (the meter's :class:`~meterstack.link.store.MeterLinkStore`).
    vendor_public_key : EllipticCurvePublicKey
        The vendor's P-256 key, fixed at manufacture.
    factory_version : str
        The version running before any update.
    self_test : SelfTest, optional
        Run after a switch; a False or an exception rolls back.
    """

    def __init__(
        self,
        store: FirmwareStore,
        vendor_public_key: ec.EllipticCurvePublicKey,
        *,
        factory_version: str = "1.0.0",
        self_test: SelfTest | None = None,
    ) -> None:
        self._store = store
        self._vendor_key = vendor_public_key
        self._self_test = self_test
        saved = store.get_value("firmware")
        if saved is None:
            saved = {
                "running": factory_version,
                "previous": None,
                "state": FirmwareState.IDLE.value,
                "offer": None,
                "detail": "",
            }
        self._state = saved
        self.activations: list[tuple[str, bool, str]] = []

    @property
    def running_version(self) -> str:
        return str(self._state["running"])

    def _offer(self) -> FirmwareManifest | None:
        offer = self._state["offer"]
        if offer is None:
            return None
        return FirmwareManifest(
            offer["version"],
            offer["size"],
            bytes.fromhex(offer["sha256"]),
            bytes.fromhex(offer["signature"]),
        )

    def _save(self) -> None:
        self._store.put_values({"firmware": self._state})

    def _received(self, version: str) -> int:
        """Bytes held contiguously from offset 0."""
        offset = 0
        for start, data in self._store.chunks(version):
            if start > offset:
                break
            offset = max(offset, start + len(data))
        return offset

    def status(self) -> FirmwareStatus:
        offer = self._offer()
        return FirmwareStatus(
            running_version=self.running_version,
            state=FirmwareState(self._state["state"]),
            offered_version=None if offer is None else offer.version,
            next_offset=0 if offer is None else self._received(offer.version),
            size=0 if offer is None else offer.size,
            detail=str(self._state["detail"]),
            previous_version=self._state["previous"],
        )

    def offer(self, manifest: FirmwareManifest) -> FirmwareStatus:
        """Accept an offer; a repeated offer of the same image resumes where it stopped.

        The signature is checked at once, so a forged manifest is refused before a single
        chunk is transferred (and checked again at activation, over the bytes received).
        """
        if manifest.version == self.running_version:
            raise FirmwareError(f"version {manifest.version} is already running")
        if not verify_signature(manifest.signed_bytes(), manifest.signature, self._vendor_key):
            self._state.update(
                state=FirmwareState.REFUSED.value, detail="bad signature on the offer"
            )
            self._save()
            raise FirmwareError("the manifest's signature does not verify with the vendor key")
        current = self._offer()
        if current is None or current != manifest:
            self._store.drop_chunks(keep_version=None)
            self._state["offer"] = {
                "version": manifest.version,
                "size": manifest.size,
                "sha256": manifest.sha256.hex(),
                "signature": manifest.signature.hex(),
            }
        self._state.update(state=FirmwareState.RECEIVING.value, detail="")
        self._save()
        return self._refresh_complete()

    def _refresh_complete(self) -> FirmwareStatus:
        status = self.status()
        if status.state is FirmwareState.RECEIVING and status.next_offset >= status.size:
            self._state["state"] = FirmwareState.COMPLETE.value
            self._save()
            status = self.status()
        return status

    def chunk(self, version: str, offset: int, data: bytes) -> FirmwareStatus:
        """Store one chunk (a repeated chunk is harmless); return what is needed next."""
        offer = self._offer()
        if offer is None or offer.version != version:
            raise FirmwareError(f"no transfer of version {version} is open")
        if not isinstance(data, bytes) or not data:
            raise InvalidInputError("args.data", data, "a non-empty byte string")
        if offset < 0 or offset + len(data) > offer.size:
            raise InvalidInputError(
                "args.offset", offset, f"chunk beyond the image's {offer.size} bytes"
            )
        self._store.put_chunk(version, offset, data)
        return self._refresh_complete()

    def activate(self) -> FirmwareStatus:
        """Check the received image and switch to it; roll back if its self-test fails.

        Raises
        ------
        FirmwareError
            Nothing complete to activate, or the image fails its checks (the running
            version is unchanged; the slot reports ``refused``).
        """
        offer = self._offer()
        if offer is None:
            raise FirmwareError("no image has been offered")
        image = b"".join(data for _, data in self._store.chunks(offer.version))
        if len(image) != offer.size:
            raise FirmwareError(f"image incomplete: {len(image)} of {offer.size} bytes")
        if hashlib.sha256(image).digest() != offer.sha256:
            self._refuse(offer, "SHA-256 of the received image does not match the manifest")
        if not verify_signature(
            manifest_bytes(offer.version, len(image), hashlib.sha256(image).digest()),
            offer.signature,
            self._vendor_key,
        ):
            self._refuse(offer, "the vendor signature does not verify")
        old = self.running_version
        self._state.update(running=offer.version, previous=old, state=FirmwareState.ACTIVE.value)
        try:
            passed = (
                True if self._self_test is None else bool(self._self_test(offer.version, image))
            )
            reason = "" if passed else "self-test failed"
        except Exception as exc:  # a crashing new image is exactly what rollback is for
            passed, reason = False, f"self-test raised {type(exc).__name__}: {exc}"
        if passed:
            self._state.update(offer=None, detail=f"activated {offer.version}")
            self._store.drop_chunks(keep_version=None)
        else:
            self._state.update(
                running=old,
                previous=offer.version,
                state=FirmwareState.ROLLED_BACK.value,
                offer=None,
                detail=f"{offer.version} rolled back: {reason}",
            )
            self._store.drop_chunks(keep_version=None)
        self._save()
        self.activations.append((offer.version, passed, reason))
        return self.status()

    def _refuse(self, offer: FirmwareManifest, reason: str) -> None:
        self._state.update(state=FirmwareState.REFUSED.value, offer=None, detail=reason)
        self._store.drop_chunks(keep_version=None)
        self._save()
        raise FirmwareError(f"{offer.version}: {reason}")
