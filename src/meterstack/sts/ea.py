"""The encryption algorithms and decoder key generation algorithms, by their STS codes."""

from __future__ import annotations

from enum import StrEnum

from meterstack.sts.dea import dea_decrypt, dea_encrypt
from meterstack.sts.errors import StsInputError
from meterstack.sts.misty1 import misty1_decrypt, misty1_encrypt
from meterstack.sts.sta import sta_decrypt, sta_encrypt

__all__ = ["DecoderKeyGenerationAlgorithm", "EncryptionAlgorithm"]


class EncryptionAlgorithm(StrEnum):
    """Encryption algorithm codes of IEC 62055-41 (EA07 STA, EA09 DEA, EA11 MISTY1)."""

    EA07 = "07"
    EA09 = "09"
    EA11 = "11"

    @property
    def key_bits(self) -> int:
        """Length of the decoder key this algorithm takes. [bit]"""
        return 128 if self is EncryptionAlgorithm.EA11 else 64

    def encrypt(self, key: bytes, block: int) -> int:
        """Encrypt the 64-bit token data block ``block`` under the decoder key ``key``."""
        if self is EncryptionAlgorithm.EA07:
            return sta_encrypt(key, block)
        if self is EncryptionAlgorithm.EA09:
            return dea_encrypt(key, block)
        return misty1_encrypt(key, block)

    def decrypt(self, key: bytes, block: int) -> int:
        """The inverse of :meth:`encrypt`."""
        if self is EncryptionAlgorithm.EA07:
            return sta_decrypt(key, block)
        if self is EncryptionAlgorithm.EA09:
            return dea_decrypt(key, block)
        return misty1_decrypt(key, block)

    @classmethod
    def parse(cls, value: object, field: str = "ea") -> EncryptionAlgorithm:
        """``"07"``, ``7``, ``"EA07"`` -> :attr:`EA07` (likewise 09 and 11)."""
        text = str(value).strip().upper().removeprefix("EA")
        try:
            return cls(text.zfill(2))
        except ValueError:
            raise StsInputError(field, value, "the encryption algorithm is 07, 09 or 11") from None


class DecoderKeyGenerationAlgorithm(StrEnum):
    """Decoder key generation algorithm codes (DKGA02: DES; DKGA04: HMAC-SHA-256)."""

    DKGA02 = "02"
    DKGA04 = "04"

    @classmethod
    def parse(cls, value: object, field: str = "dkga") -> DecoderKeyGenerationAlgorithm:
        text = str(value).strip().upper().removeprefix("DKGA")
        try:
            return cls(text.zfill(2))
        except ValueError:
            raise StsInputError(field, value, "the key generation algorithm is 02 or 04") from None
