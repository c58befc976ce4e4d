"""The vending-side API: what it issues decodes to what was asked, and bad input is named."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meterstack.sts import (
    BaseDate,
    CreditKind,
    CreditToken,
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    KeyChangeToken1,
    KeyChangeToken3,
    KeyChangeToken4,
    KeyParameters,
    ManagementKind,
    ManagementToken,
    MeterPan,
    MeterRecord,
    StsInputError,
    TokenIssuer,
    VendingKey,
    decode_token,
)

from .support import representable_at_least

VK = VendingKey.from_hex("abababababababab")
VK160 = VendingKey.from_hex("abababababababab949494949494949401234567")
METER = MeterRecord(MeterPan("600727", "00000000000"), KeyParameters("123456", "01", 1, 2))
METER_128 = MeterRecord(
    MeterPan("600727", "00000000000"),
    KeyParameters(
        "123457",
        "01",
        1,
        2,
        ea=EncryptionAlgorithm.EA11,
        dkga=DecoderKeyGenerationAlgorithm.DKGA04,
    ),
)
AT = datetime(2004, 4, 1, 0, 30)


def test_a_credit_token_carries_the_amount_time_and_kind() -> None:
    issuer = TokenIssuer(VK)
    issued = issuer.credit(METER, Decimal("25.6"), AT, rnd=5)
    assert issued.digits == "26456622012185850752"
    assert issued.display == "2645 6622 0121 8585 0752"
    assert issued.fields()["time"] == "2004-04-01T00:30"
    decoded = issuer.decode(METER, issued.digits)
    assert decoded.token == issued.token


def test_an_aware_time_is_taken_in_the_utilitys_zone() -> None:
    issuer = TokenIssuer(VK, "Africa/Johannesburg")
    aware = datetime(2004, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 local
    assert (
        issuer.credit(METER, Decimal("25.6"), aware, rnd=5).digits
        == issuer.credit(METER, Decimal("25.6"), AT, rnd=5).digits
    )


def test_amounts_round_up_to_the_token_resolution() -> None:
    issued = TokenIssuer(VK).credit(METER, Decimal("0.01"), AT)
    assert isinstance(issued.token, CreditToken)
    assert issued.token.amount == Decimal("0.1")
    currency = TokenIssuer(VK).credit(
        METER, Decimal("12.345678"), AT, kind=CreditKind.ELECTRICITY_CURRENCY
    )
    assert isinstance(currency.token, CreditToken)
    # 1 234 568 units of 0.00001 need exponent 2: rounded up to a multiple of 100 units.
    assert currency.token.quantity == representable_at_least(1_234_568) == 1_234_624
    assert currency.token.amount == Decimal("12.34624")


def test_the_rnd_is_random_when_not_given() -> None:
    issuer = TokenIssuer(VK)
    rnds = set()
    for _ in range(64):
        token = issuer.credit(METER, Decimal(1), AT).token
        assert isinstance(token, CreditToken)
        rnds.add(token.rnd)
    assert len(rnds) > 4


def test_management_tokens_decode_to_their_values() -> None:
    issuer = TokenIssuer(VK)
    cases = [
        (issuer.maximum_power_limit(METER, 5000, AT), ManagementKind.SET_MAXIMUM_POWER_LIMIT),
        (issuer.clear_credit(METER, AT, register=0), ManagementKind.CLEAR_CREDIT),
        (issuer.clear_tamper(METER, AT), ManagementKind.CLEAR_TAMPER),
        (issuer.set_tariff_rate(METER, 1234, AT), ManagementKind.SET_TARIFF_RATE),
        (
            issuer.maximum_phase_power_unbalance_limit(METER, 800, AT),
            ManagementKind.SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT,
        ),
    ]
    for issued, kind in cases:
        decoded = issuer.decode(METER, issued.digits)
        assert decoded.crc_ok
        assert isinstance(decoded.token, ManagementToken)
        assert decoded.token.kind is kind
    power = issuer.decode(METER, cases[0][0].digits).token
    assert isinstance(power, ManagementToken)
    assert power.power_limit_w == 5000


def test_a_128_bit_key_change_takes_four_tokens() -> None:
    issuer = TokenIssuer(VK160)
    new = KeyParameters(
        "654321", "02", 2, 2, 200, ea=EncryptionAlgorithm.EA11,
        dkga=DecoderKeyGenerationAlgorithm.DKGA04,
    )  # fmt: skip
    tokens = issuer.key_change(METER_128, new)
    assert [int(t.token.subclass) for t in tokens] == [3, 4, 8, 9]
    old_key = issuer.decoder_key(METER_128)
    parts = [decode_token(t.digits, old_key, EncryptionAlgorithm.EA11) for t in tokens]
    assert all(p.crc_ok for p in parts)
    first, third, fourth = parts[0].token, parts[2].token, parts[3].token
    assert isinstance(first, KeyChangeToken1)
    assert isinstance(third, KeyChangeToken3)
    assert isinstance(fourth, KeyChangeToken4)
    assert fourth.sgc_high << 12 | third.sgc_low == 654321
    new_key = issuer.decoder_key(MeterRecord(METER_128.pan, new))
    assert first.new_key_high == int.from_bytes(new_key[:4], "big")
    assert third.new_key_part == int.from_bytes(new_key[4:8], "big")
    assert fourth.new_key_part == int.from_bytes(new_key[8:12], "big")


def test_a_rollover_key_change_moves_to_the_next_base_date() -> None:
    issuer = TokenIssuer(VK)
    new = KeyParameters("123456", "01", 2, 2, base_date=BaseDate.Y2014)
    first = issuer.key_change(METER, new, rollover=True)[0].token
    assert isinstance(first, KeyChangeToken1)
    assert first.rollover
    with pytest.raises(StsInputError, match="new_base_date"):
        issuer.key_change(METER, new)  # 2014 without rollover
    with pytest.raises(StsInputError, match="new_base_date"):
        issuer.key_change(METER, KeyParameters("123456", "01", 2, 2), rollover=True)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda i: i.credit(METER, Decimal(0), AT), "amount"),
        (lambda i: i.credit(METER, Decimal("NaN"), AT), "amount"),
        (lambda i: i.credit(METER, Decimal("1820162.5"), AT), "amount"),
        (lambda i: i.credit(METER, 5, AT), "amount"),
        (lambda i: i.credit(METER, Decimal(1), AT, rnd=16), "rnd"),
        (lambda i: i.credit(METER, Decimal(1), datetime(1990, 1, 1)), "time"),
        (lambda i: i.credit(METER, Decimal(1), "2004-01-01"), "time"),
        (lambda i: i.maximum_power_limit(METER, 0, AT), "amount"),
        (lambda i: i.clear_credit(METER, AT, register=1 << 16), "value"),
        (
            lambda i: i.key_change(METER, KeyParameters("123456", "01", 1, 0)),
            "new_key_type",
        ),
        (lambda i: i.credit(METER_128, Decimal(1), AT), "vending_key"),
    ],
)
def test_bad_requests_name_the_field(call: object, field: str) -> None:
    with pytest.raises(StsInputError) as caught:
        call(TokenIssuer(VK))  # type: ignore[operator]
    assert caught.value.field == field


def test_dkga02_needs_a_64_bit_vending_key() -> None:
    with pytest.raises(StsInputError, match="vending_key"):
        TokenIssuer(VK160).credit(METER, Decimal(1), AT)
