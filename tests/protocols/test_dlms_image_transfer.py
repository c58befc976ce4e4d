"""Image transfer (class 18) over DLMS: signed images, verification, activation, refusals.

The signature is checked here independently of our code: the manifest is built with
``cbor2`` and the ``r || s`` signature verified with ``cryptography``; gurux-dlms runs the
same transfer as an independent client.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSImageTransfer

from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.link import FirmwareSlot, LinkDatabase
from meterstack.meter import Meter
from meterstack.meter.events import EventCode, LogKind
from meterstack.protocols.dlms import DlmsServer, LogicalDevice, default_clients
from meterstack.protocols.dlms.apdu import ActionResult
from meterstack.protocols.dlms.axdr import Data
from meterstack.protocols.dlms.client import IMAGE_TRANSFER, ClientSettings, DlmsClient
from meterstack.protocols.dlms.cosem.firmware import BLOCK_SIZE, signed_image
from meterstack.protocols.errors import DlmsServiceError

from .gurux_peer import GuruxPeer
from .support import PASSWORD, ServerThread, meter_with_history, security

VENDOR = ec.derive_private_key(0xF1A3E, ec.SECP256R1())
FIRMWARE = random.Random(18).randbytes(5 * BLOCK_SIZE + 77)
IMAGE = signed_image(FIRMWARE, "2.1.0", VENDOR)
ACTIVE_FIRMWARE = ObisCode(1, 0, 0, 2, 0)
READER = ClientSettings.low(PASSWORD)


def serve(
    body: Callable[[int, LogicalDevice], Awaitable[Any]], *, slot: FirmwareSlot | None = None
) -> Any:
    meter = meter_with_history(1)

    async def main() -> Any:
        device = LogicalDevice.for_meter(
            meter,
            SimulatedClock(meter.now + timedelta(seconds=1)),
            security(),
            default_clients(),
            firmware_verify_key=VENDOR.public_key(),
            firmware=slot,
        )
        server = DlmsServer({1: device})
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port, device)
        finally:
            await server.close()

    return asyncio.run(main())


def firmware_codes(meter: Meter) -> list[tuple[int, str]]:
    return [(e.code, e.detail) for e in meter.event_logs[LogKind.FIRMWARE]]


def test_signed_image_is_firmware_then_the_vendor_signature() -> None:
    firmware, signature = IMAGE[:-64], IMAGE[-64:]
    assert firmware == FIRMWARE
    manifest = cbor2.dumps(
        ["meterstack-firmware", "2.1.0", len(FIRMWARE), hashlib.sha256(FIRMWARE).digest()]
    )
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    VENDOR.public_key().verify(der, manifest, ec.ECDSA(hashes.SHA256()))


def test_transfer_verify_and_activate() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        meter = device.binding.meter
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            before = (await client.get(1, ACTIVE_FIRMWARE, 2)).value
            assert before == b"1.0.0"
            status = await client.transfer_image(b"2.1.0", IMAGE, activate=False)
            assert status == 3  # verification successful
            info = await client.get(18, IMAGE_TRANSFER, 7)
            size, identification, signature = (item.value for item in info.value[0].value)  # type: ignore[index, union-attr]
            assert (size, identification, signature) == (len(IMAGE), b"2.1.0", IMAGE[-64:])
            bits = (await client.get(18, IMAGE_TRANSFER, 3)).value
            assert bits == "1" * ((len(IMAGE) + BLOCK_SIZE - 1) // BLOCK_SIZE)
            assert firmware_codes(meter) == [(EventCode.FIRMWARE_READY_FOR_ACTIVATION, "2.1.0")]
            await client.action(18, IMAGE_TRANSFER, 4, Data.integer(0))
            assert (await client.get(18, IMAGE_TRANSFER, 6)).value == 6
            assert (await client.get(1, ACTIVE_FIRMWARE, 2)).value == b"2.1.0"
        assert firmware_codes(meter) == [
            (EventCode.FIRMWARE_READY_FOR_ACTIVATION, "2.1.0"),
            (EventCode.FIRMWARE_ACTIVATED, "2.1.0"),
        ]

    serve(body)


def _tampered(image: bytes, at: int) -> bytes:
    return image[:at] + bytes((image[at] ^ 0x01,)) + image[at + 1 :]


@pytest.mark.parametrize(
    "image",
    [
        _tampered(IMAGE, 3 * BLOCK_SIZE + 5),  # one bit of the firmware
        _tampered(IMAGE, len(IMAGE) - 1),  # one bit of the signature
        signed_image(FIRMWARE, "2.1.0", ec.generate_private_key(ec.SECP256R1())),  # not the vendor
        signed_image(FIRMWARE, "2.1.1", VENDOR),  # signed for another version
    ],
    ids=["firmware_bit", "signature_bit", "other_vendor", "other_version"],
)
def test_a_bad_image_is_refused(image: bytes) -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        meter = device.binding.meter
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            with pytest.raises(DlmsServiceError) as refused:
                await client.transfer_image(b"2.1.0", image)
            assert refused.value.result == ActionResult.OTHER_REASON
            assert (await client.get(18, IMAGE_TRANSFER, 6)).value == 4  # verification failed
            assert (await client.get(18, IMAGE_TRANSFER, 7)).value == ()
            with pytest.raises(DlmsServiceError) as not_verified:
                await client.action(18, IMAGE_TRANSFER, 4, Data.integer(0))
            assert not_verified.value.result == ActionResult.TEMPORARY_FAILURE
            assert (await client.get(1, ACTIVE_FIRMWARE, 2)).value == b"1.0.0"
        assert firmware_codes(meter) == []

    serve(body)


def test_missing_blocks_fail_verification_and_a_transfer_resumes() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        initiate = Data.structure(
            Data.octet_string(b"2.1.0"), Data.double_long_unsigned(len(IMAGE))
        )
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            await client.action(18, IMAGE_TRANSFER, 1, initiate)
            for number in range(3):
                block = IMAGE[number * BLOCK_SIZE : (number + 1) * BLOCK_SIZE]
                parameters = Data.structure(
                    Data.double_long_unsigned(number), Data.octet_string(block)
                )
                await client.action(18, IMAGE_TRANSFER, 2, parameters)
            assert (await client.get(18, IMAGE_TRANSFER, 4)).value == 3
        # the link drops; a new association resumes from block 3
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            await client.action(18, IMAGE_TRANSFER, 1, initiate)
            assert (await client.get(18, IMAGE_TRANSFER, 4)).value == 3
            with pytest.raises(DlmsServiceError):
                await client.action(18, IMAGE_TRANSFER, 3, Data.integer(0))
            assert (await client.get(18, IMAGE_TRANSFER, 6)).value == 4
            # verification failed: start again (a failed transfer does not resume)
            assert await client.transfer_image(b"2.1.0", IMAGE) == 6

    serve(body)


@pytest.mark.parametrize(
    ("method", "parameters", "result"),
    [
        (
            2,
            Data.structure(Data.double_long_unsigned(0), Data.octet_string(bytes(BLOCK_SIZE))),
            ActionResult.TEMPORARY_FAILURE,
        ),
        (3, Data.integer(0), ActionResult.TEMPORARY_FAILURE),
        (
            1,
            Data.structure(Data.octet_string(b"x"), Data.double_long_unsigned(64)),
            ActionResult.OTHER_REASON,
        ),
        (
            1,
            Data.structure(Data.octet_string(b""), Data.double_long_unsigned(1000)),
            ActionResult.OTHER_REASON,
        ),
        (1, Data.octet_string(b"2.1.0"), ActionResult.TYPE_UNMATCHED),
        (1, None, ActionResult.TYPE_UNMATCHED),
    ],
    ids=["block_first", "verify_first", "too_small", "no_identifier", "not_a_structure", "none"],
)
def test_methods_out_of_order_or_malformed(
    method: int, parameters: Data | None, result: ActionResult
) -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            with pytest.raises(DlmsServiceError) as refused:
                await client.action(18, IMAGE_TRANSFER, method, parameters)
            assert refused.value.result == result

    serve(body)


def test_bad_blocks_and_a_disabled_transfer() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            await client.action(
                18,
                IMAGE_TRANSFER,
                1,
                Data.structure(Data.octet_string(b"2.1.0"), Data.double_long_unsigned(len(IMAGE))),
            )
            for number, octets in ((0, bytes(10)), (99, bytes(BLOCK_SIZE))):
                with pytest.raises(DlmsServiceError) as refused:
                    await client.action(
                        18,
                        IMAGE_TRANSFER,
                        2,
                        Data.structure(
                            Data.double_long_unsigned(number), Data.octet_string(octets)
                        ),
                    )
                assert refused.value.result == ActionResult.OTHER_REASON
            await client.set(18, IMAGE_TRANSFER, 5, Data.boolean(False))
            with pytest.raises(DlmsServiceError) as disabled:
                await client.transfer_image(b"2.1.0", IMAGE)
            assert disabled.value.result == ActionResult.TEMPORARY_FAILURE

    serve(body)


def test_activation_through_the_firmware_slot_and_its_rollback() -> None:
    store = LinkDatabase(":memory:").for_meter("MS000001")
    outcomes = iter([False, True])  # the first image fails its self-test
    slot = FirmwareSlot(store, VENDOR.public_key(), self_test=lambda version, image: next(outcomes))

    async def body(port: int, device: LogicalDevice) -> None:
        meter = device.binding.meter
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            with pytest.raises(DlmsServiceError):
                await client.transfer_image(b"2.1.0", IMAGE)
            assert (await client.get(18, IMAGE_TRANSFER, 6)).value == 7  # activation failed
            assert slot.running_version == "1.0.0"
            assert (await client.get(1, ACTIVE_FIRMWARE, 2)).value == b"1.0.0"
            assert EventCode.FIRMWARE_ACTIVATED not in [c for c, _ in firmware_codes(meter)]
            assert await client.transfer_image(b"2.1.0", IMAGE) == 6
            assert slot.running_version == "2.1.0"
            assert (await client.get(1, ACTIVE_FIRMWARE, 2)).value == b"2.1.0"
        assert firmware_codes(meter)[-1] == (EventCode.FIRMWARE_ACTIVATED, "2.1.0")

    serve(body, slot=slot)


# ---------------------------------------------------------------------- gurux-dlms


@pytest.fixture
def firmware_server() -> Iterator[ServerThread]:
    thread = ServerThread(meter_with_history(1))
    thread.device = LogicalDevice.for_meter(
        thread.meter,
        thread.clock,
        security(),
        default_clients(),
        firmware_verify_key=VENDOR.public_key(),
    )
    thread.server = DlmsServer({1: thread.device})
    with thread as running:
        yield running


def _gurux_transfer(peer: GuruxPeer, image: bytes) -> tuple[GXDLMSImageTransfer, int]:
    """Initiate, send every block and verify; return the object and the verify's result
    (gurux reports an action's error result in ``reply.error``, it does not raise)."""
    target = GXDLMSImageTransfer()
    peer.read(target, 2)
    assert peer.transact(target.imageTransferInitiate(peer.client, "2.1.0", len(image))).error == 0
    for frames in target.imageBlockTransfer(peer.client, image, None):
        assert peer.transact(frames).error == 0
    return target, peer.transact(target.imageVerify(peer.client)).error


def test_gurux_transfers_and_activates_an_image(firmware_server: ServerThread) -> None:
    peer = GuruxPeer(firmware_server.port, 17, Authentication.LOW, PASSWORD)
    peer.associate()
    target, verified = _gurux_transfer(peer, IMAGE)
    assert verified == 0
    assert target.imageBlockSize == BLOCK_SIZE
    assert peer.transact(target.imageActivate(peer.client)).error == 0
    peer.read(target, 6)
    assert int(target.imageTransferStatus) == 6
    peer.read(target, 7)
    assert target.imageActivateInfo[0].identification == b"2.1.0"
    peer.release()
    codes = [c for c, _ in firmware_codes(firmware_server.meter)]
    assert codes == [EventCode.FIRMWARE_READY_FOR_ACTIVATION, EventCode.FIRMWARE_ACTIVATED]


def test_gurux_bad_image_is_refused(firmware_server: ServerThread) -> None:
    peer = GuruxPeer(firmware_server.port, 17, Authentication.LOW, PASSWORD)
    peer.associate()
    target, verified = _gurux_transfer(peer, _tampered(IMAGE, 100))
    assert verified == ActionResult.OTHER_REASON
    assert peer.transact(target.imageActivate(peer.client)).error == ActionResult.TEMPORARY_FAILURE
    peer.read(target, 6)
    assert int(target.imageTransferStatus) == 4
    peer.release()
    assert firmware_codes(firmware_server.meter) == []
