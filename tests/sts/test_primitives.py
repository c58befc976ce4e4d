"""CRC, amount coding, data block, PAN and TID against their definitions and published values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterstack.core.errors import InvalidInputError
from meterstack.sts import (
    MAX_AMOUNT,
    MAX_TID,
    BaseDate,
    MeterPan,
    StsInputError,
    TokenFormatError,
    build_block,
    crc16,
    decode_amount,
    encode_amount,
    group_digits,
    insert_class,
    key_expired,
    local_time_of_tid,
    luhn_check_digit,
    parse_token_digits,
    remove_class,
    split_block,
    tid_at,
    tid_from_local,
    token_crc,
    token_digits,
)

from .support import representable_at_least

# ---------------------------------------------------------------- CRC


def test_crc16_has_the_catalogued_check_value() -> None:
    # CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF, no final XOR): check = 0x4B37.
    assert crc16(b"123456789") == 0x4B37


def test_token_crc_reproduces_the_sts_association_worked_examples() -> None:
    # STS Association definitions: 50 bits 0 00 4A 2D 90 0F F2 -> CRC 0FFA; CRC_C -> 7BC4.
    value = 0x00004A2D900FF2
    assert token_crc(value) == 0x0FFA
    assert token_crc(value, currency=True) == 0x7BC4


def test_a_currency_token_block_uses_crc_c() -> None:
    data = 0x4A2D900FF2
    assert build_block(0, 4, data) & 0xFFFF == token_crc(4 << 44 | data, currency=True)
    assert build_block(0, 0, data) & 0xFFFF == token_crc(data)


@given(st.integers(0, 3), st.integers(0, 15), st.integers(0, (1 << 44) - 1), st.integers(0, 63))
def test_a_flipped_bit_fails_the_crc(token_class: int, subclass: int, data: int, bit: int) -> None:
    block = build_block(token_class, subclass, data)
    assert split_block(token_class, block) == (subclass, data, True)
    assert not split_block(token_class, block ^ (1 << bit))[2]


# ---------------------------------------------------------------- amount


def _value(code: int) -> int:
    """Equation of IEC 62055-41 6.3.5, written out independently."""
    e, m = code >> 14, code & 0x3FFF
    return m * 10**e + sum(2**14 * 10 ** (n - 1) for n in range(1, e + 1))


def test_every_amount_code_decodes_by_the_equation_and_encodes_back() -> None:
    previous = -1
    for code in range(1 << 16):
        value = decode_amount(code)
        assert value == _value(code)
        assert value > previous  # strictly increasing: one code per value
        assert encode_amount(value) == code
        previous = value
    assert previous == MAX_AMOUNT == 18_201_624


@given(st.integers(0, MAX_AMOUNT))
def test_encoding_rounds_up_to_the_nearest_representable_amount(quantity: int) -> None:
    assert decode_amount(encode_amount(quantity)) == representable_at_least(quantity)


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        (16383, 16383),  # e = 0, m = 16383
        (16384, 1 << 14),  # carry into e = 1, m = 0
        (180223, 2 << 14),  # m would be 16384 at e = 1: carries to e = 2, m = 0
        (18201624, 3 << 14 | 16383),
    ],
)
def test_amount_boundaries(quantity: int, code: int) -> None:
    assert encode_amount(quantity) == code


@pytest.mark.parametrize("bad", [-1, MAX_AMOUNT + 1, 1.5, True, "10"])
def test_bad_amounts_are_refused(bad: object) -> None:
    with pytest.raises(StsInputError, match="amount"):
        encode_amount(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- data block and display


@given(st.integers(0, 3), st.integers(0, (1 << 64) - 1))
def test_class_transposition_round_trips(token_class: int, block: int) -> None:
    number = insert_class(token_class, block)
    assert number < 1 << 66
    assert (number >> 27) & 3 == token_class
    assert remove_class(number) == (token_class, block)
    assert parse_token_digits(token_digits(number)) == number


def test_the_displaced_bits_go_to_bits_65_and_64() -> None:
    block = 1 << 28  # only bit 28 set
    assert insert_class(0, block) == 1 << 65
    assert insert_class(3, 1 << 27) == 1 << 64 | 3 << 27


@pytest.mark.parametrize(
    "bad",
    [
        "1234",
        "2371610050118319419x",
        "73786976294838206464",
        "",
        "２３７１６１００５０１１８３１９４１９７",
    ],
)
def test_bad_token_text_is_a_format_error(bad: str) -> None:
    with pytest.raises(TokenFormatError, match="token"):
        parse_token_digits(bad)


def test_digits_are_grouped_for_display_and_separators_are_ignored() -> None:
    assert group_digits("23716100501183194197") == "2371 6100 5011 8319 4197"
    assert parse_token_digits("2371-6100-5011-8319-4197") == 23716100501183194197


# ---------------------------------------------------------------- PAN


def test_luhn_check_digit_of_known_numbers() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the textbook example of ISO/IEC 7812-1
    assert MeterPan("600727", "00000000000").pan == "600727000000000009"
    assert MeterPan.parse("000001000000000082") == MeterPan("000001", "00000000008")


def test_the_pan_block_drops_the_first_digit_and_zeros_the_drn_for_common_keys() -> None:
    pan = MeterPan("600727", "12345678901")
    assert pan.pan_block(2) == bytes.fromhex("0072712345678901")  # IIN's last 5 + DRN
    assert pan.pan_block(3) == bytes.fromhex("0072700000000000")
    assert MeterPan("1234", "5678901234567").pan_block(2) == bytes.fromhex("2345678901234567")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: MeterPan.parse("600727000000000008"), "pan"),
        (lambda: MeterPan.parse("60072700000000000"), "pan"),
        (lambda: MeterPan("600727", "0000000000"), "drn"),
        (lambda: MeterPan("60072A", "00000000000"), "iin"),
    ],
)
def test_bad_pans_are_refused(call: object, field: str) -> None:
    with pytest.raises(StsInputError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field


# ---------------------------------------------------------------- TID


def test_tid_counts_local_minutes_from_the_base_date() -> None:
    assert tid_from_local(datetime(1993, 1, 1, 0, 1), BaseDate.Y1993) == 1
    assert tid_from_local(datetime(2004, 4, 1, 0, 30, 59), BaseDate.Y1993) == 5915550
    assert local_time_of_tid(5915550, BaseDate.Y1993) == datetime(2004, 4, 1, 0, 30)


def test_the_1993_base_date_runs_out_in_november_2024() -> None:
    last = local_time_of_tid(MAX_TID, BaseDate.Y1993)
    assert last == datetime(1993, 1, 1) + timedelta(minutes=2**24 - 1)
    assert last.date().isoformat() == "2024-11-24"
    with pytest.raises(StsInputError, match="rollover"):
        tid_from_local(last + timedelta(minutes=1), BaseDate.Y1993)
    assert tid_from_local(last + timedelta(minutes=1), BaseDate.Y2014) > 0
    assert BaseDate.Y1993.next() is BaseDate.Y2014


def test_tid_uses_the_utilitys_local_time() -> None:
    at = datetime(2004, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Johannesburg (+2)
    assert tid_at(at, "Africa/Johannesburg", BaseDate.Y1993) == 5915550
    assert tid_at(at, "UTC", BaseDate.Y1993) == 5915550 - 120


def test_key_expiry_compares_the_tids_high_byte() -> None:
    assert not key_expired(0xFFFFFF, 255)
    assert key_expired(0x5A0000, 0x59)
    assert not key_expired(0x59FFFF, 0x59)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: tid_from_local(datetime(1992, 12, 31, 23, 59), BaseDate.Y1993), "time"),
        (lambda: tid_from_local(datetime(2004, 1, 1, tzinfo=UTC), BaseDate.Y1993), "time"),
        (lambda: tid_at(datetime(2004, 1, 1), "UTC", BaseDate.Y1993), "time"),
        (lambda: BaseDate.parse("2000"), "base_date"),
        (lambda: local_time_of_tid(MAX_TID + 1, BaseDate.Y1993), "tid"),
    ],
)
def test_bad_times_are_refused(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field
