"""The vending side: decoder keys from the vending key, and tokens for a meter.

:class:`TokenIssuer` holds the utility's vending key and local time zone and issues tokens
for a :class:`MeterRecord` (the meter's PAN and key parameters): credit, management (maximum
power, clear credit, tariff rate, clear tamper, phase unbalance, water meter factor) and key
change tokens; :func:`meter_test_token` builds class 1 test and display tokens, which need
no key. Times of issue are aware datetimes (converted to the utility's local time for the
TID) or naive local wall-clock times.

The vending key never leaves the issuer in clear: its ``repr`` is redacted and errors that
concern it never quote it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from meterstack.core.time import zone
from meterstack.sts.amount import MAX_AMOUNT, encode_amount
from meterstack.sts.codec import DecodedToken, decode_token, encode_token
from meterstack.sts.datablock import group_digits
from meterstack.sts.dkga import dkga02, dkga04
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm, EncryptionAlgorithm
from meterstack.sts.errors import StsInputError
from meterstack.sts.keys import KeyParameters
from meterstack.sts.pan import MeterPan
from meterstack.sts.tid import local_time_of_tid, tid_from_local
from meterstack.sts.tokens import (
    CLEAR_ALL_REGISTERS,
    CreditKind,
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementKind,
    ManagementToken,
    MeterTestToken,
    Token,
)

__all__ = [
    "IssuedToken",
    "MeterRecord",
    "TokenIssuer",
    "VendingKey",
    "decoder_key",
    "meter_test_token",
]


class VendingKey:
    """The utility's secret vending key (64 bits for DKGA02, 160 bits for DKGA04)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or not 8 <= len(key) <= 64:
            raise StsInputError("vending_key", "<hidden>", "a vending key is 8 to 64 bytes")
        self._key = bytes(key)

    @classmethod
    def from_hex(cls, text: str, field: str = "vending_key") -> VendingKey:
        """Parse hex digits; the error never repeats them."""
        try:
            raw = bytes.fromhex(text.strip()) if isinstance(text, str) else None
        except ValueError:
            raw = None
        if raw is None or not 8 <= len(raw) <= 64:
            raise StsInputError(field, "<hidden>", "give the vending key as 16 or 40 hex digits")
        return cls(raw)

    @property
    def bits(self) -> int:
        return 8 * len(self._key)

    def material(self) -> bytes:
        """The key bytes, for the decoder key generation algorithms only."""
        return self._key

    def __repr__(self) -> str:
        return f"VendingKey(<{self.bits}-bit, hidden>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class MeterRecord:
    """What the vending side knows of a meter: its PAN and its decoder key's parameters."""

    pan: MeterPan
    keys: KeyParameters


def decoder_key(vending_key: VendingKey, pan: MeterPan, keys: KeyParameters) -> bytes:
    """The meter's decoder key (natural byte order) by the key's DKGA."""
    if keys.dkga is DecoderKeyGenerationAlgorithm.DKGA02:
        if vending_key.bits != 64:
            raise StsInputError("vending_key", "<hidden>", "DKGA02 needs a 64-bit vending key")
        return dkga02(
            vending_key.material(),
            pan,
            key_type=keys.key_type,
            supply_group_code=keys.supply_group_code,
            tariff_index=keys.tariff_index,
            key_revision_number=keys.key_revision_number,
        )
    return dkga04(
        vending_key.material(),
        pan,
        key_type=keys.key_type,
        supply_group_code=keys.supply_group_code,
        tariff_index=keys.tariff_index,
        key_revision_number=keys.key_revision_number,
        base_date=keys.base_date,
        ea=keys.ea,
    )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as issued: its 20 digits, its fields and (when it has a TID) its local time."""

    digits: str
    token: Token
    local_time: datetime | None = None

    @property
    def display(self) -> str:
        """The digits in groups of four, as printed on a receipt."""
        return group_digits(self.digits)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.digits,
            "class": int(self.token.token_class),
            "subclass": int(self.token.subclass),
        }
        out.update(self.token.fields())
        if self.local_time is not None:
            out["time"] = self.local_time.isoformat(timespec="minutes")
        return out


def _rnd(rnd: int | None) -> int:
    if rnd is None:
        return secrets.randbelow(16)
    if isinstance(rnd, bool) or not isinstance(rnd, int) or not 0 <= rnd <= 15:
        raise StsInputError("rnd", rnd, "the random number is 0 to 15")
    return rnd


def _quantity(amount: Decimal, resolution: Decimal) -> int:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise StsInputError("amount", amount, "a credit amount is a positive Decimal")
    units = amount / resolution
    quantity = int(units.to_integral_value(rounding="ROUND_CEILING"))
    if quantity > MAX_AMOUNT:
        raise StsInputError(
            "amount", amount, f"above the largest token amount {MAX_AMOUNT * resolution}"
        )
    return quantity


def meter_test_token(
    control: int, manufacturer_code: int = 0, *, subclass: int | None = None
) -> IssuedToken:
    """A class 1 test/display token (not encrypted, valid on any meter of that maker).

    ``subclass`` defaults to 0 for a manufacturer code below 100 (2 digits), else 1.
    """
    if subclass is None:
        subclass = 0 if isinstance(manufacturer_code, int) and manufacturer_code < 100 else 1
    token = MeterTestToken(subclass, control, manufacturer_code)
    return IssuedToken(encode_token(token, None, EncryptionAlgorithm.EA07), token)


class TokenIssuer:
    """Issues tokens under one vending key for meters in one local time zone.

    Parameters
    ----------
    vending_key : VendingKey
        The utility's vending key.
    timezone : str
        IANA zone of the utility's local time, in which TIDs count minutes.
    """

    def __init__(self, vending_key: VendingKey, timezone: str = "UTC") -> None:
        if not isinstance(vending_key, VendingKey):
            raise StsInputError("vending_key", "<hidden>", "expected a VendingKey")
        self._vending_key = vending_key
        self._tz = zone(timezone)

    def __repr__(self) -> str:
        return f"TokenIssuer({self._vending_key!r}, timezone={self._tz.key!r})"

    def decoder_key(self, meter: MeterRecord) -> bytes:
        return decoder_key(self._vending_key, meter.pan, meter.keys)

    def local_time(self, at: datetime) -> datetime:
        """``at`` as the utility's naive local time (naive input is taken as local)."""
        if not isinstance(at, datetime):
            raise StsInputError("time", at, "the time of issue is a datetime")
        if at.tzinfo is None:
            return at.replace(second=0, microsecond=0)
        return at.astimezone(self._tz).replace(tzinfo=None, second=0, microsecond=0)

    def _issue(self, meter: MeterRecord, token: Token, local: datetime | None) -> IssuedToken:
        digits = encode_token(token, self.decoder_key(meter), meter.keys.ea)
        return IssuedToken(digits, token, local)

    def _tid(self, meter: MeterRecord, at: datetime) -> tuple[int, datetime]:
        local = self.local_time(at)
        return tid_from_local(local, meter.keys.base_date), local

    def credit(
        self,
        meter: MeterRecord,
        amount: Decimal,
        at: datetime,
        *,
        kind: CreditKind = CreditKind.ELECTRICITY,
        rnd: int | None = None,
    ) -> IssuedToken:
        """A class 0 credit token for ``amount`` in the kind's natural unit.

        ``amount`` is kWh (electricity), m3 (water, gas), minutes (time) or base currency
        units (currency kinds); it is rounded up to the amount field's resolution and coding.
        """
        kind = CreditKind(kind)
        code = encode_amount(_quantity(amount, kind.resolution))
        tid, local = self._tid(meter, at)
        return self._issue(meter, CreditToken(kind, _rnd(rnd), tid, code), local)

    def management(
        self,
        meter: MeterRecord,
        kind: ManagementKind,
        value: int,
        at: datetime,
        *,
        rnd: int | None = None,
    ) -> IssuedToken:
        """A class 2 token with a TID and the raw 16-bit ``value`` of its subclass."""
        tid, local = self._tid(meter, at)
        return self._issue(
            meter, ManagementToken(ManagementKind(kind), _rnd(rnd), tid, value), local
        )

    def maximum_power_limit(
        self, meter: MeterRecord, watts: int, at: datetime, *, rnd: int | None = None
    ) -> IssuedToken:
        """Set the meter's maximum power limit to ``watts`` [W] (rounded up to the coding)."""
        return self.management(
            meter, ManagementKind.SET_MAXIMUM_POWER_LIMIT, _power_code(watts), at, rnd=rnd
        )

    def maximum_phase_power_unbalance_limit(
        self, meter: MeterRecord, watts: int, at: datetime, *, rnd: int | None = None
    ) -> IssuedToken:
        """Set the maximum phase power unbalance limit to ``watts`` [W]."""
        kind = ManagementKind.SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT
        return self.management(meter, kind, _power_code(watts), at, rnd=rnd)

    def clear_credit(
        self,
        meter: MeterRecord,
        at: datetime,
        *,
        register: int = CLEAR_ALL_REGISTERS,
        rnd: int | None = None,
    ) -> IssuedToken:
        """Clear a credit register (0 electricity ... 3 time; 0xFFFF all)."""
        return self.management(meter, ManagementKind.CLEAR_CREDIT, register, at, rnd=rnd)

    def clear_tamper(
        self, meter: MeterRecord, at: datetime, *, rnd: int | None = None
    ) -> IssuedToken:
        """Clear the meter's tamper condition."""
        return self.management(meter, ManagementKind.CLEAR_TAMPER, 0, at, rnd=rnd)

    def set_tariff_rate(
        self, meter: MeterRecord, rate: int, at: datetime, *, rnd: int | None = None
    ) -> IssuedToken:
        """Set the tariff rate field (16 bits, meaning defined by the utility)."""
        return self.management(meter, ManagementKind.SET_TARIFF_RATE, rate, at, rnd=rnd)

    def key_change(
        self,
        meter: MeterRecord,
        new_keys: KeyParameters,
        *,
        rollover: bool = False,
        new_vending_key: VendingKey | None = None,
    ) -> tuple[IssuedToken, ...]:
        """The key change tokens that move ``meter`` to the key of ``new_keys``.

        Two tokens for a 64-bit new key, four for a 128-bit one, all encrypted under the
        meter's current decoder key. ``rollover`` sets the RO bit: the meter clears its
        TID memory and moves to the next base date, which ``new_keys.base_date`` must be.
        """
        current = meter.keys
        expected_base = current.base_date.next() if rollover else current.base_date
        if new_keys.base_date != expected_base:
            reason = (
                f"a rollover moves base date {int(current.base_date)} to {int(expected_base)}"
                if rollover
                else f"without rollover the base date stays {int(current.base_date)}"
            )
            raise StsInputError("new_base_date", int(new_keys.base_date), reason)
        if new_keys.key_type == 0:
            raise StsInputError(
                "new_key_type", 0, "a meter is never given an initialisation key (key type 0)"
            )
        vending = new_vending_key if new_vending_key is not None else self._vending_key
        new_key = int.from_bytes(decoder_key(vending, meter.pan, new_keys), "big")
        ken = new_keys.key_expiry_number
        first = KeyChangeToken1(
            ken_high=ken >> 4,
            key_revision_number=new_keys.key_revision_number,
            rollover=rollover,
            key_type=new_keys.key_type,
            new_key_high=new_key >> (new_keys.ea.key_bits - 32),
        )
        second = KeyChangeToken2(ken & 0xF, int(new_keys.tariff_index), new_key & 0xFFFFFFFF)
        tokens: list[Token] = [first, second]
        if new_keys.ea.key_bits == 128:
            sgc = int(new_keys.supply_group_code)
            tokens.append(KeyChangeToken3(sgc & 0xFFF, new_key >> 64 & 0xFFFFFFFF))
            tokens.append(KeyChangeToken4(sgc >> 12, new_key >> 32 & 0xFFFFFFFF))
        return tuple(self._issue(meter, token, None) for token in tokens)

    def decode(self, meter: MeterRecord, digits: str) -> DecodedToken:
        """Decode ``digits`` with ``meter``'s decoder key."""
        return decode_token(digits, self.decoder_key(meter), meter.keys.ea)

    def local_time_of(self, meter: MeterRecord, tid: int) -> datetime:
        """The local time of issue of a TID under ``meter``'s base date."""
        return local_time_of_tid(tid, meter.keys.base_date)


def _power_code(watts: int) -> int:
    if isinstance(watts, bool) or not isinstance(watts, int) or watts <= 0:
        raise StsInputError("amount", watts, "a power limit is a positive whole number of W")
    return encode_amount(watts)
