"""Decoder key records and their encryption at rest.

A decoder key is identified by its supply group code (SGC), tariff index (TI), key
revision number (KRN), key type (KT) and key expiry number (KEN), and is used with a base
date and an encryption algorithm [1]. Those are public: :class:`KeyParameters`. The key
itself is secret: meterstack never writes it in plain text. :func:`seal_decoder_key` encrypts
it with AES-256-GCM under a key-encryption key (KEK) that the caller holds, binding the
ciphertext to its context (the meter's serial and the key's public parameters) as
associated data, so a sealed key cannot be moved to another meter or relabelled.

The GCM nonce is synthetic: HMAC-SHA-256 over the associated data and the plaintext, keyed
with a subkey of the KEK, truncated to 96 bits. The same key under the same parameters
seals to the same text (so a meter's image is deterministic), and two different
plaintexts never share a nonce except with probability 2**-96. The AES and HMAC subkeys
are derived from the KEK with HKDF-SHA-256 [3].

Where the KEK comes from is the caller's business: in a real meter, the secure element;
in meterstack, whoever builds a :class:`~meterstack.meter.Meter` hands it in (the head-end
or the simulator reads it from its secret store). It is never part of a configuration
file or of a meter's image.

References
----------
.. [1] IEC 62055-41:2018, the key management data elements (SGC, TI, KRN, KT, KEN).
.. [2] NIST SP 800-38D, Galois/Counter Mode (GCM).
.. [3] RFC 5869, HMAC-based Extract-and-Expand Key Derivation Function (HKDF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meterstack.sts.dkga import validate_key_identity
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm, EncryptionAlgorithm
from meterstack.sts.errors import StsInputError
from meterstack.sts.tid import BaseDate

__all__ = [
    "KeyParameters",
    "SealedKeyError",
    "seal_decoder_key",
    "seal_secret",
    "unseal_decoder_key",
    "unseal_secret",
]

_PREFIX = "msk1:"


class SealedKeyError(StsInputError):
    """A sealed key does not open under this KEK and context (wrong KEK, or tampered)."""

    hint = (
        "check that the key-encryption key and the key's parameters are the ones it was sealed with"
    )


@dataclass(frozen=True, slots=True)
class KeyParameters:
    """The public identity of a decoder key and how it is used.

    Attributes
    ----------
    supply_group_code : str
        SGC, 6 digits.
    tariff_index : str
        TI, 2 digits.
    key_revision_number : int
        KRN, 1-9.
    key_type : int
        KT: 0 initialisation (DITK), 1 default (DDTK), 2 unique (DUTK), 3 common (DCTK).
        A meter under a DITK or DDTK accepts key change tokens but no credit.
    key_expiry_number : int
        KEN, 0-255; 255 never expires.
    base_date : BaseDate
        The base date of the TIDs of tokens under this key.
    ea : EncryptionAlgorithm
        EA07, EA09 or EA11.
    dkga : DecoderKeyGenerationAlgorithm
        How the vending side derives the key (DKGA02 or DKGA04).
    """

    supply_group_code: str
    tariff_index: str
    key_revision_number: int
    key_type: int
    key_expiry_number: int = 255
    base_date: BaseDate = BaseDate.Y1993
    ea: EncryptionAlgorithm = EncryptionAlgorithm.EA07
    dkga: DecoderKeyGenerationAlgorithm = DecoderKeyGenerationAlgorithm.DKGA02

    def __post_init__(self) -> None:
        validate_key_identity(
            self.key_type, self.supply_group_code, self.tariff_index, self.key_revision_number
        )
        ken = self.key_expiry_number
        if isinstance(ken, bool) or not isinstance(ken, int) or not 0 <= ken <= 255:
            raise StsInputError("ken", ken, "the key expiry number is 0 to 255")
        BaseDate(self.base_date)
        EncryptionAlgorithm(self.ea)
        dkga = DecoderKeyGenerationAlgorithm(self.dkga)
        if dkga is DecoderKeyGenerationAlgorithm.DKGA02 and self.ea is EncryptionAlgorithm.EA11:
            raise StsInputError("dkga", dkga.value, "EA11 (128-bit keys) needs DKGA04")
        if dkga is DecoderKeyGenerationAlgorithm.DKGA04 and self.ea is EncryptionAlgorithm.EA09:
            raise StsInputError("ea", self.ea.value, "DKGA04 keys are for EA07 or EA11")

    @property
    def key_bytes(self) -> int:
        return self.ea.key_bits // 8

    def context(self, holder: str) -> str:
        """Associated data that a sealed key is bound to: its holder and public fields."""
        return (
            f"{holder}|sgc={self.supply_group_code}|ti={self.tariff_index}"
            f"|krn={self.key_revision_number}|kt={self.key_type}|ken={self.key_expiry_number}"
            f"|bd={int(self.base_date)}|ea={self.ea.value}"
        )


@dataclass(frozen=True, slots=True)
class _Subkeys:
    encryption: bytes = field(repr=False)
    nonce: bytes = field(repr=False)


def _subkeys(kek: bytes) -> _Subkeys:
    if not isinstance(kek, bytes | bytearray) or len(kek) != 32:
        raise StsInputError("key_encryption_key", "<hidden>", "the KEK is 32 bytes (AES-256)")
    material = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"meterstack sts seal v1"
    ).derive(bytes(kek))
    return _Subkeys(material[:32], material[32:])


def seal_secret(secret: bytes, kek: bytes, context: str) -> str:
    """Encrypt ``secret`` with AES-256-GCM under ``kek``, bound to ``context``.

    Returns
    -------
    str
        ``"msk1:"`` followed by the URL-safe base64 of nonce, ciphertext and tag.
    """
    keys = _subkeys(kek)
    aad = context.encode("utf-8")
    nonce = hmac.new(keys.nonce, len(aad).to_bytes(4, "big") + aad + secret, hashlib.sha256)
    iv = nonce.digest()[:12]
    sealed = AESGCM(keys.encryption).encrypt(iv, bytes(secret), aad)
    return _PREFIX + base64.urlsafe_b64encode(iv + sealed).decode("ascii")


def unseal_secret(sealed: str, kek: bytes, context: str, field_name: str = "sealed_key") -> bytes:
    """Open a value made by :func:`seal_secret`; raise :class:`SealedKeyError` if it fails."""
    keys = _subkeys(kek)
    if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
        raise SealedKeyError(field_name, "<sealed>", f"a sealed key starts with {_PREFIX!r}")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode("ascii"))
    except ValueError:
        raise SealedKeyError(field_name, "<sealed>", "not valid base64") from None
    if len(raw) < 12 + 16:
        raise SealedKeyError(field_name, "<sealed>", "too short to be a sealed key")
    try:
        return AESGCM(keys.encryption).decrypt(raw[:12], raw[12:], context.encode("utf-8"))
    except InvalidTag:
        raise SealedKeyError(
            field_name, "<sealed>", "does not open: wrong KEK, or sealed for another meter or key"
        ) from None


def seal_decoder_key(decoder_key: bytes, parameters: KeyParameters, kek: bytes, holder: str) -> str:
    """Seal ``decoder_key`` for ``holder`` (e.g. a meter serial) under ``kek``."""
    if not isinstance(decoder_key, bytes | bytearray) or len(decoder_key) != parameters.key_bytes:
        raise StsInputError(
            "decoder_key",
            "<hidden>",
            f"EA{parameters.ea.value} takes a {parameters.key_bytes}-byte key",
        )
    return seal_secret(bytes(decoder_key), kek, parameters.context(holder))


def unseal_decoder_key(sealed: str, parameters: KeyParameters, kek: bytes, holder: str) -> bytes:
    """The decoder key sealed by :func:`seal_decoder_key` with the same arguments."""
    key = unseal_secret(sealed, kek, parameters.context(holder), "decoder_key")
    if len(key) != parameters.key_bytes:
        raise SealedKeyError("decoder_key", "<sealed>", "the sealed key has the wrong length")
    return key
