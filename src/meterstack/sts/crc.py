"""The token CRC: CRC-16 with the reflected polynomial 0xA001 and initial value 0xFFFF.

IEC 62055-41 protects every 64-bit token data block with a 16-bit CRC computed over the
token class, subclass and data fields (50 bits, right-aligned in 7 bytes, most significant
byte first). Currency credit tokens (class 0, subclasses 4-7) use CRC_C: the same CRC
with one byte 0x01 appended to those 7 bytes [3]. The generator polynomial is
x^16 + x^15 + x^2 + 1 (0x8005), processed least-significant bit first, i.e. with the
reflected constant 0xA001; the register starts at 0xFFFF and is not inverted at the end.
The CRC enters the data block low byte first.

References
----------
.. [1] IEC 62055-41:2018, the CRC data element of the token data block.
.. [2] The same CRC is catalogued as CRC-16/MODBUS (check value 0x4B37 for "123456789").
.. [3] STS Association, "Definitions: Cryptography" (CRC and CRC_C, with the worked
       examples 00 00 4A 2D 90 0F F2 -> 0FFA and, for CRC_C, -> 7BC4).
"""

from __future__ import annotations

__all__ = ["crc16", "token_crc"]

_POLY_REFLECTED = 0xA001


def _table() -> tuple[int, ...]:
    rows = []
    for byte in range(256):
        register = byte
        for _ in range(8):
            register = (register >> 1) ^ _POLY_REFLECTED if register & 1 else register >> 1
        rows.append(register)
    return tuple(rows)


_TABLE = _table()


def crc16(message: bytes) -> int:
    """CRC-16 (reflected 0xA001, initial 0xFFFF, no final XOR) of ``message``.

    Parameters
    ----------
    message : bytes
        The bytes to protect, in transmission order.

    Returns
    -------
    crc : int
        The 16-bit register as computed (low byte is the first to transmit).
    """
    register = 0xFFFF
    for byte in message:
        register = (register >> 8) ^ _TABLE[(register ^ byte) & 0xFF]
    return register


def token_crc(class_and_data: int, *, currency: bool = False) -> int:
    """The CRC field of a token data block, in the standard's byte order.

    Parameters
    ----------
    class_and_data : int
        Class (2 bits), subclass (4 bits) and the 44 data bits, as one 50-bit number with
        the class in the most significant bits.
    currency : bool
        Compute CRC_C (currency credit tokens): append the byte 0x01 first [3].

    Returns
    -------
    crc : int
        16-bit CRC field: the CRC register's low byte in bits 15-8, its high byte in 7-0.
    """
    message = class_and_data.to_bytes(7, "big") + (b"\x01" if currency else b"")
    register = crc16(message)
    return ((register & 0xFF) << 8) | (register >> 8)
