"""Token kinds: the data fields of each class and subclass, to and from 44 data bits.

Layouts, most significant field first, after the 4-bit subclass [1]:

========  ==========  =====================================================================
class     subclass    data (44 bits)
========  ==========  =====================================================================
0 credit  0-3         RND (4) | TID (24) | amount (16): electricity 0.1 kWh, water 0.1 m3,
                      gas 0.1 m3, time 0.1 min
0 credit  4-7         the same, amount in 0.00001 base currency units (electricity, water,
                      gas, time currency)
1 test    0           control (36) | manufacturer code (8): test or display, 2-digit code
1 test    1           control (28) | manufacturer code (16): 4-digit manufacturer code
2 mgmt    0, 1, 2,    RND (4) | TID (24) | value (16): maximum power limit (amount coding,
          5, 6, 7     W), clear credit (register), tariff rate, clear tamper (pad, 0),
                      maximum phase power unbalance limit (amount coding, W), water meter
                      factor
2 mgmt    3           KENHO (4) | KRN (4) | RO (1) | reserved (1) | KT (2) | NKHO (32)
2 mgmt    4           KENLO (4) | TI (8) | NKLO (32)
2 mgmt    8           SGC low 12 bits (12) | new key bits 95-64 of a 128-bit key (32)
2 mgmt    9           SGC high 12 bits (12) | new key bits 63-32 of a 128-bit key (32)
========  ==========  =====================================================================

For a 64-bit key, NKHO and NKLO are its high and low 32 bits (key change tokens 1 and 2);
a 128-bit key adds tokens 3 and 4, NKHO then holding bits 127-96 and NKLO bits 31-0.

References
----------
.. [1] IEC 62055-41:2018, token classes and subclasses, and the token data
       elements"; edition 2 (2018) adds subclasses 8 and 9 of class 2 for 128-bit keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Any, ClassVar

from meterstack.sts.amount import decode_amount
from meterstack.sts.datablock import TokenClass
from meterstack.sts.errors import StsInputError

__all__ = [
    "CLEAR_ALL_REGISTERS",
    "CreditKind",
    "CreditToken",
    "KeyChangeToken",
    "KeyChangeToken1",
    "KeyChangeToken2",
    "KeyChangeToken3",
    "KeyChangeToken4",
    "ManagementKind",
    "ManagementToken",
    "MeterTestToken",
    "Token",
    "UnsupportedTokenError",
    "decode_fields",
]


class UnsupportedTokenError(StsInputError):
    """A class/subclass that IEC 62055-41 reserves or that meterstack does not define."""


class CreditKind(IntEnum):
    """Subclasses of class 0 (credit transfer)."""

    ELECTRICITY = 0
    WATER = 1
    GAS = 2
    TIME = 3
    ELECTRICITY_CURRENCY = 4
    WATER_CURRENCY = 5
    GAS_CURRENCY = 6
    TIME_CURRENCY = 7

    @property
    def is_currency(self) -> bool:
        return self >= CreditKind.ELECTRICITY_CURRENCY

    @property
    def resolution(self) -> Decimal:
        """Value of one amount unit: 0.1 kWh/m3/min, or 0.00001 base currency units."""
        return Decimal("0.00001") if self.is_currency else Decimal("0.1")

    @property
    def unit(self) -> str:
        return ("kWh", "m3", "m3", "min")[self % 4] if not self.is_currency else "currency"


class ManagementKind(IntEnum):
    """Subclasses of class 2 (meter-specific management)."""

    SET_MAXIMUM_POWER_LIMIT = 0
    CLEAR_CREDIT = 1
    SET_TARIFF_RATE = 2
    SET_DECODER_KEY_1 = 3
    SET_DECODER_KEY_2 = 4
    CLEAR_TAMPER = 5
    SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT = 6
    SET_WATER_METER_FACTOR = 7
    SET_DECODER_KEY_3 = 8
    SET_DECODER_KEY_4 = 9

    @property
    def is_key_change(self) -> bool:
        return self in _KEY_CHANGE_KINDS


_KEY_CHANGE_KINDS = frozenset(
    {
        ManagementKind.SET_DECODER_KEY_1,
        ManagementKind.SET_DECODER_KEY_2,
        ManagementKind.SET_DECODER_KEY_3,
        ManagementKind.SET_DECODER_KEY_4,
    }
)

#: Clear-credit register values: 0 electricity, 1 water, 2 gas, 3 time; 0xFFFF all.
CLEAR_ALL_REGISTERS = 0xFFFF


def _check(name: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise StsInputError(name, value, f"must fit in {bits} bits (0 to {(1 << bits) - 1})")
    return value


@dataclass(frozen=True, slots=True)
class CreditToken:
    """Class 0: transfer of credit (units or currency)."""

    kind: CreditKind
    rnd: int
    tid: int
    amount_code: int
    token_class: ClassVar[TokenClass] = TokenClass.CREDIT

    def __post_init__(self) -> None:
        CreditKind(self.kind)
        _check("rnd", self.rnd, 4)
        _check("tid", self.tid, 24)
        _check("amount_code", self.amount_code, 16)

    @property
    def subclass(self) -> int:
        return int(self.kind)

    @property
    def data(self) -> int:
        return self.rnd << 40 | self.tid << 16 | self.amount_code

    @property
    def quantity(self) -> int:
        """The amount in field units (0.1 kWh, 0.1 m3, 0.1 min or 0.00001 currency)."""
        return decode_amount(self.amount_code)

    @property
    def amount(self) -> Decimal:
        """The amount in natural units: kWh, m3, minutes or base currency units."""
        return self.quantity * self.kind.resolution

    def fields(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name.lower(),
            "rnd": self.rnd,
            "tid": self.tid,
            "amount": str(self.amount),
            "unit": self.kind.unit,
        }


@dataclass(frozen=True, slots=True)
class MeterTestToken:
    """Class 1: initiate a meter test or display (not encrypted, not meter specific).

    Subclass 0 carries a 36-bit control field and an 8-bit (2-digit) manufacturer code;
    subclass 1 a 28-bit control field and a 16-bit (4-digit) manufacturer code. A
    manufacturer code of 0 addresses meters of every manufacturer.
    """

    subclass: int
    control: int
    manufacturer_code: int
    token_class: ClassVar[TokenClass] = TokenClass.NON_METER_SPECIFIC

    def __post_init__(self) -> None:
        if self.subclass not in (0, 1):
            raise StsInputError(
                "subclass", self.subclass, "class 1 test tokens are subclass 0 or 1"
            )
        control_bits, code_bits = self._widths()
        _check("control", self.control, control_bits)
        _check("manufacturer_code", self.manufacturer_code, code_bits)

    def _widths(self) -> tuple[int, int]:
        return (36, 8) if self.subclass == 0 else (28, 16)

    @property
    def data(self) -> int:
        return self.control << self._widths()[1] | self.manufacturer_code

    def fields(self) -> dict[str, Any]:
        return {"control": self.control, "manufacturer_code": self.manufacturer_code}


@dataclass(frozen=True, slots=True)
class ManagementToken:
    """Class 2 with a TID: maximum power, clear credit, tariff rate, clear tamper, phase
    unbalance limit, water meter factor. ``value`` is the 16-bit field of the subclass."""

    kind: ManagementKind
    rnd: int
    tid: int
    value: int
    token_class: ClassVar[TokenClass] = TokenClass.METER_SPECIFIC

    def __post_init__(self) -> None:
        if ManagementKind(self.kind).is_key_change:
            raise StsInputError("subclass", int(self.kind), "key change tokens have no TID")
        _check("rnd", self.rnd, 4)
        _check("tid", self.tid, 24)
        _check("value", self.value, 16)

    @property
    def subclass(self) -> int:
        return int(self.kind)

    @property
    def data(self) -> int:
        return self.rnd << 40 | self.tid << 16 | self.value

    @property
    def power_limit_w(self) -> int:
        """The limit of a maximum power or phase unbalance token (amount coding). [W]"""
        return decode_amount(self.value)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.name.lower(), "rnd": self.rnd, "tid": self.tid}
        if self.kind in (
            ManagementKind.SET_MAXIMUM_POWER_LIMIT,
            ManagementKind.SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT,
        ):
            out["amount"] = self.power_limit_w
            out["unit"] = "W"
        elif self.kind is ManagementKind.CLEAR_CREDIT:
            out["register"] = self.value
        else:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class KeyChangeToken1:
    """Class 2 subclass 3: set 1st section decoder key (KENHO, KRN, RO, KT, NKHO)."""

    ken_high: int
    key_revision_number: int
    rollover: bool
    key_type: int
    new_key_high: int
    reserved: int = 0
    token_class: ClassVar[TokenClass] = TokenClass.METER_SPECIFIC
    subclass: ClassVar[int] = ManagementKind.SET_DECODER_KEY_1

    def __post_init__(self) -> None:
        _check("ken_high", self.ken_high, 4)
        _check("krn", self.key_revision_number, 4)
        _check("key_type", self.key_type, 2)
        _check("new_key_high", self.new_key_high, 32)
        _check("reserved", self.reserved, 1)

    @property
    def data(self) -> int:
        return (
            self.ken_high << 40
            | self.key_revision_number << 36
            | int(self.rollover) << 35
            | self.reserved << 34
            | self.key_type << 32
            | self.new_key_high
        )

    def fields(self) -> dict[str, Any]:
        return {
            "ken_high": self.ken_high,
            "krn": self.key_revision_number,
            "rollover": self.rollover,
            "key_type": self.key_type,
        }


@dataclass(frozen=True, slots=True)
class KeyChangeToken2:
    """Class 2 subclass 4: set 2nd section decoder key (KENLO, TI, NKLO)."""

    ken_low: int
    tariff_index: int
    new_key_low: int
    token_class: ClassVar[TokenClass] = TokenClass.METER_SPECIFIC
    subclass: ClassVar[int] = ManagementKind.SET_DECODER_KEY_2

    def __post_init__(self) -> None:
        _check("ken_low", self.ken_low, 4)
        _check("ti", self.tariff_index, 8)
        _check("new_key_low", self.new_key_low, 32)

    @property
    def data(self) -> int:
        return self.ken_low << 40 | self.tariff_index << 32 | self.new_key_low

    def fields(self) -> dict[str, Any]:
        return {"ken_low": self.ken_low, "ti": f"{self.tariff_index:02d}"}


@dataclass(frozen=True, slots=True)
class KeyChangeToken3:
    """Class 2 subclass 8: set 3rd section decoder key (SGC low 12 bits, key bits 95-64)."""

    sgc_low: int
    new_key_part: int
    token_class: ClassVar[TokenClass] = TokenClass.METER_SPECIFIC
    subclass: ClassVar[int] = ManagementKind.SET_DECODER_KEY_3

    def __post_init__(self) -> None:
        _check("sgc_low", self.sgc_low, 12)
        _check("new_key_part", self.new_key_part, 32)

    @property
    def data(self) -> int:
        return self.sgc_low << 32 | self.new_key_part

    def fields(self) -> dict[str, Any]:
        return {"sgc_low": self.sgc_low}


@dataclass(frozen=True, slots=True)
class KeyChangeToken4:
    """Class 2 subclass 9: set 4th section decoder key (SGC high 12 bits, key bits 63-32)."""

    sgc_high: int
    new_key_part: int
    token_class: ClassVar[TokenClass] = TokenClass.METER_SPECIFIC
    subclass: ClassVar[int] = ManagementKind.SET_DECODER_KEY_4

    def __post_init__(self) -> None:
        _check("sgc_high", self.sgc_high, 12)
        _check("new_key_part", self.new_key_part, 32)

    @property
    def data(self) -> int:
        return self.sgc_high << 32 | self.new_key_part

    def fields(self) -> dict[str, Any]:
        return {"sgc_high": self.sgc_high}


Token = (
    CreditToken
    | MeterTestToken
    | ManagementToken
    | KeyChangeToken1
    | KeyChangeToken2
    | KeyChangeToken3
    | KeyChangeToken4
)
KeyChangeToken = KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4


def decode_fields(token_class: int, subclass: int, data: int) -> Token:
    """The token kind of ``(token_class, subclass)`` with its fields taken from ``data``.

    Raises
    ------
    UnsupportedTokenError
        Class 3, or a subclass the standard reserves (or meterstack does not define).
    """
    _check("data", data, 44)
    rnd, tid, value = data >> 40, data >> 16 & 0xFFFFFF, data & 0xFFFF
    if token_class == TokenClass.CREDIT and subclass <= CreditKind.TIME_CURRENCY:
        return CreditToken(CreditKind(subclass), rnd, tid, value)
    if token_class == TokenClass.NON_METER_SPECIFIC and subclass in (0, 1):
        code_bits = 8 if subclass == 0 else 16
        return MeterTestToken(subclass, data >> code_bits, data & ((1 << code_bits) - 1))
    if token_class == TokenClass.METER_SPECIFIC and subclass <= ManagementKind.SET_DECODER_KEY_4:
        kind = ManagementKind(subclass)
        if kind is ManagementKind.SET_DECODER_KEY_1:
            return KeyChangeToken1(
                ken_high=data >> 40,
                key_revision_number=data >> 36 & 0xF,
                rollover=bool(data >> 35 & 1),
                key_type=data >> 32 & 0b11,
                new_key_high=data & 0xFFFFFFFF,
                reserved=data >> 34 & 1,
            )
        if kind is ManagementKind.SET_DECODER_KEY_2:
            return KeyChangeToken2(data >> 40, data >> 32 & 0xFF, data & 0xFFFFFFFF)
        if kind is ManagementKind.SET_DECODER_KEY_3:
            return KeyChangeToken3(data >> 32, data & 0xFFFFFFFF)
        if kind is ManagementKind.SET_DECODER_KEY_4:
            return KeyChangeToken4(data >> 32, data & 0xFFFFFFFF)
        return ManagementToken(kind, rnd, tid, value)
    raise UnsupportedTokenError(
        "subclass", f"class {token_class} subclass {subclass}", "reserved by IEC 62055-41"
    )
