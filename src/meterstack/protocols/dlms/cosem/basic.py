"""Interface classes 1 (data), 3 (register), 4 (extended register) and 8 (clock).

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.3.1 "Data" (class_id 1), 4.3.2
   "Register" (3) with Table 4 "Enumerated values for physical units", 4.3.3 "Extended
   register" (4), 4.5.1 "Clock" (8).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.core.time import from_epoch
from meterstack.meter import Meter
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult, DataAccessResult
from meterstack.protocols.dlms.axdr import (
    Data,
    DataType,
    date_time_data,
    decode_date_time,
)
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    meter_refusal,
    type_unmatched,
)
from meterstack.protocols.errors import ProtocolError


class Unit(IntEnum):
    """Physical units of the scaler_unit attribute [1]_ Table 4 (a selection)."""

    CURRENCY = 10
    SECOND = 7
    WATT = 27
    VOLT_AMPERE = 28
    VAR = 29
    WATT_HOUR = 30
    VOLT_AMPERE_HOUR = 31
    VAR_HOUR = 32
    AMPERE = 33
    VOLT = 35
    HERTZ = 44
    OTHER = 254
    COUNT = 255


_UNSIGNED_TYPES = (
    DataType.UNSIGNED,
    DataType.LONG_UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.LONG64_UNSIGNED,
)
_SIGNED_TYPES = (DataType.INTEGER, DataType.LONG, DataType.DOUBLE_LONG, DataType.LONG64)


def scaled(value: float, scaler: int, kind: DataType) -> Data:
    """``round(value / 10**scaler)`` as ``kind``, widened to 64 bits rather than wrapped.

    The value on the wire times ``10**scaler`` is the quantity in its unit [1]_ 4.3.2.
    """
    raw = round(value / 10.0**scaler) if scaler else round(value)
    try:
        return Data(kind, raw)
    except ProtocolError:
        wider = DataType.LONG64_UNSIGNED if kind in _UNSIGNED_TYPES else DataType.LONG64
        if kind in _UNSIGNED_TYPES and raw < 0:
            raise CosemError(DataAccessResult.OTHER_REASON, f"{value} is negative") from None
        return Data(wider, raw)


def scaler_unit(scaler: int, unit: Unit) -> Data:
    return Data.structure(Data.integer(scaler), Data.enum(int(unit)))


class DataObject(CosemObject):
    """Class 1 "Data": attribute 2 ``value``, from a function of the meter."""

    class_id = 1
    attribute_count = 2

    def __init__(self, logical_name: ObisCode, value: Callable[[Meter], Data]) -> None:
        super().__init__(logical_name)
        self._value = value

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        return self._value(ctx.binding.meter)


class Register(CosemObject):
    """Class 3 "Register": 2 ``value``, 3 ``scaler_unit``; method 1 ``reset`` (refused)."""

    class_id = 3
    attribute_count = 3
    methods = frozenset({1})

    def __init__(
        self,
        logical_name: ObisCode,
        value: Callable[[Meter], float],
        unit: Unit,
        *,
        scaler: int = 0,
        kind: DataType = DataType.DOUBLE_LONG_UNSIGNED,
    ) -> None:
        super().__init__(logical_name)
        self._value = value
        self.unit = unit
        self.scaler = scaler
        self.kind = kind

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            return scaled(self._value(ctx.binding.meter), self.scaler, self.kind)
        return scaler_unit(self.scaler, self.unit)

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        raise CosemError(ActionResult.READ_WRITE_DENIED, "billing registers are never reset")


class ExtendedRegister(Register):
    """Class 4 "Extended register": adds 4 ``status`` and 5 ``capture_time``."""

    class_id = 4
    attribute_count = 5

    def __init__(
        self,
        logical_name: ObisCode,
        value: Callable[[Meter], float],
        unit: Unit,
        capture_time: Callable[[Meter], float | None],
        *,
        scaler: int = 0,
        kind: DataType = DataType.DOUBLE_LONG_UNSIGNED,
    ) -> None:
        super().__init__(logical_name, value, unit, scaler=scaler, kind=kind)
        self._capture_time = capture_time

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 4:
            return Data.unsigned(0)
        if attribute == 5:
            at = self._capture_time(ctx.binding.meter)
            if at is None:
                return Data.octet_string(b"\xff" * 12)  # not specified
            return date_time_data(from_epoch(at))
        return super().read(attribute, ctx, access)


def parse_date_time(value: Data, field: str) -> datetime:
    """A COSEM date-time sent as octet-string (12) or as the date-time type."""
    if value.type not in (DataType.OCTET_STRING, DataType.DATE_TIME):
        raise type_unmatched(f"{field} is a date-time")
    raw = value.value
    assert isinstance(raw, bytes)
    try:
        return decode_date_time(raw, field)
    except ProtocolError as exc:
        raise type_unmatched(exc.reason) from exc


class Clock(CosemObject):
    """Class 8 "Clock", 0.0.1.0.0.255.

    2 ``time`` (settable: the meter logs the adjustment), 3 ``time_zone`` (minutes; 0:
    the meter keeps UTC on the wire), 4 ``status``, 5/6 daylight savings begin/end
    (not used: all 0xFF), 7 ``daylight_savings_deviation``, 8 ``daylight_savings_enabled``,
    9 ``clock_base`` (1: internal crystal).
    """

    class_id = 8
    attribute_count = 9
    writable = frozenset({2})

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            return date_time_data(ctx.binding.now())
        if attribute == 3:
            return Data.long(0)
        if attribute == 4:
            return Data.unsigned(0)
        if attribute in (5, 6):
            return Data.octet_string(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff")
        if attribute == 7:
            return Data.integer(0)
        if attribute == 8:
            return Data.boolean(False)
        return Data.enum(1)

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        new_time = parse_date_time(value, "clock.time")
        try:
            ctx.binding.set_time(new_time.astimezone(UTC))
        except MeterstackError as exc:
            raise meter_refusal(exc, action=False) from exc
