"""Signed firmware: the slot refuses what does not verify and rolls back a failed start."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.link import FirmwareError, FirmwareSlot, FirmwareState, LinkDatabase, sign_image
from meterstack.link.firmware import FirmwareManifest, verify_signature

VENDOR = ec.generate_private_key(ec.SECP256R1())
IMAGE = os.urandom(5000)


def slot(database: LinkDatabase | None = None, **kw: object) -> FirmwareSlot:
    database = database or LinkDatabase(":memory:")
    return FirmwareSlot(database.for_meter("M1"), VENDOR.public_key(), **kw)  # type: ignore[arg-type]


def deliver(
    target: FirmwareSlot, image: bytes, version: str, start: int = 0, size: int = 1000
) -> None:
    for offset in range(start, len(image), size):
        target.chunk(version, offset, image[offset : offset + size])


def test_signed_image_activates() -> None:
    manifest = sign_image(IMAGE, "2.0.0", VENDOR)
    assert manifest.sha256 == hashlib.sha256(IMAGE).digest()
    assert verify_signature(manifest.signed_bytes(), manifest.signature, VENDOR.public_key())
    target = slot()
    assert target.offer(manifest).next_offset == 0
    deliver(target, IMAGE, "2.0.0")
    assert target.status().state is FirmwareState.COMPLETE
    assert target.activate().state is FirmwareState.ACTIVE
    assert target.running_version == "2.0.0"


def test_bad_signature_is_refused_and_the_old_version_keeps_running() -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    target = slot()
    with pytest.raises(FirmwareError, match="signature"):
        target.offer(sign_image(IMAGE, "2.0.0", forger))
    assert target.running_version == "1.0.0"
    assert target.status().state is FirmwareState.REFUSED


def test_altered_image_fails_the_hash_at_activation() -> None:
    manifest = sign_image(IMAGE, "2.0.0", VENDOR)
    target = slot()
    target.offer(manifest)
    altered = bytearray(IMAGE)
    altered[4321] ^= 1
    deliver(target, bytes(altered), "2.0.0")
    with pytest.raises(FirmwareError, match="SHA-256"):
        target.activate()
    assert target.running_version == "1.0.0"
    assert target.status().state is FirmwareState.REFUSED


def test_failed_self_test_rolls_back_and_reports() -> None:
    target = slot(self_test=lambda version, image: version != "2.0.0")
    target.offer(sign_image(IMAGE, "2.0.0", VENDOR))
    deliver(target, IMAGE, "2.0.0")
    status = target.activate()
    assert status.state is FirmwareState.ROLLED_BACK
    assert target.running_version == "1.0.0"
    assert status.previous_version == "2.0.0"
    assert "rolled back" in status.detail


def test_transfer_resumes_after_a_restart() -> None:
    database = LinkDatabase(":memory:")
    manifest = sign_image(IMAGE, "2.0.0", VENDOR)
    first = slot(database)
    first.offer(manifest)
    for offset in (0, 1000, 2000):
        first.chunk("2.0.0", offset, IMAGE[offset : offset + 1000])
    again = slot(database)  # the meter restarted, the link was lost
    assert again.offer(manifest).next_offset == 3000
    deliver(again, IMAGE, "2.0.0", start=3000)
    assert again.activate().state is FirmwareState.ACTIVE


def test_bad_manifests_and_chunks_raise_typed_errors() -> None:
    wire = sign_image(IMAGE, "2.0.0", VENDOR).to_wire()
    for field, value in [("size", 0), ("sha256", b"x"), ("signature", b"y"), ("version", "")]:
        bad = dict(wire, **{field: value})
        with pytest.raises(ValueError, match=field):
            FirmwareManifest.from_wire(bad)
    target = slot()
    with pytest.raises(FirmwareError):
        target.chunk("2.0.0", 0, b"x")
    target.offer(FirmwareManifest.from_wire(wire))
    with pytest.raises(ValueError, match="offset"):
        target.chunk("2.0.0", 4999, b"xx")
    with pytest.raises(FirmwareError, match="incomplete"):
        target.activate()
    with pytest.raises(ValueError, match="P-256"):
        sign_image(IMAGE, "3", ec.generate_private_key(ec.SECP384R1()))
