"""EA09: the data encryption algorithm (DES) applied to the 64-bit token data block.

The token data block, as 8 bytes most significant first, is encrypted with single DES
(FIPS 46-3) in ECB mode under the 64-bit decoder key [1]. The DES itself is the one of the
``cryptography`` package: its TripleDES with K1 = K2 = K3 is single DES (EDE with three
equal keys collapses to one encryption). DES ignores the key's parity bits.

DKGA02 uses the same primitive with the vending key (:func:`des_encrypt_bytes`).

References
----------
.. [1] IEC 62055-41:2018, encryption algorithm code 09 (DEA).
.. [2] FIPS PUB 46-3, Data Encryption Standard (1999).
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from meterstack.sts.errors import StsInputError

__all__ = ["dea_decrypt", "dea_encrypt", "des_decrypt_bytes", "des_encrypt_bytes"]


def _cipher(key: bytes, field: str) -> Cipher[modes.ECB]:
    if not isinstance(key, bytes | bytearray) or len(key) != 8:
        raise StsInputError(field, "<hidden>", "DES needs a 64-bit (8-byte) key")
    return Cipher(TripleDES(bytes(key) * 3), modes.ECB())


def des_encrypt_bytes(key: bytes, block: bytes, field: str = "key") -> bytes:
    """Single-DES encryption of one 8-byte ``block`` under the 8-byte ``key``."""
    encryptor = _cipher(key, field).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def des_decrypt_bytes(key: bytes, block: bytes, field: str = "key") -> bytes:
    """Single-DES decryption of one 8-byte ``block`` under the 8-byte ``key``."""
    decryptor = _cipher(key, field).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def dea_encrypt(key: bytes, block: int) -> int:
    """EA09: DES-encrypt the 64-bit data block ``block`` under the decoder key ``key``."""
    return int.from_bytes(des_encrypt_bytes(key, block.to_bytes(8, "big"), "decoder_key"), "big")


def dea_decrypt(key: bytes, block: int) -> int:
    """EA09: the inverse of :func:`dea_encrypt`."""
    return int.from_bytes(des_decrypt_bytes(key, block.to_bytes(8, "big"), "decoder_key"), "big")
