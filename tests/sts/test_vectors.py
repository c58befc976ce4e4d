"""Every STS 531-1-0-02/-04 vector of ``shared/data/sts/vectors.json``, both ways."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterstack.sts import (
    CreditKind,
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyParameters,
    ManagementKind,
    ManagementToken,
    MeterTestToken,
    TokenIssuer,
    build_block,
    decode_token,
    meter_test_token,
    sta_encrypt,
)
from meterstack.sts.datablock import insert_class

from .support import Vector, representable_at_least, vectors

ALL = vectors()
SINGLE = [v for v in ALL if "token" in v.raw]
BY_ID = {v.id: v for v in ALL}


def _issue(vector: Vector) -> str:
    raw = vector.raw
    if raw["class"] == 1:
        return meter_test_token(
            raw["control"], raw["manufacturer_code"], subclass=raw["subclass"]
        ).digits
    issuer = TokenIssuer(vector.vending_key)
    meter = vector.meter
    rnd = vector.params["rnd"]
    if raw["class"] == 0:
        kind = CreditKind(raw["subclass"])
        return issuer.credit(meter, vector.amount, vector.time, kind=kind, rnd=rnd).digits
    if raw["subclass"] == ManagementKind.SET_MAXIMUM_POWER_LIMIT:
        return issuer.maximum_power_limit(meter, raw["amount"], vector.time, rnd=rnd).digits
    assert raw["subclass"] == ManagementKind.CLEAR_CREDIT
    return issuer.clear_credit(meter, vector.time, register=raw["amount"], rnd=rnd).digits


@pytest.mark.parametrize("vector", SINGLE, ids=[v.id for v in SINGLE])
def test_vector_encodes_to_the_published_token(vector: Vector) -> None:
    assert _issue(vector) == vector.raw["token"]


@pytest.mark.parametrize("vector", SINGLE, ids=[v.id for v in SINGLE])
def test_vector_decodes_back_to_its_fields(vector: Vector) -> None:
    raw = vector.raw
    if raw["class"] == 1:
        decoded = decode_token(raw["token"], None, vector.meter.keys.ea)
        assert decoded.crc_ok
        assert decoded.token == MeterTestToken(
            raw["subclass"], raw["control"], raw["manufacturer_code"]
        )
        return
    if "pan" in raw:  # another meter: its key comes from DKGA02 (pinned below)
        key = TokenIssuer(vector.vending_key).decoder_key(vector.meter)
    else:
        key = bytes.fromhex(vector.params["decoder_key_natural_hex"])
    decoded = decode_token(raw["token"], key, vector.meter.keys.ea)
    assert (decoded.token_class, decoded.subclass, decoded.crc_ok) == (
        raw["class"],
        raw["subclass"],
        True,
    )
    token = decoded.token
    assert isinstance(token, CreditToken | ManagementToken)
    assert token.rnd == vector.params["rnd"]
    assert token.tid == vector.minutes_since_base
    if isinstance(token, CreditToken):
        tenths = int(vector.amount * 10)
        assert token.quantity == representable_at_least(tenths)
        assert token.amount == Decimal(representable_at_least(tenths)) / 10
    elif token.kind is ManagementKind.SET_MAXIMUM_POWER_LIMIT:
        assert token.power_limit_w == representable_at_least(raw["amount"])
    else:
        assert token.value == raw["amount"]


def test_dkga02_gives_the_published_decoder_key_in_natural_byte_order() -> None:
    vector = BY_ID["CTSA10-1"]
    natural = bytes.fromhex(vector.params["decoder_key_natural_hex"])
    key = TokenIssuer(vector.vending_key).decoder_key(vector.meter)
    assert key == natural
    # Pin the byte order: the reversed (little-endian) key is a different key, and the STA
    # under it does not give the published token.
    assert key[::-1] != key
    token = decode_token(vector.raw["token"], key, vector.meter.keys.ea).token
    assert isinstance(token, CreditToken)
    # The same fields encrypted under the reversed key do not give the published token.
    wrong = insert_class(0, sta_encrypt(key[::-1], build_block(0, 0, token.data)))
    assert f"{wrong:020d}" != vector.raw["token"]


def test_dkga04_gives_the_published_128_bit_decoder_key() -> None:
    vector = BY_ID["04-CTSA01-1"]
    key = TokenIssuer(vector.vending_key).decoder_key(vector.meter)
    assert key.hex() == vector.params["decoder_key_natural_hex"]


def test_key_change_vector_both_ways() -> None:
    vector = BY_ID["CTSA05-1"]
    raw = vector.raw
    issuer = TokenIssuer(vector.vending_key)
    current = vector.meter
    new_keys = KeyParameters(
        supply_group_code=raw["new_sgc"],
        tariff_index=raw["new_ti"],
        key_revision_number=raw["new_krn"],
        key_type=raw["new_key_type"],
        key_expiry_number=vector.params["ken"],
    )
    tokens = issuer.key_change(current, new_keys)
    assert [t.digits for t in tokens] == raw["tokens"]

    old_key = bytes.fromhex(vector.params["decoder_key_natural_hex"])
    first = decode_token(raw["tokens"][0], old_key, current.keys.ea)
    second = decode_token(raw["tokens"][1], old_key, current.keys.ea)
    assert first.crc_ok
    assert second.crc_ok
    assert isinstance(first.token, KeyChangeToken1)
    assert isinstance(second.token, KeyChangeToken2)
    assert (first.token.ken_high, second.token.ken_low) == (0xF, 0xF)
    assert first.token.key_revision_number == raw["new_krn"]
    assert first.token.key_type == raw["new_key_type"]
    assert not first.token.rollover
    assert second.token.tariff_index == int(raw["new_ti"])
    new_key = first.token.new_key_high << 32 | second.token.new_key_low
    expected = issuer.decoder_key(type(current)(current.pan, new_keys))
    assert new_key.to_bytes(8, "big") == expected
