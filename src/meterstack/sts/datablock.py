"""The token data block: class and subclass, CRC, the 66-bit transposition, 20 digits.

A token is built in four steps [1]:

1. the 64-bit data block: subclass (bits 63-60), 44 data bits (59-16) whose layout depends
   on the class and subclass, and the CRC (15-0) over class, subclass and data
   (:mod:`meterstack.sts.crc`);
2. encryption of the 64-bit block under the decoder key (class 1 tokens are not encrypted);
3. the class transposition: the two class bits go into bits 28 (class bit 1) and 27 (class
   bit 0) of the encrypted block, and the bits they displace move to bits 65 and 64, giving
   a 66-bit number;
4. the decimal display: that number as 20 decimal digits with leading zeros (2**66 - 1 has
   20 digits).

Decoding reverses the steps; the class is read before decryption, which is how class 1
tokens are recognised without a key.

References
----------
.. [1] IEC 62055-41:2018: the token data elements, the class transposition of the
       encrypted block and the 20-digit decimal display of the token carrier.
"""

from __future__ import annotations

from enum import IntEnum

from meterstack.sts.crc import token_crc
from meterstack.sts.errors import StsInputError, TokenFormatError

__all__ = [
    "MAX_TOKEN_NUMBER",
    "TokenClass",
    "build_block",
    "group_digits",
    "insert_class",
    "parse_token_digits",
    "remove_class",
    "split_block",
    "token_digits",
]

#: The largest 66-bit token number (20 decimal digits).
MAX_TOKEN_NUMBER = (1 << 66) - 1
_DATA_BITS = 44
_BLOCK_MASK = (1 << 64) - 1
_CLASS_POSITIONS = (1 << 28) | (1 << 27)


class TokenClass(IntEnum):
    """Token classes of IEC 62055-41."""

    CREDIT = 0
    NON_METER_SPECIFIC = 1
    METER_SPECIFIC = 2
    RESERVED = 3


def _field(name: str, value: int, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise StsInputError(name, value, f"must fit in {bits} bits (0 to {(1 << bits) - 1})")
    return value


def _is_currency(token_class: int, subclass: int) -> bool:
    """Currency credit tokens (class 0, subclasses 4-7) are protected by CRC_C."""
    return token_class == TokenClass.CREDIT and 4 <= subclass <= 7


def build_block(token_class: int, subclass: int, data: int) -> int:
    """The 64-bit data block ``subclass | data | CRC`` of a token.

    Parameters
    ----------
    token_class : int
        0-3; enters the CRC only.
    subclass : int
        0-15.
    data : int
        The 44 data bits of the class/subclass layout.
    """
    _field("class", token_class, 2)
    _field("subclass", subclass, 4)
    _field("data", data, _DATA_BITS)
    crc = token_crc(
        token_class << 48 | subclass << 44 | data, currency=_is_currency(token_class, subclass)
    )
    return subclass << 60 | data << 16 | crc


def split_block(token_class: int, block: int) -> tuple[int, int, bool]:
    """``(subclass, data, crc_ok)`` of a decrypted 64-bit data block."""
    _field("data_block", block, 64)
    subclass, data, crc = block >> 60, block >> 16 & ((1 << _DATA_BITS) - 1), block & 0xFFFF
    expected = token_crc(
        token_class << 48 | subclass << 44 | data, currency=_is_currency(token_class, subclass)
    )
    return subclass, data, expected == crc


def insert_class(token_class: int, encrypted: int) -> int:
    """The 66-bit token number: class bits into bits 28-27, the displaced bits to 65-64."""
    _field("class", token_class, 2)
    _field("encrypted_block", encrypted, 64)
    displaced = (encrypted >> 27) & 0b11
    number = (encrypted & ~_CLASS_POSITIONS) | token_class << 27
    return displaced << 64 | number


def remove_class(number: int) -> tuple[int, int]:
    """``(token_class, encrypted_block)`` of a 66-bit token number (inverse transposition)."""
    _field("token_number", number, 66)
    token_class = (number >> 27) & 0b11
    encrypted = (number & _BLOCK_MASK & ~_CLASS_POSITIONS) | (number >> 64) << 27
    return token_class, encrypted


def token_digits(number: int) -> str:
    """The 20-digit decimal display of a 66-bit token number."""
    _field("token_number", number, 66)
    return f"{number:020d}"


def parse_token_digits(text: str) -> int:
    """The 66-bit token number of a 20-digit token; spaces and dashes are ignored.

    Raises
    ------
    TokenFormatError
        Not 20 decimal digits, or a number above 2**66 - 1.
    """
    if not isinstance(text, str):
        raise TokenFormatError("token", text, "a token is a string of 20 digits")
    digits = text.strip().replace(" ", "").replace("-", "")
    if len(digits) != 20 or not digits.isdigit() or not digits.isascii():
        raise TokenFormatError("token", text, "a token has exactly 20 decimal digits")
    number = int(digits)
    if number > MAX_TOKEN_NUMBER:
        raise TokenFormatError("token", text, "the number exceeds 66 bits (2**66 - 1)")
    return number


def group_digits(digits: str, separator: str = " ") -> str:
    """``"23716100501183194197"`` -> ``"2371 6100 5011 8319 4197"`` for display."""
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
