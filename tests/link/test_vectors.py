"""The crypto under the envelope against published test vectors."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from meterstack.link import SecuritySuite, SessionKeys, open_frame, seal, unwrap_key, wrap_key
from meterstack.link.envelope import HEADER_LENGTH, TAG_LENGTH
from meterstack.link.firmware import verify_signature

H = bytes.fromhex

# McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 3, 4 (AES-128)
# and 16 (AES-256), the vectors NIST's GCM validation uses.
GCM_K128 = H("feffe9928665731c6d6a8f9467308308")
GCM_K256 = GCM_K128 * 2
GCM_IV = H("cafebabefacedbaddecaf888")
GCM_P = H(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_A = H("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_CASES = [
    (
        GCM_K128,
        GCM_P,
        b"",
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
        "4d5c2af327cd64a62cf35abd2ba6fab4",
    ),
    (
        GCM_K128,
        GCM_P[:60],
        GCM_A,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    ),
    (
        GCM_K256,
        GCM_P[:60],
        GCM_A,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]


@pytest.mark.parametrize(("key", "plaintext", "aad", "ciphertext", "tag"), GCM_CASES)
def test_aes_gcm_vectors(
    key: bytes, plaintext: bytes, aad: bytes, ciphertext: str, tag: str
) -> None:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(GCM_IV)).encryptor()
    encryptor.authenticate_additional_data(aad)
    out = encryptor.update(plaintext) + encryptor.finalize()
    assert out.hex() == ciphertext
    assert encryptor.tag.hex() == tag


def test_sm4_block_vector_gbt_32907() -> None:
    # GB/T 32907-2016 appendix A, example 1 (also draft-ribose-cfrg-sm4, A.1).
    key = H("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (
        encryptor.update(key) + encryptor.finalize()
    ).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_vector_rfc_8998() -> None:
    # RFC 8998, appendix A.1.
    key = H("0123456789ABCDEFFEDCBA9876543210")
    iv = H("00001234567800000000ABCD")
    aad = H("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = H(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    out = encryptor.update(plaintext) + encryptor.finalize()
    assert out.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert encryptor.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


# -- An independent GCM over the SM4 block cipher, written from NIST SP 800-38D (6.3 GHASH,
# 6.5 GCTR, 7.1 GCM-AE), to cross-check the envelope's SM4-GCM beyond the one RFC vector.
_R = 0xE1 << 120


def _gf_mult(x: int, y: int) -> int:
    z, v = 0, y
    for i in range(127, -1, -1):
        if x >> i & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _ghash(h: int, data: bytes) -> int:
    y = 0
    for i in range(0, len(data), 16):
        y = _gf_mult(y ^ int.from_bytes(data[i : i + 16], "big"), h)
    return y


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 16)


def _sm4_gcm_reference(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    block = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    h = int.from_bytes(block.update(b"\0" * 16), "big")
    j0 = iv + b"\0\0\0\1"
    out = bytearray()
    counter = int.from_bytes(j0, "big")
    for i in range(0, len(plaintext), 16):
        counter = (counter & ~0xFFFFFFFF) | ((counter + 1) & 0xFFFFFFFF)
        stream = block.update(counter.to_bytes(16, "big"))
        out += bytes(a ^ b for a, b in zip(plaintext[i : i + 16], stream, strict=False))
    lengths = (len(aad) * 8).to_bytes(8, "big") + (len(plaintext) * 8).to_bytes(8, "big")
    s = _ghash(h, _pad(aad) + _pad(bytes(out)) + lengths)
    tag = (int.from_bytes(block.update(j0), "big") ^ s).to_bytes(16, "big")
    return bytes(out), tag


def test_reference_gcm_reproduces_rfc_8998() -> None:
    ciphertext, tag = _sm4_gcm_reference(
        H("0123456789ABCDEFFEDCBA9876543210"),
        H("00001234567800000000ABCD"),
        H(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
            "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
        ),
        H("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2"),
    )
    assert ciphertext.hex().upper().startswith("17F399F08C67D5EE19D0DC9969C4BB7D")
    assert ciphertext.hex().upper().endswith("A56834CBCF98C397B4024A2691233B8D")
    assert tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


@given(
    key=st.binary(min_size=16, max_size=16),
    title=st.binary(min_size=8, max_size=8),
    counter=st.integers(0, 2**32 - 1),
    plaintext=st.binary(max_size=100),
)
def test_sm4_envelope_matches_an_independent_gcm(
    key: bytes, title: bytes, counter: int, plaintext: bytes
) -> None:
    ak = hashlib.sha256(key).digest()[:16]
    keys = SessionKeys(SecuritySuite.SM4_GCM, 3, key, ak)
    frame = seal(plaintext, keys, system_title=title, invocation_counter=counter)
    header = frame[:HEADER_LENGTH]
    ciphertext, tag = _sm4_gcm_reference(
        key, title + counter.to_bytes(4, "big"), plaintext, header + ak
    )
    assert frame[HEADER_LENGTH:-TAG_LENGTH] == ciphertext
    assert frame[-TAG_LENGTH:] == tag[:TAG_LENGTH]
    assert open_frame(frame, keys)[1] == plaintext


# RFC 3394, 4.1 (128-bit KEK, 128-bit key), 4.3 (256-bit KEK, 128-bit key),
# 4.6 (256-bit KEK, 256-bit key).
KW_KEK128 = H("000102030405060708090A0B0C0D0E0F")
KW_KEK256 = H("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
KW_CASES = [
    (
        KW_KEK128,
        H("00112233445566778899AABBCCDDEEFF"),
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
    ),
    (
        KW_KEK256,
        H("00112233445566778899AABBCCDDEEFF"),
        "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
    ),
    (
        KW_KEK256,
        H("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"),
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
    ),
]


@pytest.mark.parametrize(("kek", "key", "wrapped"), KW_CASES)
def test_key_wrap_rfc_3394(kek: bytes, key: bytes, wrapped: str) -> None:
    assert wrap_key(kek, key).hex().upper() == wrapped
    assert unwrap_key(kek, H(wrapped)) == key


def test_ecdsa_p256_rfc_6979_vector_verifies() -> None:
    # RFC 6979, A.2.5: P-256, SHA-256, message "sample".
    x = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
    key = ec.derive_private_key(x, ec.SECP256R1())
    public = key.public_key().public_numbers()
    assert public.x == 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
    r = H("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716")
    s = H("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")
    assert verify_signature(b"sample", r + s, key.public_key())
    assert not verify_signature(b"samplf", r + s, key.public_key())
    deterministic = key.sign(b"sample", ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    assert decode_dss_signature(deterministic) == (
        int.from_bytes(r, "big"),
        int.from_bytes(s, "big"),
    )
