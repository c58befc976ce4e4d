"""EA07, EA09 and EA11 against published values and as exact inverses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterstack.sts import (
    EncryptionAlgorithm,
    StsInputError,
    dea_decrypt,
    dea_encrypt,
    misty1_decrypt,
    misty1_encrypt,
    sta_decrypt,
    sta_encrypt,
)
from meterstack.sts.misty1 import S7, S9, misty1_expand_key
from meterstack.sts.sta import (
    STA_FIRST_SUBSTITUTION,
    STA_PERMUTATION,
    STA_SECOND_SUBSTITUTION,
)

blocks = st.integers(0, (1 << 64) - 1)
keys64 = st.binary(min_size=8, max_size=8)
keys128 = st.binary(min_size=16, max_size=16)

RFC2994_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize(
    ("plain", "cipher"),
    [(0x0123456789ABCDEF, 0x8B1DA5F56AB3D07C), (0xFEDCBA9876543210, 0x04B68240B13BE95D)],
)
def test_misty1_reproduces_the_rfc_2994_test_data(plain: int, cipher: int) -> None:
    assert misty1_encrypt(RFC2994_KEY, plain) == cipher
    assert misty1_decrypt(RFC2994_KEY, cipher) == plain


def test_misty1_key_schedule_matches_rfc_2994() -> None:
    expanded = misty1_expand_key(RFC2994_KEY)
    k_prime = b"".join(word.to_bytes(2, "big") for word in expanded[8:16])
    assert k_prime.hex() == "cf518e7f5e29673acdbc07d6bf355e11"


def test_misty1_s_boxes_are_permutations() -> None:
    assert sorted(S7) == list(range(128))
    assert sorted(S9) == list(range(512))


def test_dea_is_single_des() -> None:
    # The classic DES known answer: key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815.
    key = bytes.fromhex("0123456789abcdef")
    assert dea_encrypt(key, int.from_bytes(b"Now is t", "big")) == 0x3FA40E8A984D4815
    assert dea_decrypt(key, 0x3FA40E8A984D4815).to_bytes(8, "big") == b"Now is t"


def test_sta_tables_are_permutations() -> None:
    assert sorted(STA_FIRST_SUBSTITUTION) == list(range(16))
    assert sorted(STA_SECOND_SUBSTITUTION) == list(range(16))
    assert sorted(STA_PERMUTATION) == list(range(64))


@given(keys64, blocks)
def test_sta_decryption_inverts_encryption(key: bytes, block: int) -> None:
    assert sta_decrypt(key, sta_encrypt(key, block)) == block


@given(keys64, blocks)
def test_dea_decryption_inverts_encryption(key: bytes, block: int) -> None:
    assert dea_decrypt(key, dea_encrypt(key, block)) == block


@given(keys128, blocks)
def test_misty1_decryption_inverts_encryption(key: bytes, block: int) -> None:
    assert misty1_decrypt(key, misty1_encrypt(key, block)) == block


def test_sta_changes_with_every_key_bit() -> None:
    key = bytes.fromhex("e653341f9d5bf36f")
    block = 0x0123456789ABCDEF
    reference = sta_encrypt(key, block)
    for bit in range(64):
        flipped = (int.from_bytes(key, "big") ^ (1 << bit)).to_bytes(8, "big")
        assert sta_encrypt(flipped, block) != reference


@pytest.mark.parametrize(
    ("ea", "key"),
    [
        (EncryptionAlgorithm.EA07, b"1234567"),
        (EncryptionAlgorithm.EA09, b"123456789"),
        (EncryptionAlgorithm.EA11, b"12345678"),
    ],
)
def test_a_key_of_the_wrong_length_is_refused_without_showing_it(
    ea: EncryptionAlgorithm, key: bytes
) -> None:
    with pytest.raises(StsInputError) as caught:
        ea.encrypt(key, 0)
    assert caught.value.field == "decoder_key"
    assert caught.value.value == "<hidden>"


def test_bad_blocks_are_refused() -> None:
    with pytest.raises(StsInputError, match="data_block"):
        sta_encrypt(bytes(8), 1 << 64)
    with pytest.raises(StsInputError, match="data_block"):
        misty1_encrypt(bytes(16), -1)
