"""The secure envelope: authenticated encryption of one message, after DLMS/COSEM.

A frame is a 16-byte header, the ciphertext, a 12-byte GCM tag and, for the signed suite,
an ECDSA signature::

    frame  = header || ciphertext || tag[12] [|| signature]
    header = version[1] || SC[1] || key_id[1] || 0x00 || system_title[8] || IC[4]
    SC     = 0x30 | suite                (bit 5 encrypted, bit 4 authenticated)
    nonce  = system_title || IC          (96 bits)
    AAD    = header || AK

The nonce is the DLMS/COSEM one [1]_: the sender's 8-byte system title and its 4-byte
invocation counter (IC), which never repeats under a key (:mod:`meterstack.link.counters`).
As in DLMS the additional authenticated data carries the security control byte and the
authentication key AK; here the whole header is authenticated so the key generation, the
title and the counter cannot be altered either. The tag is truncated to 12 bytes as in
DLMS security suite 0 (SP 800-38D [2]_ allows 96-bit tags).

Suites
------
* 0, ``AES_128_GCM``: DLMS security suite 0, AES-128-GCM (single-phase meters, seed 001).
* 2, ``AES_256_GCM_ECDSA_P384``: DLMS security suite 2's primitives, AES-256-GCM and an
  ECDSA P-384/SHA-384 signature [3]_ by the sender over header, ciphertext and tag, raw
  ``r || s`` (96 bytes) (three-phase meters).
* 8, ``SM4_GCM``: SM4 (GB/T 32907-2016) in GCM, as RFC 8998 uses it [4]_ (seed 003).
  The number is meterstack's: DLMS assigns no suite to SM4.

References
----------
.. [1] IEC 62056-5-3:2017 (DLMS/COSEM Green Book, ed. 8), 9.2.7 Cryptographic algorithms,
   security suites 0-2, initialization vector and additional authenticated data.
.. [2] NIST SP 800-38D, Recommendation for Block Cipher Modes of Operation: Galois/Counter
   Mode (GCM) and GMAC, 2007, 5.2.1.2 (tag lengths).
.. [3] FIPS 186-5, Digital Signature Standard, 2023 (ECDSA).
.. [4] RFC 8998, ShangMi (SM) Cipher Suites for TLS 1.3, 2021, 3.1 and appendix A.1.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meterstack.core.errors import InvalidInputError
from meterstack.link.errors import EnvelopeError, RejectReason

FRAME_VERSION = 1
HEADER_LENGTH = 16
TAG_LENGTH = 12
SYSTEM_TITLE_LENGTH = 8
MAX_INVOCATION_COUNTER = 2**32 - 1
_HEADER = struct.Struct(">BBBB8sI")


class SecuritySuite(IntEnum):
    """The security suites of the envelope."""

    AES_128_GCM = 0
    AES_256_GCM_ECDSA_P384 = 2
    SM4_GCM = 8

    @property
    def key_length(self) -> int:
        """Length of the encryption and authentication keys. [bytes]"""
        return 32 if self is SecuritySuite.AES_256_GCM_ECDSA_P384 else 16

    @property
    def signed(self) -> bool:
        return self is SecuritySuite.AES_256_GCM_ECDSA_P384

    @property
    def signature_length(self) -> int:
        return 96 if self.signed else 0


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """One generation of symmetric keys: the encryption key EK and authentication key AK."""

    suite: SecuritySuite
    key_id: int
    encryption_key: bytes
    authentication_key: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.key_id <= 255:
            raise InvalidInputError("key_id", self.key_id, "a key generation is 0-255")
        for name in ("encryption_key", "authentication_key"):
            key = getattr(self, name)
            if not isinstance(key, bytes) or len(key) != self.suite.key_length:
                raise InvalidInputError(
                    name,
                    f"{len(key) if isinstance(key, bytes) else key!r} bytes",
                    f"suite {self.suite.name} needs {self.suite.key_length}-byte keys",
                )


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The clear-text header of a frame."""

    suite: SecuritySuite
    key_id: int
    system_title: bytes
    invocation_counter: int

    def to_bytes(self) -> bytes:
        return _HEADER.pack(
            FRAME_VERSION,
            0x30 | int(self.suite),
            self.key_id,
            0,
            self.system_title,
            self.invocation_counter,
        )

    @property
    def nonce(self) -> bytes:
        """The 96-bit GCM initialization vector: system title || invocation counter."""
        return self.system_title + self.invocation_counter.to_bytes(4, "big")


def validate_system_title(title: bytes, field: str = "system_title") -> bytes:
    if not isinstance(title, bytes) or len(title) != SYSTEM_TITLE_LENGTH:
        raise InvalidInputError(field, title, "a system title is 8 bytes")
    return title


def read_header(frame: bytes) -> EnvelopeHeader:
    """Parse the clear-text header of ``frame``.

    Raises
    ------
    EnvelopeError
        ``MALFORMED``: too short, another frame version, or an unknown suite.
    """
    if not isinstance(frame, bytes) or len(frame) < HEADER_LENGTH + TAG_LENGTH:
        size = len(frame) if isinstance(frame, bytes) else type(frame).__name__
        raise EnvelopeError(RejectReason.MALFORMED, f"frame of {size} bytes is too short")
    version, control, key_id, _reserved, title, counter = _HEADER.unpack_from(frame)
    if version != FRAME_VERSION:
        raise EnvelopeError(RejectReason.MALFORMED, f"frame version {version} is not 1")
    if control & 0x30 != 0x30:
        raise EnvelopeError(RejectReason.MALFORMED, f"security control 0x{control:02x}")
    try:
        suite = SecuritySuite(control & 0x0F)
    except ValueError:
        raise EnvelopeError(
            RejectReason.MALFORMED, f"unknown security suite {control & 0x0F}"
        ) from None
    return EnvelopeHeader(suite, key_id, title, counter)


@functools.lru_cache(maxsize=4096)
def _algorithm(suite: SecuritySuite, key: bytes) -> algorithms.AES | algorithms.SM4:
    """The block cipher of ``key``, made once per key (a receiver opens many frames)."""
    return algorithms.SM4(key) if suite is SecuritySuite.SM4_GCM else algorithms.AES(key)


def _cipher(suite: SecuritySuite, key: bytes, mode: modes.GCM) -> Cipher[modes.GCM]:
    return Cipher(_algorithm(suite, key), mode)


def seal(
    plaintext: bytes,
    keys: SessionKeys,
    *,
    system_title: bytes,
    invocation_counter: int,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Encrypt and authenticate ``plaintext`` into a frame.

    Parameters
    ----------
    plaintext : bytes
        The encoded message.
    keys : SessionKeys
        The key generation to use.
    system_title : bytes
        The sender's 8-byte system title.
    invocation_counter : int
        A value never used before with these keys by this sender, 0 to 2**32 - 1.
    signing_key : EllipticCurvePrivateKey, optional
        The sender's P-384 key; required by the signed suite.
    """
    validate_system_title(system_title)
    if not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
        raise InvalidInputError(
            "invocation_counter", invocation_counter, "a 32-bit unsigned counter"
        )
    header = EnvelopeHeader(keys.suite, keys.key_id, system_title, invocation_counter)
    header_bytes = header.to_bytes()
    encryptor = _cipher(keys.suite, keys.encryption_key, modes.GCM(header.nonce)).encryptor()
    encryptor.authenticate_additional_data(header_bytes + keys.authentication_key)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    frame = header_bytes + ciphertext + encryptor.tag[:TAG_LENGTH]
    if keys.suite.signed:
        if signing_key is None or not isinstance(signing_key.curve, ec.SECP384R1):
            raise InvalidInputError(
                "signing_key", signing_key, "the signed suite needs the sender's P-384 key"
            )
        r, s = decode_dss_signature(signing_key.sign(frame, ec.ECDSA(hashes.SHA384())))
        frame += r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return frame


def open_frame(
    frame: bytes,
    keys: SessionKeys,
    *,
    verify_key: ec.EllipticCurvePublicKey | None = None,
    header: EnvelopeHeader | None = None,
) -> tuple[EnvelopeHeader, bytes]:
    """Verify and decrypt ``frame`` with ``keys``; return its header and the plaintext.

    ``header`` is ``read_header(frame)`` when the caller has parsed it already.

    The caller checks the invocation counter against its replay window *after* this
    succeeds, so an unauthenticated frame never moves the window.

    Raises
    ------
    EnvelopeError
        ``MALFORMED``, ``SUITE_MISMATCH`` (not the suite of ``keys``), ``UNKNOWN_KEY``
        (another key generation), ``BAD_SIGNATURE`` or ``AUTHENTICATION_FAILED``.
    """
    if header is None:
        header = read_header(frame)
    if header.suite is not keys.suite:
        raise EnvelopeError(
            RejectReason.SUITE_MISMATCH,
            f"frame uses {header.suite.name}, the sender's keys are {keys.suite.name}",
        )
    if header.key_id != keys.key_id:
        raise EnvelopeError(
            RejectReason.UNKNOWN_KEY, f"key generation {header.key_id}, not {keys.key_id}"
        )
    signature_length = keys.suite.signature_length
    if len(frame) < HEADER_LENGTH + TAG_LENGTH + signature_length:
        raise EnvelopeError(RejectReason.MALFORMED, "frame too short for its suite")
    body = frame[: len(frame) - signature_length] if signature_length else frame
    if signature_length:
        if verify_key is None:
            raise EnvelopeError(RejectReason.BAD_SIGNATURE, "no public key for this sender")
        raw = frame[len(body) :]
        signature = encode_dss_signature(
            int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")
        )
        try:
            verify_key.verify(signature, body, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise EnvelopeError(
                RejectReason.BAD_SIGNATURE, "ECDSA P-384 signature does not verify"
            ) from None
    header_bytes = body[:HEADER_LENGTH]
    tag = body[-TAG_LENGTH:]
    ciphertext = body[HEADER_LENGTH:-TAG_LENGTH]
    decryptor = _cipher(
        keys.suite, keys.encryption_key, modes.GCM(header.nonce, tag, min_tag_length=TAG_LENGTH)
    ).decryptor()
    decryptor.authenticate_additional_data(header_bytes + keys.authentication_key)
    try:
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise EnvelopeError(
            RejectReason.AUTHENTICATION_FAILED, "GCM tag does not verify: altered or wrong key"
        ) from None
    return header, plaintext
