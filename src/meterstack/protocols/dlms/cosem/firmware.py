"""Interface class 18 "Image transfer", 0.0.44.0.0.255, and the image it carries.

The head-end initiates a transfer (method 1, ``{image_identifier, image_size}``), sends the
image block by block (method 2, ``{image_block_number, image_block_value}``), asks the meter
to verify it (method 3) and to activate it (method 4). Attributes: 2
``image_block_size`` [octets], 3 ``image_transferred_blocks_status`` (a bit per block), 4
``image_first_not_transferred_block_number``, 5 ``image_transfer_enabled``, 6
``image_transfer_status``, 7 ``image_to_activate_info`` {size, identification, signature}.

State machine of ``image_transfer_status`` [1]_ 4.4.6::

    0 not initiated --initiate--> 1 initiated --blocks--> 1 --verify--> 2 verifying
    2 --> 3 verification successful | 4 verification failed
    3 --activate--> 5 activating --> 6 activation successful | 7 activation failed
    1 --activate--> (verify first) --> 3 --> 5 ...
    any --initiate--> 1 (a new image; the same identifier and size resume: blocks kept)

The image (what the blocks carry) is the vendor's firmware followed by the vendor's
signature, ``image = firmware || r || s``: ECDSA P-256/SHA-256 over the manifest
``CBOR ["meterstack-firmware", version, size, SHA-256(firmware)]`` of
:mod:`meterstack.link.firmware`, with the image identifier (ASCII) as the version. So an
image signed for the MQTT firmware commands and one sent over DLMS are checked by the same
rule and the same vendor key. Verification checks that every block has arrived, the size,
the hash and the signature; a failure leaves status 4 and nothing to activate.

Activation switches the meter's firmware: through its
:class:`~meterstack.link.firmware.FirmwareSlot` when it has one (the slot checks the image
again, runs its self-test and rolls back on failure: status 7), otherwise by recording the
new running identifier. The meter's firmware log gets *firmware ready for activation*
(IDIS code 17) at a successful verification and *firmware activated* (18) at activation.
The running identifier is readable at 1.0.0.2.0.255 (active firmware identifier).

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.4.6 "Image transfer" (class_id 18), its
   state diagram and the image transfer process.
.. [2] DLMS UA 1000-1, OBIS 1.0.0.2.0.255 "active firmware identifier".
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.link.errors import FirmwareError
from meterstack.link.firmware import (
    FirmwareManifest,
    FirmwareSlot,
    FirmwareState,
    manifest_bytes,
    sign_image,
    verify_signature,
)
from meterstack.meter.events import EventCode
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult
from meterstack.protocols.dlms.axdr import Data, DataType
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    meter_refusal,
    type_unmatched,
)

BLOCK_SIZE = 192
#: The largest image accepted. [octets]
MAX_IMAGE_SIZE = 16 * 1024 * 1024
SIGNATURE_SIZE = 64
ACTIVE_FIRMWARE_IDENTIFIER = ObisCode(1, 0, 0, 2, 0)


class ImageTransferStatus(IntEnum):
    """``image_transfer_status`` [1]_."""

    NOT_INITIATED = 0
    INITIATED = 1
    VERIFICATION_INITIATED = 2
    VERIFICATION_SUCCESSFUL = 3
    VERIFICATION_FAILED = 4
    ACTIVATION_INITIATED = 5
    ACTIVATION_SUCCESSFUL = 6
    ACTIVATION_FAILED = 7


def signed_image(firmware: bytes, identifier: str, vendor_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The vendor's side: ``firmware || signature`` for transfer as image ``identifier``."""
    manifest = sign_image(firmware, identifier, vendor_key)
    return firmware + manifest.signature


def open_signed_image(
    image: bytes, identifier: bytes, vendor_public_key: ec.EllipticCurvePublicKey
) -> FirmwareManifest:
    """Check ``firmware || signature`` against the vendor key; return its manifest.

    Raises
    ------
    FirmwareError
        Too short, an identifier that is not ASCII, or a signature that does not verify.
    """
    if len(image) <= SIGNATURE_SIZE:
        raise FirmwareError(f"an image of {len(image)} octets holds no firmware and signature")
    try:
        version = identifier.decode("ascii")
    except UnicodeDecodeError:
        raise FirmwareError("the image identifier is not ASCII") from None
    firmware, signature = image[:-SIGNATURE_SIZE], image[-SIGNATURE_SIZE:]
    digest = hashlib.sha256(firmware).digest()
    if not verify_signature(
        manifest_bytes(version, len(firmware), digest), signature, vendor_public_key
    ):
        raise FirmwareError("the vendor signature does not verify over the image")
    return FirmwareManifest(version, len(firmware), digest, signature)


class ImageTransferObject(CosemObject):
    """Class 18 bound to the meter's firmware.

    Parameters
    ----------
    vendor_public_key : EllipticCurvePublicKey, optional
        The vendor's P-256 key; without it no image can be verified.
    slot : FirmwareSlot, optional
        The meter's firmware slot (shared with the MQTT firmware commands).
    factory_identifier : bytes
        The running identifier when there is no slot.
    """

    class_id = 18
    attribute_count = 7
    writable = frozenset({5})
    methods = frozenset({1, 2, 3, 4})

    def __init__(
        self,
        logical_name: ObisCode,
        vendor_public_key: ec.EllipticCurvePublicKey | None = None,
        slot: FirmwareSlot | None = None,
        factory_identifier: bytes = b"1.0.0",
    ) -> None:
        super().__init__(logical_name)
        self.vendor_public_key = vendor_public_key
        self.slot = slot
        self.enabled = True
        self.status = ImageTransferStatus.NOT_INITIATED
        self.identifier = b""
        self.size = 0
        self.blocks: dict[int, bytes] = {}
        self.verified: FirmwareManifest | None = None
        self.detail = ""
        self._running = factory_identifier

    @property
    def running_identifier(self) -> bytes:
        """The firmware the meter runs (the slot's version when it has a slot)."""
        if self.slot is not None:
            return self.slot.running_version.encode("ascii", "replace")
        return self._running

    @property
    def block_count(self) -> int:
        return (self.size + BLOCK_SIZE - 1) // BLOCK_SIZE

    def image(self) -> bytes:
        return b"".join(self.blocks[n] for n in range(self.block_count))

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            return Data.double_long_unsigned(BLOCK_SIZE)
        if attribute == 3:
            bits = "".join("1" if n in self.blocks else "0" for n in range(self.block_count))
            return Data(DataType.BIT_STRING, bits)
        if attribute == 4:
            missing = next((n for n in range(self.block_count) if n not in self.blocks), None)
            return Data.double_long_unsigned(self.block_count if missing is None else missing)
        if attribute == 5:
            return Data.boolean(self.enabled)
        if attribute == 6:
            return Data.enum(int(self.status))
        if self.verified is None or self.status < ImageTransferStatus.VERIFICATION_SUCCESSFUL:
            return Data.array([])
        return Data.array(
            [
                Data.structure(
                    Data.double_long_unsigned(self.size),
                    Data.octet_string(self.identifier),
                    Data.octet_string(self.verified.signature),
                )
            ]
        )

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        if value.type != DataType.BOOLEAN:
            raise type_unmatched("image_transfer_enabled is a boolean")
        self.enabled = bool(value.value)

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if not self.enabled:
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "image transfer is disabled")
        if parameters is None:
            raise type_unmatched("every image transfer method takes a parameter")
        try:
            if method == 1:
                self._initiate(parameters)
            elif method == 2:
                self._block(parameters)
            elif method == 3:
                self._verify(ctx)
            else:
                self._activate(ctx)
        except CosemError:
            raise
        except MeterstackError as exc:
            raise type_unmatched(str(exc)) from exc
        return None

    # ------------------------------------------------------------------ methods

    def _initiate(self, parameters: Data) -> None:
        identifier_data, size_data = parameters.as_items("image_transfer_initiate", 2)
        identifier = identifier_data.as_bytes("image_identifier")
        size = size_data.as_int("image_size")
        if not SIGNATURE_SIZE < size <= MAX_IMAGE_SIZE:
            raise CosemError(ActionResult.OTHER_REASON, f"image size {size}")
        if not identifier:
            raise CosemError(ActionResult.OTHER_REASON, "an empty image identifier")
        resume = (
            self.status == ImageTransferStatus.INITIATED
            and identifier == self.identifier
            and size == self.size
        )
        if not resume:
            self.blocks = {}
        self.identifier = identifier
        self.size = size
        self.verified = None
        self.detail = ""
        self.status = ImageTransferStatus.INITIATED

    def _block(self, parameters: Data) -> None:
        if self.status != ImageTransferStatus.INITIATED:
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "no transfer initiated")
        number, value = parameters.as_items("image_block_transfer", 2)
        block = number.as_int("image_block_number")
        octets = value.as_bytes("image_block_value")
        if not 0 <= block < self.block_count:
            raise CosemError(ActionResult.OTHER_REASON, f"block {block} beyond the image")
        expected = min(BLOCK_SIZE, self.size - block * BLOCK_SIZE)
        if len(octets) != expected:
            raise CosemError(ActionResult.OTHER_REASON, f"block {block} must be {expected} octets")
        self.blocks[block] = octets

    def _fail_verification(self, reason: str) -> CosemError:
        self.status = ImageTransferStatus.VERIFICATION_FAILED
        self.verified = None
        self.detail = reason
        return CosemError(ActionResult.OTHER_REASON, reason)

    def _verify(self, ctx: ServiceContext) -> None:
        if self.status not in (
            ImageTransferStatus.INITIATED,
            ImageTransferStatus.VERIFICATION_SUCCESSFUL,
        ):
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "nothing to verify")
        self.status = ImageTransferStatus.VERIFICATION_INITIATED
        if len(self.blocks) != self.block_count:
            raise self._fail_verification(
                f"{self.block_count - len(self.blocks)} of {self.block_count} blocks missing"
            )
        if self.vendor_public_key is None:
            raise self._fail_verification("no vendor key to check the signature with")
        try:
            manifest = open_signed_image(self.image(), self.identifier, self.vendor_public_key)
        except FirmwareError as exc:
            raise self._fail_verification(exc.reason) from exc
        binding = ctx.binding
        try:
            binding.meter.record_event(
                EventCode.FIRMWARE_READY_FOR_ACTIVATION, binding.now(), manifest.version
            )
        except MeterstackError as exc:
            self._fail_verification(str(exc))
            raise meter_refusal(exc, action=True) from exc
        self.verified = manifest
        self.status = ImageTransferStatus.VERIFICATION_SUCCESSFUL

    def _activate(self, ctx: ServiceContext) -> None:
        if self.status == ImageTransferStatus.INITIATED:
            self._verify(ctx)  # an image not yet verified is verified first [1]_
        if self.status != ImageTransferStatus.VERIFICATION_SUCCESSFUL or self.verified is None:
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "no verified image to activate")
        manifest = self.verified
        self.status = ImageTransferStatus.ACTIVATION_INITIATED
        if self.slot is not None:
            firmware = self.image()[:-SIGNATURE_SIZE]
            try:
                self.slot.offer(manifest)
                self.slot.chunk(manifest.version, 0, firmware)
                outcome = self.slot.activate()
            except FirmwareError as exc:
                self.status = ImageTransferStatus.ACTIVATION_FAILED
                self.detail = exc.reason
                raise CosemError(ActionResult.OTHER_REASON, exc.reason) from exc
            if outcome.state is not FirmwareState.ACTIVE:
                self.status = ImageTransferStatus.ACTIVATION_FAILED
                self.detail = outcome.detail
                raise CosemError(ActionResult.OTHER_REASON, outcome.detail)
        else:
            self._running = self.identifier
        self.detail = f"activated {manifest.version}"
        self.status = ImageTransferStatus.ACTIVATION_SUCCESSFUL
        binding = ctx.binding
        try:
            binding.meter.record_event(
                EventCode.FIRMWARE_ACTIVATED, binding.now(), manifest.version
            )
        except MeterstackError as exc:
            raise meter_refusal(exc, action=True) from exc
