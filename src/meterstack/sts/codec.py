"""Tokens to and from their 20 digits: data block, encryption, transposition, display.

Encoding: ``build_block`` -> encrypt under the decoder key (not class 1) -> ``insert_class``
-> 20 digits. Decoding: 20 digits -> ``remove_class`` -> decrypt (not class 1) ->
``split_block`` (CRC check) -> token fields. A token decrypted under the wrong key fails
its CRC with probability 1 - 2**-16.

References
----------
.. [1] IEC 62055-41:2018: token data, encryption and the decimal token carrier.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterstack.sts.datablock import (
    TokenClass,
    build_block,
    insert_class,
    parse_token_digits,
    remove_class,
    split_block,
    token_digits,
)
from meterstack.sts.ea import EncryptionAlgorithm
from meterstack.sts.errors import StsInputError
from meterstack.sts.tokens import Token, UnsupportedTokenError, decode_fields

__all__ = ["DecodedToken", "decode_token", "encode_token"]


def _check_key(decoder_key: bytes | None, ea: EncryptionAlgorithm) -> bytes:
    if not isinstance(decoder_key, bytes | bytearray):
        raise StsInputError("decoder_key", "<missing>", "an encrypted token needs a decoder key")
    if len(decoder_key) * 8 != ea.key_bits:
        raise StsInputError(
            "decoder_key", "<hidden>", f"EA{ea.value} takes a {ea.key_bits}-bit decoder key"
        )
    return bytes(decoder_key)


def encode_token(token: Token, decoder_key: bytes | None, ea: EncryptionAlgorithm) -> str:
    """The 20-digit token of ``token`` for the meter holding ``decoder_key``.

    Parameters
    ----------
    token : Token
        Any token kind of :mod:`meterstack.sts.tokens`.
    decoder_key : bytes or None
        The meter's decoder key, natural order (ignored for class 1, which is not encrypted).
    ea : EncryptionAlgorithm
        EA07, EA09 or EA11.
    """
    token_class = int(token.token_class)
    block = build_block(token_class, int(token.subclass), token.data)
    if token.token_class is not TokenClass.NON_METER_SPECIFIC:
        block = ea.encrypt(_check_key(decoder_key, ea), block)
    return token_digits(insert_class(token_class, block))


@dataclass(frozen=True, slots=True)
class DecodedToken:
    """What a token's digits decode to under a given key.

    ``token`` holds the fields read from the block; they mean something only when
    ``crc_ok`` is true (a wrong key gives random fields and, almost surely, a bad CRC).
    ``token`` is ``None`` for a class or subclass the standard reserves.
    """

    token_class: int
    subclass: int
    crc_ok: bool
    token: Token | None
    block: int


def decode_token(text: str, decoder_key: bytes | None, ea: EncryptionAlgorithm) -> DecodedToken:
    """Decode 20 digits with the meter's decoder key.

    Raises
    ------
    TokenFormatError
        The text is not 20 digits of a 66-bit number.
    StsInputError
        The key is missing or of the wrong length for ``ea`` (encrypted classes only).
    """
    token_class, block = remove_class(parse_token_digits(text))
    if token_class != TokenClass.NON_METER_SPECIFIC:
        block = ea.decrypt(_check_key(decoder_key, ea), block)
    subclass, data, crc_ok = split_block(token_class, block)
    try:
        token: Token | None = decode_fields(token_class, subclass, data)
    except UnsupportedTokenError:
        token = None
    return DecodedToken(token_class, subclass, crc_ok, token, block)
