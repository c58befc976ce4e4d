"""The meter's STS token gateway: acceptance, the standard's refusals, lockout, key change,
effects on the meter model, and persistence of the gateway state."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterstack.core import CommandRefusedError, ConfigError, InvalidInputError
from meterstack.meter import (
    ControlState,
    FileStore,
    LogKind,
    MemoryStore,
    Meter,
    MeterConfig,
    NonVolatileStore,
    SQLiteStore,
)
from meterstack.meter.config import StsConfig
from meterstack.meter.store import encode_image
from meterstack.meter.token_gateway import LOCKOUT_MAX_S, TokenRejection
from meterstack.sts import (
    BaseDate,
    CreditKind,
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    KeyParameters,
    MeterPan,
    MeterRecord,
    TokenIssuer,
    VendingKey,
    meter_test_token,
    seal_decoder_key,
)

from .support import START, config, load, prepaid
from .test_store import _normal

KEK = bytes(range(1, 33))
VK = VendingKey.from_hex("abababababababab")
VK160 = VendingKey.from_hex("abababababababab949494949494949401234567")
ISSUER = TokenIssuer(VK)
KEYS = KeyParameters("123456", "01", 1, 2)
RECORD = MeterRecord(MeterPan("600727", "00000000000"), KEYS)
OTHER = MeterRecord(MeterPan("600727", "00000000017"), KEYS)
SECOND = timedelta(seconds=1)


def sts_config(
    record: MeterRecord = RECORD, serial: str = "TEST0001", vending: VendingKey = VK, **kw: Any
) -> StsConfig:
    keys = record.keys
    key = TokenIssuer(vending).decoder_key(record)
    values: dict[str, Any] = {
        "decoder_key": seal_decoder_key(key, keys, KEK, serial),
        "supply_group_code": keys.supply_group_code,
        "tariff_index": keys.tariff_index,
        "key_revision_number": keys.key_revision_number,
        "key_type": keys.key_type,
        "key_expiry_number": keys.key_expiry_number,
        "base_date": int(keys.base_date),
        "ea": keys.ea.value,
        "dkga": keys.dkga.value,
    }
    values.update(kw)
    return StsConfig(**values)


def energy_meter(**kw: Any) -> Meter:
    plan = prepaid(mode="energy", initial_credit=Decimal(5), low_credit_threshold=Decimal(1))
    values: dict[str, Any] = {"prepaid": plan, "sts": sts_config()}
    values.update(kw)
    return Meter(config(**values), commissioned_at=START, key_encryption_key=KEK)


def token_log(meter: Meter) -> list[str]:
    return [event.name for event in meter.event_logs[LogKind.TOKEN]]


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def credit(amount: str, minute: int, record: MeterRecord = RECORD) -> str:
    """A kWh credit token issued ``minute`` minutes after 2024-01-01 00:00 local (UTC)."""
    return ISSUER.credit(record, Decimal(amount), at(minute).replace(tzinfo=None), rnd=3).digits


# ---------------------------------------------------------------- acceptance and refusal


def test_a_credit_token_adds_kwh_through_the_top_up_path() -> None:
    meter = energy_meter()
    result = meter.enter_token(credit("25.6", 10), at(20))
    assert result.accepted
    assert result.reason is None
    assert (result.token_class, result.subclass) == (0, 0)
    assert result.amount == Decimal("25.6")
    assert result.issued_at == at(10)
    assert meter.credit is not None
    assert meter.credit.credit == Decimal("30.6")
    assert meter.credit.purchase_count == 1
    assert token_log(meter) == ["credit_token_accepted"]


def test_a_replayed_token_is_rejected_as_used() -> None:
    meter = energy_meter()
    token = credit("10", 10)
    assert meter.enter_token(token, at(20)).accepted
    again = meter.enter_token(token, at(21))
    assert not again.accepted
    assert again.reason is TokenRejection.USED
    assert meter.credit is not None
    assert meter.credit.credit == Decimal(15)
    assert token_log(meter) == ["credit_token_accepted", "token_rejected"]
    assert meter.event_logs[LogKind.TOKEN].entries()[-1].detail == "used class 0 subclass 0"


def test_a_token_for_another_meter_is_rejected_as_invalid() -> None:
    meter = energy_meter()
    result = meter.enter_token(credit("10", 10, OTHER), at(20))
    assert not result.accepted
    assert result.reason is TokenRejection.INVALID
    assert meter.credit is not None
    assert meter.credit.credit == Decimal(5)


@pytest.mark.parametrize("text", ["123", "abcdefghijabcdefghij", "99999999999999999999"])
def test_malformed_entries_are_format_errors(text: str) -> None:
    result = energy_meter().enter_token(text, at(1))
    assert result.reason is TokenRejection.FORMAT
    assert result.token_class is None


def test_an_old_token_is_rejected_once_the_memory_is_full() -> None:
    meter = energy_meter(sts=sts_config(tid_memory=50))
    first = credit("0.1", 1)
    for minute in range(2, 52):
        assert meter.enter_token(credit("0.1", minute), at(100)).accepted
    gateway = meter.token_gateway
    assert gateway is not None
    assert len(gateway.tids) == 50
    # TID of minute 1 is older than the oldest of the 50 remembered (minute 2).
    assert meter.enter_token(first, at(101)).reason is TokenRejection.OLD
    assert meter.enter_token(credit("0.1", 3), at(102)).reason is TokenRejection.USED
    assert meter.enter_token(credit("0.1", 52), at(103)).accepted
    assert (
        gateway.tids[0] == ISSUER.credit(RECORD, Decimal(1), at(3).replace(tzinfo=None)).token.tid
    )  # type: ignore[union-attr]


def test_a_token_past_the_key_expiry_number_is_refused() -> None:
    # A 2024 TID under the 1993 base date is ~16.3 million minutes: high byte 0xF8.
    record = MeterRecord(RECORD.pan, replace(KEYS, key_expiry_number=0xF0))
    meter = energy_meter(sts=sts_config(record))
    token = ISSUER.credit(record, Decimal(1), datetime(2024, 1, 1, 0, 10)).digits
    assert meter.enter_token(token, at(20)).reason is TokenRejection.KEY_EXPIRED


def test_kwh_tokens_need_an_energy_meter_and_currency_tokens_a_money_meter() -> None:
    money = energy_meter(prepaid=prepaid(mode="money", initial_credit=Decimal(5)))
    assert money.enter_token(credit("10", 10), at(20)).reason is TokenRejection.FUNCTION
    cash = ISSUER.credit(
        RECORD,
        Decimal("0.12345"),
        datetime(2024, 1, 1, 0, 11),
        kind=CreditKind.ELECTRICITY_CURRENCY,
    )
    result = money.enter_token(cash.digits, at(21))
    assert result.accepted
    assert money.credit is not None
    assert money.credit.credit == Decimal("5.12345")  # 12345 units of 0.00001, exact
    energy = energy_meter()
    assert energy.enter_token(cash.digits, at(22)).reason is TokenRejection.FUNCTION
    water = ISSUER.credit(RECORD, Decimal(1), datetime(2024, 1, 1, 0, 12), kind=CreditKind.WATER)
    assert energy.enter_token(water.digits, at(23)).reason is TokenRejection.FUNCTION


def test_credit_beyond_the_limit_overflows() -> None:
    meter = energy_meter(sts=sts_config(credit_limit=Decimal(100)))
    assert meter.enter_token(credit("96", 10), at(20)).reason is TokenRejection.OVERFLOW
    assert meter.enter_token(credit("95", 11), at(21)).accepted
    # The refused token's TID was not consumed: it can be bought again once there is room.


def test_a_default_key_takes_key_changes_only() -> None:
    default = MeterRecord(RECORD.pan, replace(KEYS, key_type=1))
    meter = energy_meter(sts=sts_config(default))
    token = ISSUER.credit(default, Decimal(5), datetime(2024, 1, 1, 0, 5)).digits
    assert meter.enter_token(token, at(10)).reason is TokenRejection.DDTK
    for issued in ISSUER.key_change(default, KEYS):
        assert meter.enter_token(issued.digits, at(11)).accepted
    assert meter.enter_token(credit("5", 12), at(13)).accepted


def test_a_meter_without_a_gateway_refuses_tokens() -> None:
    meter = Meter(config(), commissioned_at=START)
    with pytest.raises(CommandRefusedError, match="enter_token"):
        meter.enter_token(credit("1", 1), at(2))
    with pytest.raises(InvalidInputError, match="token"):
        energy_meter().enter_token(12345, at(2))  # type: ignore[arg-type]


def test_the_kek_is_required_and_must_open_the_key() -> None:
    cfg = config(sts=sts_config())
    with pytest.raises(ConfigError, match="key_encryption_key"):
        Meter(cfg, commissioned_at=START)
    with pytest.raises(ConfigError, match="does not open"):
        Meter(cfg, commissioned_at=START, key_encryption_key=bytes(32))
    with pytest.raises(ConfigError, match="does not open"):  # sealed for another meter
        Meter(
            config(serial="TEST0002", sts=sts_config()),
            commissioned_at=START,
            key_encryption_key=KEK,
        )


def test_a_bad_sts_section_is_a_config_error() -> None:
    raw = {
        "serial": "TEST0001",
        "sts": {"decoder_key": "msk1:xxxxxxxxxx", "supply_group_code": "12"},
    }
    with pytest.raises(ConfigError, match="supply_group_code"):
        MeterConfig.parse(raw)
    raw["sts"] = {"decoder_key": "msk1:xxxxxxxxxx", "supply_group_code": "123456", "ea": "11"}
    with pytest.raises(ConfigError, match="DKGA04"):
        MeterConfig.parse(raw)


# ---------------------------------------------------------------- keypad lockout


def test_three_bad_entries_lock_the_keypad_for_doubling_periods() -> None:
    meter = energy_meter()
    bad = credit("1", 1, OTHER)
    good = credit("1", 2)
    t = at(10)
    assert meter.enter_token(bad, t).lockout_s is None
    assert meter.enter_token("12", t + SECOND).lockout_s is None
    third = meter.enter_token(bad, t + 2 * SECOND)
    assert third.reason is TokenRejection.INVALID
    assert third.lockout_s == 10
    # Locked: even a good token is refused, but a class 1 test token is accepted.
    locked = meter.enter_token(good, t + 5 * SECOND)
    assert locked.reason is TokenRejection.KEYPAD_LOCKED
    test = meter.enter_token(meter_test_token(1).digits, t + 6 * SECOND)
    assert test.accepted
    # Every further bad entry after a lockout locks again, twice as long, up to 1280 s.
    now = t + 12 * SECOND
    expected = [20, 40, 80, 160, 320, 640, 1280, 1280]
    for seconds in expected:
        result = meter.enter_token(bad, now)
        assert result.lockout_s == seconds
        assert meter.enter_token(good, now + (seconds - 1) * SECOND).reason is (
            TokenRejection.KEYPAD_LOCKED
        )
        now += seconds * SECOND
    assert meter.enter_token(good, now).accepted
    # The accepted token ends the run: three more bad entries are needed to lock again.
    assert meter.enter_token(bad, now + SECOND).lockout_s is None
    assert meter.enter_token(bad, now + 2 * SECOND).lockout_s is None
    assert meter.enter_token(bad, now + 3 * SECOND).lockout_s == 10
    names = token_log(meter)
    assert names.count("keypad_locked") == 1 + len(expected) + 1


def test_a_test_token_for_another_manufacturer_is_refused() -> None:
    meter = energy_meter(sts=sts_config(manufacturer_code=42))
    assert meter.enter_token(meter_test_token(1, 42).digits, at(1)).accepted
    assert meter.enter_token(meter_test_token(1, 0).digits, at(2)).accepted
    refused = meter.enter_token(meter_test_token(1, 43).digits, at(3))
    assert refused.reason is TokenRejection.MANUFACTURER_CODE


# ---------------------------------------------------------------- management tokens


def test_clear_credit_empties_the_credit_and_the_relay_opens() -> None:
    meter = energy_meter()
    meter.step(load(at(5), 100))
    assert meter.relay.state == ControlState.CONNECTED
    token = ISSUER.clear_credit(RECORD, datetime(2024, 1, 1, 0, 6)).digits
    result = meter.enter_token(token, at(7))
    assert result.accepted
    assert meter.credit is not None
    assert meter.credit.credit == 0
    assert "credit_exhausted" in meter.disconnect_causes
    assert meter.relay.state != ControlState.CONNECTED
    assert "credit_cleared" in token_log(meter)
    water = ISSUER.clear_credit(RECORD, datetime(2024, 1, 1, 0, 8), register=1).digits
    assert meter.enter_token(water, at(9)).reason is TokenRejection.FUNCTION


def test_clear_tamper_lifts_a_tamper_hold() -> None:
    meter = energy_meter(disconnect_on_tamper=True)
    meter.step(load(at(1), 100, terminal_cover_open=True))
    meter.step(load(at(2), 100))
    assert "tamper" in meter.disconnect_causes
    token = ISSUER.clear_tamper(RECORD, datetime(2024, 1, 1, 0, 3)).digits
    assert meter.enter_token(token, at(4)).accepted
    assert "tamper" not in meter.disconnect_causes
    assert meter.relay.state == ControlState.CONNECTED
    assert [e.name for e in meter.event_logs[LogKind.FRAUD]][-1] == "tamper_cleared"


def test_a_maximum_power_token_sets_or_creates_the_limiter() -> None:
    meter = energy_meter()
    assert meter.limiter is None
    token = ISSUER.maximum_power_limit(RECORD, 3000, datetime(2024, 1, 1, 0, 1)).digits
    result = meter.enter_token(token, at(2))
    assert result.accepted
    assert result.amount == 3000
    assert meter.limiter is not None
    assert meter.limiter.threshold_w == 3000
    meter.step(load(at(5), 4000))
    assert "limiter" in meter.disconnect_causes


def test_unsupported_management_functions_are_refused_without_using_the_tid() -> None:
    meter = energy_meter()
    rate = ISSUER.set_tariff_rate(RECORD, 100, datetime(2024, 1, 1, 0, 1)).digits
    assert meter.enter_token(rate, at(2)).reason is TokenRejection.FUNCTION
    gateway = meter.token_gateway
    assert gateway is not None
    assert gateway.tids == []


# ---------------------------------------------------------------- key change


def test_a_key_change_takes_effect_only_when_both_tokens_arrived() -> None:
    meter = energy_meter()
    new_keys = replace(KEYS, tariff_index="02", key_revision_number=2)
    new_record = MeterRecord(RECORD.pan, new_keys)
    first, second = ISSUER.key_change(RECORD, new_keys)
    assert meter.enter_token(first.digits, at(1)).accepted
    gateway = meter.token_gateway
    assert gateway is not None
    assert gateway.pending_sections == (3,)
    assert gateway.parameters == KEYS
    assert meter.enter_token(credit("1", 2), at(3)).accepted  # the old key still works
    result = meter.enter_token(second.digits, at(4))
    assert result.accepted
    assert "decoder key changed" in result.effect
    assert gateway.parameters == new_keys
    assert gateway.pending_sections == ()
    assert meter.enter_token(credit("1", 5), at(6)).reason is TokenRejection.INVALID
    new_token = ISSUER.credit(new_record, Decimal(1), datetime(2024, 1, 1, 0, 7)).digits
    assert meter.enter_token(new_token, at(8)).accepted
    assert token_log(meter).count("decoder_key_changed") == 1
    assert any(alarm.name == "decoder_key_changed" for alarm in meter.drain_alarms())


def test_key_change_tokens_may_arrive_in_either_order() -> None:
    meter = energy_meter()
    new_keys = replace(KEYS, key_revision_number=3, key_expiry_number=200)
    first, second = ISSUER.key_change(RECORD, new_keys)
    assert meter.enter_token(second.digits, at(1)).accepted
    assert meter.enter_token(first.digits, at(2)).accepted
    assert meter.token_gateway is not None
    assert meter.token_gateway.parameters == new_keys


def test_a_rollover_key_change_clears_the_tid_memory_and_moves_the_base_date() -> None:
    meter = energy_meter()
    token_1993 = credit("1", 1)
    assert meter.enter_token(token_1993, at(2)).accepted
    new_keys = replace(KEYS, key_revision_number=2, base_date=BaseDate.Y2014)
    for issued in ISSUER.key_change(RECORD, new_keys, rollover=True):
        meter.enter_token(issued.digits, at(3))
    gateway = meter.token_gateway
    assert gateway is not None
    assert gateway.parameters.base_date is BaseDate.Y2014
    assert gateway.tids == []
    new_record = MeterRecord(RECORD.pan, new_keys)
    token_2014 = ISSUER.credit(new_record, Decimal(2), datetime(2024, 1, 1, 0, 4)).digits
    result = meter.enter_token(token_2014, at(5))
    assert result.accepted
    assert result.issued_at == at(4)


def test_a_key_change_to_an_initialisation_key_is_refused() -> None:
    meter = energy_meter()
    new_keys = replace(KEYS, key_revision_number=2)
    first, _ = ISSUER.key_change(RECORD, new_keys)
    from meterstack.sts import KeyChangeToken1, encode_token

    assert isinstance(first.token, KeyChangeToken1)
    forged = replace(first.token, key_type=0)
    digits = encode_token(forged, ISSUER.decoder_key(RECORD), KEYS.ea)
    assert meter.enter_token(digits, at(1)).reason is TokenRejection.KEY_TYPE


@pytest.mark.parametrize(
    ("section", "changes"),
    [(0, {"key_revision_number": 0}), (0, {"key_revision_number": 10}), (1, {"tariff_index": 100})],
)
def test_key_change_fields_out_of_range_are_refused(section: int, changes: dict[str, int]) -> None:
    # IEC 62055-41: KRN is 1..9 and TI 00..99; a section outside that is a range refusal,
    # and the key stays as it was even when the other section is valid.
    meter = energy_meter()
    new_keys = replace(KEYS, key_revision_number=2)
    tokens = ISSUER.key_change(RECORD, new_keys)
    from meterstack.sts import encode_token

    forged = replace(tokens[section].token, **changes)  # type: ignore[arg-type]
    digits = encode_token(forged, ISSUER.decoder_key(RECORD), KEYS.ea)
    result = meter.enter_token(digits, at(1))
    assert result.reason is TokenRejection.RANGE
    assert meter.enter_token(tokens[1 - section].digits, at(2)).accepted
    gateway = meter.token_gateway
    assert gateway is not None
    assert gateway.parameters == KEYS


def test_a_128_bit_key_changes_with_four_tokens() -> None:
    keys = KeyParameters(
        "123457",
        "01",
        1,
        2,
        ea=EncryptionAlgorithm.EA11,
        dkga=DecoderKeyGenerationAlgorithm.DKGA04,
    )
    record = MeterRecord(RECORD.pan, keys)
    issuer = TokenIssuer(VK160)
    meter = energy_meter(sts=sts_config(record, vending=VK160))
    token = issuer.credit(record, Decimal("0.1"), datetime(2024, 1, 1, 0, 1)).digits
    assert meter.enter_token(token, at(2)).accepted
    new_keys = replace(keys, supply_group_code="654321", key_revision_number=2)
    tokens = issuer.key_change(record, new_keys)
    for index, issued in enumerate(tokens):
        result = meter.enter_token(issued.digits, at(3 + index))
        assert result.accepted
        assert ("decoder key changed" in result.effect) == (index == 3)
    assert meter.token_gateway is not None
    assert meter.token_gateway.parameters == new_keys
    new_token = issuer.credit(
        MeterRecord(RECORD.pan, new_keys), Decimal(1), datetime(2024, 1, 1, 0, 9)
    )
    assert meter.enter_token(new_token.digits, at(10)).accepted


# ---------------------------------------------------------------- persistence


def _sequence(meter: Meter) -> None:
    new_keys = replace(KEYS, key_revision_number=2)
    first, _ = ISSUER.key_change(RECORD, new_keys)
    meter.enter_token(credit("3", 1), at(2))
    meter.enter_token(credit("4", 2), at(3))
    meter.enter_token(credit("4", 2), at(4))  # used
    meter.enter_token(credit("1", 3, OTHER), at(5))  # bad entries...
    meter.enter_token(credit("1", 3, OTHER), at(6))
    meter.enter_token(first.digits, at(7))  # ...ended by a pending key change section
    meter.enter_token(
        ISSUER.maximum_power_limit(RECORD, 2500, datetime(2024, 1, 1, 0, 8)).digits, at(9)
    )
    meter.enter_token(credit("1", 4, OTHER), at(10))


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_the_gateway_state_survives_a_restart(tmp_path: Path, kind: str) -> None:
    store: NonVolatileStore = {
        "memory": MemoryStore,
        "file": lambda: FileStore(tmp_path / "meter.json"),
        "sqlite": lambda: SQLiteStore(tmp_path / "nv.db", "TEST0001"),
    }[kind]()
    cfg = config(
        prepaid=prepaid(mode="energy", initial_credit=Decimal(5), low_credit_threshold=Decimal(1)),
        sts=sts_config(),
    )
    meter = Meter(cfg, commissioned_at=START, store=store, key_encryption_key=KEK)
    twin = Meter(cfg, commissioned_at=START, key_encryption_key=KEK)
    _sequence(meter)
    _sequence(twin)
    restored = Meter.restore(cfg, store, key_encryption_key=KEK)
    assert restored is not None
    assert _normal(restored.image()) == _normal(twin.image())
    gateway = restored.token_gateway
    assert gateway is not None
    assert gateway.pending_sections == (3,)
    assert gateway.bad_entries == 1
    assert restored.limiter is not None
    assert restored.limiter.threshold_w == 2500
    # The restored meter still knows its TIDs and completes the pending key change.
    assert restored.enter_token(credit("3", 1), at(11)).reason is TokenRejection.USED
    _, second = ISSUER.key_change(RECORD, replace(KEYS, key_revision_number=2))
    assert "decoder key changed" in restored.enter_token(second.digits, at(12)).effect
    again = Meter.restore(cfg, store, key_encryption_key=KEK)
    assert again is not None
    assert again.token_gateway is not None
    assert again.token_gateway.parameters.key_revision_number == 2


def test_no_key_material_is_in_the_meter_image() -> None:
    store = MemoryStore()
    cfg = config(prepaid=prepaid(mode="energy"), sts=sts_config())
    meter = Meter(cfg, commissioned_at=START, store=store, key_encryption_key=KEK)
    new_keys = replace(KEYS, key_revision_number=2)
    first, _ = ISSUER.key_change(RECORD, new_keys)
    meter.enter_token(first.digits, at(1))  # a pending half of the new key
    blob = encode_image(meter.image())
    old_key = ISSUER.decoder_key(RECORD)
    new_key = ISSUER.decoder_key(MeterRecord(RECORD.pan, new_keys))
    for secret in (old_key, new_key, new_key[:4], KEK):
        assert secret not in blob
        assert secret.hex().encode() not in blob.lower()
    assert "key=<hidden>" in repr(meter.token_gateway)


def test_a_restore_needs_the_right_kek() -> None:
    store = MemoryStore()
    cfg = config(prepaid=prepaid(mode="energy"), sts=sts_config())
    meter = Meter(cfg, commissioned_at=START, store=store, key_encryption_key=KEK)
    meter.enter_token(credit("1", 1), at(2))
    with pytest.raises(ConfigError):
        Meter.restore(cfg, store)
    with pytest.raises(ConfigError):
        Meter.restore(cfg, store, key_encryption_key=bytes(32))


@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(1, 50), st.booleans()), min_size=1, max_size=25
    )
)
def test_a_token_is_accepted_once(entries: list[tuple[int, int, bool]]) -> None:
    meter = energy_meter()
    assert meter.credit is not None
    seen_tids: set[int] = set()
    expected = meter.credit.credit
    now = at(1000)
    for minute, kwh, foreign in entries:
        now += timedelta(seconds=LOCKOUT_MAX_S + 1)  # past any lockout
        result = meter.enter_token(credit(str(kwh), minute, OTHER if foreign else RECORD), now)
        if foreign:
            assert result.reason is TokenRejection.INVALID
        elif minute in seen_tids:
            assert result.reason is TokenRejection.USED
        else:
            assert result.accepted
            seen_tids.add(minute)
            expected += Decimal(kwh)
    assert meter.credit.credit == expected
    assert meter.credit.purchase_count == len(seen_tids)
