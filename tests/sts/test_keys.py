"""Decoder keys sealed at rest: round trip, binding to their context, nothing in clear."""

from __future__ import annotations

import base64

import pytest

from meterstack.sts import (
    BaseDate,
    EncryptionAlgorithm,
    KeyParameters,
    SealedKeyError,
    StsInputError,
    VendingKey,
    seal_decoder_key,
    unseal_decoder_key,
)
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm

KEK = bytes(range(32))
KEY = bytes.fromhex("e653341f9d5bf36f")
PARAMS = KeyParameters("123456", "01", 1, 2)


def test_a_sealed_key_opens_with_its_kek_and_context() -> None:
    sealed = seal_decoder_key(KEY, PARAMS, KEK, "METER1")
    assert sealed.startswith("msk1:")
    assert unseal_decoder_key(sealed, PARAMS, KEK, "METER1") == KEY
    assert seal_decoder_key(KEY, PARAMS, KEK, "METER1") == sealed  # deterministic


def test_the_key_is_not_in_the_sealed_text() -> None:
    sealed = seal_decoder_key(KEY, PARAMS, KEK, "METER1")
    raw = base64.urlsafe_b64decode(sealed.removeprefix("msk1:"))
    assert KEY not in raw
    assert KEY.hex() not in sealed.lower()


@pytest.mark.parametrize(
    ("kek", "parameters", "holder"),
    [
        (bytes(32), PARAMS, "METER1"),  # another KEK
        (KEK, PARAMS, "METER2"),  # moved to another meter
        (KEK, KeyParameters("123456", "02", 1, 2), "METER1"),  # relabelled
        (KEK, KeyParameters("123456", "01", 1, 2, 254), "METER1"),
    ],
)
def test_a_sealed_key_does_not_open_elsewhere(
    kek: bytes, parameters: KeyParameters, holder: str
) -> None:
    sealed = seal_decoder_key(KEY, PARAMS, KEK, "METER1")
    with pytest.raises(SealedKeyError):
        unseal_decoder_key(sealed, parameters, kek, holder)


def test_tampered_or_malformed_sealed_text_is_refused() -> None:
    sealed = seal_decoder_key(KEY, PARAMS, KEK, "METER1")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (flipped, "msk1:!!", "msk1:AAAA", "plain-e653341f9d5bf36f"):
        with pytest.raises(SealedKeyError):
            unseal_decoder_key(bad, PARAMS, KEK, "METER1")


def test_a_kek_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(StsInputError, match="key_encryption_key"):
        seal_decoder_key(KEY, PARAMS, bytes(16), "METER1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"supply_group_code": "12345"}, "sgc"),
        ({"tariff_index": "1"}, "ti"),
        ({"key_revision_number": 0}, "krn"),
        ({"key_type": 4}, "key_type"),
        ({"key_expiry_number": 256}, "ken"),
        ({"ea": EncryptionAlgorithm.EA11}, "dkga"),
        (
            {"ea": EncryptionAlgorithm.EA09, "dkga": DecoderKeyGenerationAlgorithm.DKGA04},
            "ea",
        ),
    ],
)
def test_bad_key_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "supply_group_code": "123456",
        "tariff_index": "01",
        "key_revision_number": 1,
        "key_type": 2,
        "base_date": BaseDate.Y1993,
    }
    values.update(kwargs)
    with pytest.raises(StsInputError) as caught:
        KeyParameters(**values)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_vending_key_never_shows() -> None:
    key = VendingKey.from_hex("abababababababab")
    assert "abab" not in repr(key).lower()
    assert "abab" not in str(key).lower()
    with pytest.raises(StsInputError) as caught:
        VendingKey.from_hex("abababababababzz")
    assert "abab" not in str(caught.value).lower()
