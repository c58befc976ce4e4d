"""EA11: MISTY1, a 64-bit block cipher with a 128-bit key, eight rounds (RFC 2994).

STS edition 2 encrypts the 64-bit token data block (most significant byte first) with
MISTY1 under the 128-bit decoder key [1]. The cipher follows RFC 2994 [2]:

* key schedule: ``EK[0..7]`` are the key's 16-bit words; ``EK[i+8] = FI(EK[i], EK[(i+1)%8])``;
  ``EK[i+16] = EK[i+8] & 0x1ff`` and ``EK[i+24] = EK[i+8] >> 9``;
* FI(x, k): a 9-bit/7-bit split through S9 and S7 (two S9 layers around one S7 layer),
  keyed with the 7 high and 9 low bits of ``k``;
* FO(x, k): a three-round Feistel of 16-bit halves, keys ``KOi1..KOi4 = EK[k], EK[k+2],
  EK[k+7], EK[k+4]`` and ``KIi1..KIi3 = EK[k+13], EK[k+9], EK[k+11]`` (indices mod 8 within
  each group of eight);
* FL(x, k): ``d1 ^= d0 & KLi1; d0 ^= d1 | KLi2`` with ``KLi1, KLi2`` = ``EK[k/2], EK[(k/2+6)%8+8]``
  for even ``k`` and ``EK[(k-1)/2+2)%8+8], EK[((k-1)/2+4)%8]`` for odd ``k``;
* eight Feistel rounds with FL layers before every odd round and at the end.

The S-boxes S7 and S9 are the constants of RFC 2994 section 2.3, recorded here as data.

References
----------
.. [1] IEC 62055-41:2018, encryption algorithm code 11 (MISTY1).
.. [2] H. Ohta, M. Matsui, RFC 2994 "A Description of the MISTY1 Encryption Algorithm",
       November 2000 (test data in its section 2.4 and Appendix).
"""

from __future__ import annotations

from meterstack.sts.errors import StsInputError

__all__ = ["S7", "S9", "misty1_decrypt", "misty1_encrypt", "misty1_expand_key"]

#: RFC 2994 S-box S7 (7-bit to 7-bit).
S7: tuple[int, ...] = (
    27, 50, 51, 90, 59, 16, 23, 84, 91, 26, 114, 115, 107, 44, 102, 73,
    31, 36, 19, 108, 55, 46, 63, 74, 93, 15, 64, 86, 37, 81, 28, 4,
    11, 70, 32, 13, 123, 53, 68, 66, 43, 30, 65, 20, 75, 121, 21, 111,
    14, 85, 9, 54, 116, 12, 103, 83, 40, 10, 126, 56, 2, 7, 96, 41,
    25, 18, 101, 47, 48, 57, 8, 104, 95, 120, 42, 76, 100, 69, 117, 61,
    89, 72, 3, 87, 124, 79, 98, 60, 29, 33, 94, 39, 106, 112, 77, 58,
    1, 109, 110, 99, 24, 119, 35, 5, 38, 118, 0, 49, 45, 122, 127, 97,
    80, 34, 17, 6, 71, 22, 82, 78, 113, 62, 105, 67, 52, 92, 88, 125,
)  # fmt: skip

#: RFC 2994 S-box S9 (9-bit to 9-bit).
S9: tuple[int, ...] = (
    451, 203, 339, 415, 483, 233, 251, 53, 385, 185, 279, 491, 307, 9, 45, 211,
    199, 330, 55, 126, 235, 356, 403, 472, 163, 286, 85, 44, 29, 418, 355, 280,
    331, 338, 466, 15, 43, 48, 314, 229, 273, 312, 398, 99, 227, 200, 500, 27,
    1, 157, 248, 416, 365, 499, 28, 326, 125, 209, 130, 490, 387, 301, 244, 414,
    467, 221, 482, 296, 480, 236, 89, 145, 17, 303, 38, 220, 176, 396, 271, 503,
    231, 364, 182, 249, 216, 337, 257, 332, 259, 184, 340, 299, 430, 23, 113, 12,
    71, 88, 127, 420, 308, 297, 132, 349, 413, 434, 419, 72, 124, 81, 458, 35,
    317, 423, 357, 59, 66, 218, 402, 206, 193, 107, 159, 497, 300, 388, 250, 406,
    481, 361, 381, 49, 384, 266, 148, 474, 390, 318, 284, 96, 373, 463, 103, 281,
    101, 104, 153, 336, 8, 7, 380, 183, 36, 25, 222, 295, 219, 228, 425, 82,
    265, 144, 412, 449, 40, 435, 309, 362, 374, 223, 485, 392, 197, 366, 478, 433,
    195, 479, 54, 238, 494, 240, 147, 73, 154, 438, 105, 129, 293, 11, 94, 180,
    329, 455, 372, 62, 315, 439, 142, 454, 174, 16, 149, 495, 78, 242, 509, 133,
    253, 246, 160, 367, 131, 138, 342, 155, 316, 263, 359, 152, 464, 489, 3, 510,
    189, 290, 137, 210, 399, 18, 51, 106, 322, 237, 368, 283, 226, 335, 344, 305,
    327, 93, 275, 461, 121, 353, 421, 377, 158, 436, 204, 34, 306, 26, 232, 4,
    391, 493, 407, 57, 447, 471, 39, 395, 198, 156, 208, 334, 108, 52, 498, 110,
    202, 37, 186, 401, 254, 19, 262, 47, 429, 370, 475, 192, 267, 470, 245, 492,
    269, 118, 276, 427, 117, 268, 484, 345, 84, 287, 75, 196, 446, 247, 41, 164,
    14, 496, 119, 77, 378, 134, 139, 179, 369, 191, 270, 260, 151, 347, 352, 360,
    215, 187, 102, 462, 252, 146, 453, 111, 22, 74, 161, 313, 175, 241, 400, 10,
    426, 323, 379, 86, 397, 358, 212, 507, 333, 404, 410, 135, 504, 291, 167, 440,
    321, 60, 505, 320, 42, 341, 282, 417, 408, 213, 294, 431, 97, 302, 343, 476,
    114, 394, 170, 150, 277, 239, 69, 123, 141, 325, 83, 95, 376, 178, 46, 32,
    469, 63, 457, 487, 428, 68, 56, 20, 177, 363, 171, 181, 90, 386, 456, 468,
    24, 375, 100, 207, 109, 256, 409, 304, 346, 5, 288, 443, 445, 224, 79, 214,
    319, 452, 298, 21, 6, 255, 411, 166, 67, 136, 80, 351, 488, 289, 115, 382,
    188, 194, 201, 371, 393, 501, 116, 460, 486, 424, 405, 31, 65, 13, 442, 50,
    61, 465, 128, 168, 87, 441, 354, 328, 217, 261, 98, 122, 33, 511, 274, 264,
    448, 169, 285, 432, 422, 205, 243, 92, 258, 91, 473, 324, 502, 173, 165, 58,
    459, 310, 383, 70, 225, 30, 477, 230, 311, 506, 389, 140, 143, 64, 437, 190,
    120, 0, 172, 272, 350, 292, 2, 444, 162, 234, 112, 508, 278, 348, 76, 450,
)  # fmt: skip


def _fi(value: int, subkey: int) -> int:
    """FI: 16-bit input and key, 16-bit output (RFC 2994, 2.3)."""
    d9 = value >> 7
    d7 = value & 0x7F
    d9 = S9[d9] ^ d7
    d7 = S7[d7] ^ (d9 & 0x7F)
    d7 ^= subkey >> 9
    d9 ^= subkey & 0x1FF
    d9 = S9[d9] ^ d7
    return d7 << 9 | d9


def misty1_expand_key(key: bytes) -> tuple[int, ...]:
    """The 32 16-bit words ``EK`` of the key schedule (RFC 2994, 2.2)."""
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        raise StsInputError("decoder_key", "<hidden>", "MISTY1 (EA11) needs a 128-bit key")
    words = [int.from_bytes(key[2 * i : 2 * i + 2], "big") for i in range(8)]
    expanded = [0] * 32
    expanded[:8] = words
    for i in range(8):
        expanded[i + 8] = _fi(words[i], words[(i + 1) % 8])
        expanded[i + 16] = expanded[i + 8] & 0x1FF
        expanded[i + 24] = expanded[i + 8] >> 9
    return tuple(expanded)


def _fo(ek: tuple[int, ...], value: int, k: int) -> int:
    t0, t1 = value >> 16, value & 0xFFFF
    t0 ^= ek[k]
    t0 = _fi(t0, ek[(k + 5) % 8 + 8])
    t0 ^= t1
    t1 ^= ek[(k + 2) % 8]
    t1 = _fi(t1, ek[(k + 1) % 8 + 8])
    t1 ^= t0
    t0 ^= ek[(k + 7) % 8]
    t0 = _fi(t0, ek[(k + 3) % 8 + 8])
    t0 ^= t1
    t1 ^= ek[(k + 4) % 8]
    return t1 << 16 | t0


def _fl_keys(ek: tuple[int, ...], k: int) -> tuple[int, int]:
    if k % 2 == 0:
        return ek[k // 2], ek[(k // 2 + 6) % 8 + 8]
    return ek[((k - 1) // 2 + 2) % 8 + 8], ek[((k - 1) // 2 + 4) % 8]


def _fl(ek: tuple[int, ...], value: int, k: int) -> int:
    first, second = _fl_keys(ek, k)
    d0, d1 = value >> 16, value & 0xFFFF
    d1 ^= d0 & first
    d0 ^= d1 | second
    return d0 << 16 | d1


def _fl_inverse(ek: tuple[int, ...], value: int, k: int) -> int:
    first, second = _fl_keys(ek, k)
    d0, d1 = value >> 16, value & 0xFFFF
    d0 ^= d1 | second
    d1 ^= d0 & first
    return d0 << 16 | d1


def _check_block(block: int) -> None:
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < 1 << 64:
        raise StsInputError("data_block", block, "a data block is a 64-bit unsigned integer")


def misty1_encrypt(key: bytes, block: int) -> int:
    """Encrypt the 64-bit ``block`` with MISTY1 under the 16-byte ``key`` [2].

    Parameters
    ----------
    key : bytes
        The 128-bit decoder key, natural (big-endian) byte order.
    block : int
        The 64-bit data block (its big-endian bytes are MISTY1's plaintext bytes).
    """
    _check_block(block)
    ek = misty1_expand_key(key)
    left, right = block >> 32, block & 0xFFFFFFFF
    for n in range(0, 8, 2):
        # Rounds n and n+1: FL layer, then two Feistel rounds.
        left = _fl(ek, left, n)
        right = _fl(ek, right, n + 1)
        right ^= _fo(ek, left, n)
        left ^= _fo(ek, right, n + 1)
    left = _fl(ek, left, 8)
    right = _fl(ek, right, 9)
    return right << 32 | left


def misty1_decrypt(key: bytes, block: int) -> int:
    """The inverse of :func:`misty1_encrypt`."""
    _check_block(block)
    ek = misty1_expand_key(key)
    right, left = block >> 32, block & 0xFFFFFFFF
    left = _fl_inverse(ek, left, 8)
    right = _fl_inverse(ek, right, 9)
    for n in range(6, -1, -2):
        left ^= _fo(ek, right, n + 1)
        right ^= _fo(ek, left, n)
        left = _fl_inverse(ek, left, n)
        right = _fl_inverse(ek, right, n + 1)
    return left << 32 | right
