"""Decoder key generation: DKGA02 (DES) and DKGA04 (HMAC-SHA-256, STS edition 2).

Both derive a meter's decoder key from the utility's vending key and the meter's identity
[1]. Keys are bytes in their natural, big-endian order throughout meterstack.

DKGA02 (64-bit vending key, 64-bit decoder key)::

    PANBlock     = the 16 PAN digits after the first, as BCD (IIN's last 5 + DRN's 11)
    ControlBlock = KT (1 digit) | SGC (6) | TI (2) | KRN (1) | FFFFFF     (16 nibbles)
    X            = PANBlock XOR ControlBlock
    DK           = DES_encrypt(VK, X) XOR X XOR VK

DKGA04 (edition 2, 160-bit vending key): one HMAC-SHA-256
call keyed with the vending key over the fixed input of a NIST SP 800-108 style KDF,

    message = Label || 0x00 || Context || [L]_32
    Label   = 0x04 || lv("04") || lv(base date "93"/"14"/"35") || lv(EA "07"/"11") || lv(TI)
    Context = 0x04 || lv(SGC) || lv(KT) || lv(KRN) || lv(PAN, 18 digits)

where ``lv(s)`` is the byte length of the ASCII string ``s`` followed by ``s``, the leading
0x04 counts the fields that follow, and ``L`` is the decoder key length in bits (64 for
EA07, 128 for EA11). The decoder key is the first ``L / 8`` bytes of the HMAC.

References
----------
.. [1] IEC 62055-41:2018, decoder key generation algorithms DKGA02 and DKGA04.
.. [2] NIST SP 800-108r1, "Recommendation for Key Derivation Using Pseudorandom Functions".
.. [3] STS 531-1-0-02 / 531-1-0-04 test vectors (decoder keys e653341f9d5bf36f and
       f94b6ed353c3bfdb113e2d3a7ea3c41d), pinned in the tests.
"""

from __future__ import annotations

import hashlib
import hmac

from meterstack.sts.dea import des_encrypt_bytes
from meterstack.sts.ea import EncryptionAlgorithm
from meterstack.sts.errors import StsInputError
from meterstack.sts.pan import MeterPan
from meterstack.sts.tid import BaseDate

__all__ = ["control_block", "dkga02", "dkga04", "validate_key_identity"]


def validate_key_identity(
    key_type: int, supply_group_code: str, tariff_index: str, key_revision_number: int
) -> None:
    """Raise :class:`StsInputError` unless KT, SGC, TI and KRN are in their ranges."""
    if isinstance(key_type, bool) or not isinstance(key_type, int) or not 0 <= key_type <= 3:
        raise StsInputError("key_type", key_type, "the key type is 0 to 3")
    if (
        not isinstance(supply_group_code, str)
        or len(supply_group_code) != 6
        or not supply_group_code.isdigit()
    ):
        raise StsInputError("sgc", supply_group_code, "the supply group code has 6 digits")
    if not isinstance(tariff_index, str) or len(tariff_index) != 2 or not tariff_index.isdigit():
        raise StsInputError("ti", tariff_index, "the tariff index has 2 digits")
    if (
        isinstance(key_revision_number, bool)
        or not isinstance(key_revision_number, int)
        or not 1 <= key_revision_number <= 9
    ):
        raise StsInputError("krn", key_revision_number, "the key revision number is 1 to 9")


def control_block(
    key_type: int, supply_group_code: str, tariff_index: str, key_revision_number: int
) -> bytes:
    """The DKGA02 control block ``KT | SGC | TI | KRN | FFFFFF`` as 8 bytes."""
    validate_key_identity(key_type, supply_group_code, tariff_index, key_revision_number)
    return bytes.fromhex(f"{key_type}{supply_group_code}{tariff_index}{key_revision_number}FFFFFF")


def dkga02(
    vending_key: bytes,
    pan: MeterPan,
    *,
    key_type: int,
    supply_group_code: str,
    tariff_index: str,
    key_revision_number: int,
) -> bytes:
    """The 64-bit decoder key of DKGA02 (DES-based) [1].

    Parameters
    ----------
    vending_key : bytes
        The 8-byte vending key (natural order).
    pan : MeterPan
        The meter's IIN and DRN.
    key_type, supply_group_code, tariff_index, key_revision_number
        KT (0-3), SGC (6 digits), TI (2 digits), KRN (1-9) of the key.

    Returns
    -------
    bytes
        The 8-byte decoder key, natural (big-endian) order.
    """
    if not isinstance(vending_key, bytes | bytearray) or len(vending_key) != 8:
        raise StsInputError("vending_key", "<hidden>", "DKGA02 needs a 64-bit vending key")
    block = control_block(key_type, supply_group_code, tariff_index, key_revision_number)
    mixed = bytes(a ^ b for a, b in zip(pan.pan_block(key_type), block, strict=True))
    encrypted = des_encrypt_bytes(bytes(vending_key), mixed, "vending_key")
    return bytes(e ^ x ^ v for e, x, v in zip(encrypted, mixed, vending_key, strict=True))


def _lv(text: str) -> bytes:
    raw = text.encode("ascii")
    return bytes([len(raw)]) + raw


def dkga04(
    vending_key: bytes,
    pan: MeterPan,
    *,
    key_type: int,
    supply_group_code: str,
    tariff_index: str,
    key_revision_number: int,
    base_date: BaseDate,
    ea: EncryptionAlgorithm,
) -> bytes:
    """The decoder key of DKGA04 (HMAC-SHA-256 KDF, STS edition 2) [1, 2].

    Returns
    -------
    bytes
        8 bytes for EA07, 16 for EA11, natural (big-endian) order.
    """
    if not isinstance(vending_key, bytes | bytearray) or len(vending_key) != 20:
        raise StsInputError("vending_key", "<hidden>", "DKGA04 needs a 160-bit vending key")
    if ea is EncryptionAlgorithm.EA09:
        raise StsInputError("ea", ea.value, "DKGA04 keys are for EA07 or EA11")
    validate_key_identity(key_type, supply_group_code, tariff_index, key_revision_number)
    key_bits = ea.key_bits
    label = bytes([4]) + _lv("04") + _lv(base_date.code) + _lv(ea.value) + _lv(tariff_index)
    context = (
        bytes([4])
        + _lv(supply_group_code)
        + _lv(str(key_type))
        + _lv(str(key_revision_number))
        + _lv(pan.pan)
    )
    message = label + b"\x00" + context + key_bits.to_bytes(4, "big")
    digest = hmac.new(bytes(vending_key), message, hashlib.sha256).digest()
    return digest[: key_bits // 8]
