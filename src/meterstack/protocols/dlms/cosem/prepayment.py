"""The payment metering classes: 111 account, 112 credit, 113 charge, 115 token gateway.

Amounts are integers scaled by the account's ``currency_scale`` (10^-2 of a money unit in
money mode, 10^-3 kWh, i.e. Wh, in energy mode), as the Blue Book's ``currency``
attribute of class 111 states; they are rounded to the nearest step.

Account 0.0.19.0.0.255 (class 111):

== =============================== ========================================================
2  account_mode_and_status         {2 prepayment mode, 2 active}
3  current_credit_in_use           1 token credit, 2 emergency credit (credit_reference_list)
4  current_credit_status           bits 0 in credit, 1 low credit, 2 next (emergency) credit
                                   enabled, 3 next credit selectable, 5 selectable credit in
                                   use, 6 out of credit
5  available_credit                credit down to the floor (zero, or minus the emergency
                                   credit in use)
6  amount_to_clear                 debt plus emergency credit used
7  clearance_threshold             0 (the meter closes no account)
8  aggregated_debt                 debt
9  credit_reference_list           token and emergency credit
10 charge_reference_list           consumption, standing (money mode), debt recovery
11 credit_charge_configuration     both credits pay every charge; consumption is collected
                                   in friendly periods (as debt), the standing charge always
12 token_gateway_configuration     token credit gets 100 % less the debt recovery share
13 account_activation_time         the meter's commissioning
14 account_closure_time            not specified
15 currency                        {name, scale, unit 2 monetary / 1 consumption}
16 low_credit_threshold            ``low_credit_threshold``
17 next_credit_available_threshold ``low_credit_threshold`` (emergency credit is offered below)
18 max_provision, 19 period        0: no limit on top-ups
== =============================== ========================================================

Credit 0.0.19.10.0.255 (token) and 0.0.19.10.1.255 (emergency), class 112: 2
``current_credit_amount``, 3 ``type`` (0 token, 2 emergency), 4 ``priority``, 5
``warning_threshold``, 6 ``limit`` (0: credit never goes below its floor, the rest is
debt), 7 ``credit_configuration`` (token: bit 4 receives tokens; emergency: bits 1 needs
confirmation and 2 is paid back), 8 ``status`` (0 enabled, 1 selectable, 2 selected, 3 in
use, 4 exhausted), 9 ``preset_credit_amount`` (the emergency credit), 10
``credit_available_threshold`` (emergency: offered below the low-credit threshold), 11
``period`` (not specified); method 3 ``invoke_credit`` takes emergency credit.

Charge, class 113: 0.0.19.20.0.255 consumption (type 0, continuous, the tariff's price per
kWh per rate on A+, ``charge = dA+ [Wh] x 10^commodity_scale x charge_per_unit x
10^price_scale`` in money units, commodity_scale -3), 0.0.19.20.1.255 the daily standing
charge (money mode; type 1, period 86 400 s, taken at each local midnight) and
0.0.19.20.2.255 debt recovery (type 2, percentage based: ``proportion`` in 0.01 % of each
payment, ``total_amount_remaining`` the debt). The meter model keeps one total of what it
has charged: ``total_amount_paid`` of the consumption charge reports it (energy and
standing charge together); the other two do not hold one (object-unavailable).

Token gateway 0.0.19.40.0.255: method 1 ``enter`` (the 20 STS digits as an octet-string of
ASCII) hands the token to the meter's gateway; 2 ``token``, 3 ``token_time``, 4
``token_description``, 5 ``token_delivery_method`` (0 remote), 6 ``token_status``
{status_code, data_value} with status codes 3 token execution OK, 4 format failure, 5
authentication failure, 6 validation failure, 7 execution failure.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.6 "Interface classes for payment
   metering": 4.6.2 Account (111), 4.6.3 Credit (112), 4.6.4 Charge (113), 4.6.6 Token
   gateway (115).
.. [2] IEC 62055-41, the STS token the gateway carries.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.core.time import LocalDays, from_epoch, zone
from meterstack.meter import Meter
from meterstack.meter import obis as meter_obis
from meterstack.meter.credit import PrepaidCredit
from meterstack.meter.token_gateway import TokenRejection, TokenResult
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult
from meterstack.protocols.dlms.axdr import Data, DataType, date_time_data
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    meter_refusal,
    type_unmatched,
    unavailable,
)

ACCOUNT = ObisCode(0, 0, 19, 0, 0)
TOKEN_CREDIT = ObisCode(0, 0, 19, 10, 0)
EMERGENCY_CREDIT = ObisCode(0, 0, 19, 10, 1)
CONSUMPTION_CHARGE = ObisCode(0, 0, 19, 20, 0)
STANDING_CHARGE = ObisCode(0, 0, 19, 20, 1)
DEBT_RECOVERY_CHARGE = ObisCode(0, 0, 19, 20, 2)
CLOCK = ObisCode(0, 0, 1, 0, 0)
#: COSEM date-time "not specified" (every field 0xFF, deviation 0x8000) [1]_ 4.1.6.1.
NOT_SPECIFIED = Data.octet_string(bytes.fromhex("FFFFFFFFFFFFFFFFFF8000FF"))
_LONG_MAX = 32767


def _credit(ctx: ServiceContext) -> PrepaidCredit:
    credit = ctx.binding.meter.credit
    if credit is None:
        raise unavailable("this meter is not a prepaid meter")
    return credit


def currency_scale(credit: PrepaidCredit) -> int:
    return -2 if credit.unit == "money" else -3


def amount(value: Decimal, credit: PrepaidCredit) -> Data:
    """A credit amount as double-long scaled by the currency scale (rounded to nearest)."""
    raw = int((value * Decimal(10) ** -currency_scale(credit)).to_integral_value())
    raw = max(min(raw, 2**31 - 1), -(2**31))
    return Data.double_long(raw)


def charges_of(meter: Meter) -> list[ObisCode]:
    """The charge objects of a prepaid meter, in ``charge_reference_list`` order."""
    prepaid = meter.config.prepaid
    charges = [CONSUMPTION_CHARGE]
    if prepaid is not None and prepaid.mode == "money":
        charges.append(STANDING_CHARGE)
    charges.append(DEBT_RECOVERY_CHARGE)
    return charges


def price_scale(prices: list[Decimal]) -> int:
    """The finest power of ten, from 10^-4, at which every price is an exact ``long`` (at
    most 32 767); failing that, the finest at which every price fits (then rounded):
    ``charge_per_unit = price x 10^-scale``."""
    for scale in range(-4, 4):
        raws = [price * Decimal(10) ** -scale for price in prices]
        if all(raw <= _LONG_MAX for raw in raws) and all(raw == raw.to_integral() for raw in raws):
            return scale
    for scale in range(-4, 8):
        if all(price * Decimal(10) ** -scale <= _LONG_MAX for price in prices):
            return scale
    return 8


def _unit_charge(
    scaling: tuple[int, int], commodity: tuple[int, ObisCode, int], table: list[tuple[bytes, int]]
) -> Data:
    return Data.structure(
        Data.structure(Data.integer(scaling[0]), Data.integer(scaling[1])),
        Data.structure(
            Data.long_unsigned(commodity[0]),
            Data.octet_string(commodity[1].to_bytes()),
            Data.integer(commodity[2]),
        ),
        Data.array(
            [Data.structure(Data.octet_string(index), Data.long(charge)) for index, charge in table]
        ),
    )


class AccountObject(CosemObject):
    class_id = 111
    attribute_count = 19
    methods = frozenset({1, 2, 3})

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        credit = _credit(ctx)
        config = credit.config
        meter = ctx.binding.meter
        if attribute == 2:
            return Data.structure(Data.enum(2), Data.enum(2))
        if attribute == 3:
            return Data.unsigned(2 if credit.emergency_active else 1)
        if attribute == 4:
            emergency = config.emergency_credit > 0 and not credit.emergency_active
            bits = [
                not credit.exhausted,
                credit.low,
                emergency,
                emergency and credit.low,
                False,
                credit.emergency_active,
                credit.exhausted,
                False,
            ]
            return Data(DataType.BIT_STRING, "".join("1" if b else "0" for b in bits))
        if attribute == 5:
            return amount(credit.available, credit)
        if attribute == 6:
            return amount(credit.debt + max(-credit.credit, Decimal(0)), credit)
        if attribute == 7:
            return amount(Decimal(0), credit)
        if attribute == 8:
            return amount(credit.debt, credit)
        if attribute == 9:
            return Data.array(
                [Data.octet_string(name.to_bytes()) for name in (TOKEN_CREDIT, EMERGENCY_CREDIT)]
            )
        if attribute == 10:
            return Data.array([Data.octet_string(name.to_bytes()) for name in charges_of(meter)])
        if attribute == 11:
            return Data.array(
                [
                    Data.structure(
                        Data.octet_string(credit_name.to_bytes()),
                        Data.octet_string(charge.to_bytes()),
                        # bits: 0 collect while disconnected, 1 in load limiting, 2 in
                        # friendly periods
                        Data(DataType.BIT_STRING, "111" if charge == STANDING_CHARGE else "011"),
                    )
                    for credit_name in (TOKEN_CREDIT, EMERGENCY_CREDIT)
                    for charge in charges_of(meter)
                    if charge != DEBT_RECOVERY_CHARGE
                ]
            )
        if attribute == 12:
            share = (Decimal(100) - config.debt_recovery_pct).to_integral_value()
            return Data.array(
                [
                    Data.structure(
                        Data.octet_string(TOKEN_CREDIT.to_bytes()), Data.unsigned(int(share))
                    )
                ]
            )
        if attribute == 13:
            return date_time_data(from_epoch(meter.commissioned_at))
        if attribute == 14:
            return NOT_SPECIFIED
        if attribute == 15:
            unit = 2 if credit.unit == "money" else 1
            name = "money" if credit.unit == "money" else "kWh"
            return Data.structure(
                Data.visible_string(name), Data.integer(currency_scale(credit)), Data.enum(unit)
            )
        if attribute in (16, 17):
            return amount(config.low_credit_threshold, credit)
        if attribute == 18:
            return Data.long_unsigned(0)
        return Data.double_long(0)

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        raise CosemError(ActionResult.READ_WRITE_DENIED, "the account is managed by the vendor")


class CreditObject(CosemObject):
    """Class 112; ``emergency`` selects the emergency credit instance."""

    class_id = 112
    attribute_count = 11
    methods = frozenset({1, 2, 3})

    def __init__(self, logical_name: ObisCode, *, emergency: bool) -> None:
        super().__init__(logical_name)
        self.emergency = emergency

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        credit = _credit(ctx)
        config = credit.config
        zero = Decimal(0)
        if attribute == 2:
            if self.emergency:
                if credit.emergency_active:
                    return amount(config.emergency_credit + min(credit.credit, zero), credit)
                return amount(config.emergency_credit, credit)
            return amount(max(credit.credit, zero), credit)
        if attribute == 3:
            return Data.enum(2 if self.emergency else 0)
        if attribute == 4:
            return Data.unsigned(2 if self.emergency else 1)
        if attribute == 5:
            return amount(zero if self.emergency else config.low_credit_threshold, credit)
        if attribute == 6:
            return amount(zero, credit)
        if attribute == 7:
            # bits: 0 visual indication, 1 needs confirmation, 2 paid back, 3 resettable,
            # 4 receives credit from tokens
            return Data(DataType.BIT_STRING, "01100" if self.emergency else "00001")
        if attribute == 8:
            if self.emergency:
                if credit.emergency_active:
                    return Data.enum(4 if credit.exhausted else 3)
                return Data.enum(1 if credit.low and config.emergency_credit > 0 else 0)
            if credit.emergency_active or credit.credit <= 0:
                return Data.enum(4)
            return Data.enum(3)
        if attribute == 9:
            return amount(config.emergency_credit if self.emergency else zero, credit)
        if attribute == 10:
            return amount(config.low_credit_threshold if self.emergency else zero, credit)
        return NOT_SPECIFIED

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if method != 3 or not self.emergency:
            raise CosemError(
                ActionResult.READ_WRITE_DENIED, "credit changes only through tokens or top-ups"
            )
        try:
            ctx.binding.meter.activate_emergency_credit(ctx.binding.now())
        except MeterstackError as exc:
            raise meter_refusal(exc, action=True) from exc
        return None


class ChargeObject(CosemObject):
    """Class 113; ``kind`` 0 consumption, 1 the daily standing charge, 2 debt recovery."""

    class_id = 113
    attribute_count = 13

    def __init__(self, logical_name: ObisCode, kind: int = 0) -> None:
        super().__init__(logical_name)
        self.kind = kind

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        credit = _credit(ctx)
        meter = ctx.binding.meter
        config = credit.config
        kind = self.kind
        if attribute == 2:
            if kind != 0:
                raise unavailable("the meter keeps one total, at 0.0.19.20.0.255")
            return amount(credit.total_charged, credit)
        if attribute == 3:
            return Data.enum(kind)
        if attribute == 4:
            return Data.unsigned((1, 2, 0)[kind])  # debt recovery is taken first
        if attribute in (5, 6):
            return self._unit_charge(credit)
        if attribute == 7:
            return NOT_SPECIFIED
        if attribute == 8:
            return Data.double_long_unsigned(86_400 if kind == 1 else 0)
        if attribute == 9:
            # bits: 0 percentage based collection, 1 continuous collection
            return Data(DataType.BIT_STRING, ("01", "00", "10")[kind])
        if attribute == 10:
            if kind == 0:
                return date_time_data(meter.measured_until)
            if kind == 1:
                last = _last_midnight(meter)
                return NOT_SPECIFIED if last is None else date_time_data(last)
            at = credit.last_purchase_at
            return NOT_SPECIFIED if at is None else date_time_data(from_epoch(at))
        if attribute == 11:
            if kind == 1:
                collected = _last_midnight(meter) is not None
                return amount(config.standing_charge_per_day if collected else Decimal(0), credit)
            raise unavailable("the meter does not keep its last collection amount")
        if attribute == 12:
            return amount(credit.debt if kind == 2 else Decimal(0), credit)
        return Data.long_unsigned(int(config.debt_recovery_pct * 100) if kind == 2 else 0)

    def _unit_charge(self, credit: PrepaidCredit) -> Data:
        config = credit.config
        if self.kind == 2:
            return _unit_charge((0, 0), (0, ObisCode(0, 0, 0, 0, 0), 0), [])
        if self.kind == 1:
            standing = config.standing_charge_per_day
            scale = price_scale([standing])
            raw = int((standing * Decimal(10) ** -scale).to_integral_value())
            return _unit_charge((0, scale), (8, CLOCK, 2), [(b"", raw)])
        if credit.unit == "money":
            prices = sorted(config.price_per_kwh.items())
        else:
            prices = [(rate, Decimal(1)) for rate in range(1, 9)]
        scale = price_scale([price for _, price in prices])
        table = [
            (bytes((rate,)), int((price * Decimal(10) ** -scale).to_integral_value()))
            for rate, price in prices
        ]
        return _unit_charge((-3, scale), (3, meter_obis.ACTIVE_ENERGY_IMPORT, 2), table)


def _last_midnight(meter: Meter) -> datetime | None:
    """The last local midnight the meter has crossed since commissioning (its standing
    charge was taken then), or ``None``."""
    days = LocalDays(zone(meter.config.timezone))
    until = meter.measured_until.timestamp()
    start = days.day_start(days.local_date(until))
    if start <= meter.commissioned_at:
        return None
    return from_epoch(start)


_STATUS_OF_REJECTION: dict[TokenRejection, int] = {
    TokenRejection.FORMAT: 4,
    TokenRejection.KEYPAD_LOCKED: 4,
    TokenRejection.INVALID: 5,
    TokenRejection.MANUFACTURER_CODE: 5,
}


def token_status_code(result: TokenResult) -> int:
    """The Blue Book token status code of one gateway result."""
    if result.accepted:
        return 3
    assert result.reason is not None
    if result.reason in _STATUS_OF_REJECTION:
        return _STATUS_OF_REJECTION[result.reason]
    if result.reason in (TokenRejection.FUNCTION, TokenRejection.OVERFLOW, TokenRejection.RANGE):
        return 7
    return 6


class TokenGatewayObject(CosemObject):
    class_id = 115
    attribute_count = 6
    methods = frozenset({1})

    def __init__(self, logical_name: ObisCode) -> None:
        super().__init__(logical_name)
        self.token = b""
        self.token_time: datetime | None = None
        self.result: TokenResult | None = None

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            return Data.octet_string(self.token)
        if attribute == 3:
            if self.token_time is None:
                return Data.octet_string(b"\xff" * 12)
            return date_time_data(self.token_time)
        if attribute == 4:
            text = b"" if self.result is None else self.result.effect.encode("utf-8")[:255]
            return Data.array([Data.octet_string(text)])
        if attribute == 5:
            return Data.enum(0)
        if self.result is None:
            return Data.structure(Data.enum(8), Data(DataType.BIT_STRING, ""))
        reason = "" if self.result.reason is None else self.result.reason.value
        return Data.structure(
            Data.enum(token_status_code(self.result)),
            Data(DataType.BIT_STRING, "".join(f"{b:08b}" for b in reason.encode("ascii"))),
        )

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if parameters is None or parameters.type != DataType.OCTET_STRING:
            raise type_unmatched("enter takes the token as an octet-string")
        raw = parameters.as_bytes("token")
        try:
            digits = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise type_unmatched("an STS token is 20 ASCII digits") from exc
        meter = ctx.binding.meter
        if meter.token_gateway is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, "this meter has no token gateway")
        at = ctx.binding.now()
        try:
            result = meter.enter_token(digits, at)
        except MeterstackError as exc:
            raise meter_refusal(exc, action=True) from exc
        self.token = raw
        self.token_time = at
        self.result = result
        return None
