"""The channels meter data management stores, their units and their Green Button form.

A channel is named by the OBIS code of the captured quantity. Energy on the electricity
channels is in Wh or varh (as the meter's registers), power in W, voltage in V. Each
channel also carries how NAESB ESPI (Green Button) describes it: the ``uom`` code
(UnitSymbolKind), ``kind``, ``flowDirection``, ``commodity``, ``accumulationBehaviour`` and
``dataQualifier``.

References
----------
.. [1] IEC 62056-6-1:2017, Object Identification System (OBIS): value group A = 1
   electricity, 7 gas, 8 water; C = 1/2 active power +/-, 3/4 reactive, 9/10 apparent;
   D = 8 time integral, 5 last average; gas C = 3 volume (meter) Vm.
.. [2] NAESB REQ.21 Energy Services Provider Interface (ESPI) 1.0, ReadingType and its
   enumerations (UnitSymbolKind, FlowDirectionKind, CommodityKind, ReadingKind,
   AccumulationKind, DataQualifierKind), which follow IEC 61968-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from meterstack.core.obis import ObisCode
from meterstack.mdm.errors import UnitError


class Uom(IntEnum):
    """ESPI UnitSymbolKind codes meterstack reads and writes [2]."""

    A = 5
    V = 29
    J = 31
    W = 38
    M3 = 42
    VA = 61
    VAR = 63
    VAH = 71
    WH = 72
    VARH = 73
    FT3 = 119
    US_GAL = 128
    IMP_GAL = 130
    BTU = 132
    L = 134
    THERM = 169


class FlowDirection(IntEnum):
    """ESPI FlowDirectionKind [2]: forward is delivered to the customer."""

    NOT_APPLICABLE = 0
    FORWARD = 1
    REVERSE = 19


class ServiceKind(IntEnum):
    """ESPI ServiceKind of a UsagePoint [2]."""

    ELECTRICITY = 0
    GAS = 1
    WATER = 2


@dataclass(frozen=True, slots=True)
class Channel:
    """One stored channel and how Green Button names it."""

    obis: str
    name: str
    unit: str
    service: ServiceKind
    uom: Uom
    flow_direction: FlowDirection
    kind: int  # ESPI ReadingKind: 12 energy, 8 demand, 54 voltage
    commodity: int  # ESPI CommodityKind: 1 electricity, 7 natural gas, 9 potable water
    accumulation: int  # ESPI AccumulationKind: 4 deltaData, 12 instantaneous
    data_qualifier: int  # ESPI DataQualifierKind: 12 normal, 2 average
    energy: bool  # an interval of energy (VEE estimates it), not a level

    @property
    def code(self) -> ObisCode:
        return ObisCode.parse(self.obis)


A_PLUS = Channel("1.0.1.8.0.255", "A+", "Wh", ServiceKind.ELECTRICITY, Uom.WH,
                 FlowDirection.FORWARD, 12, 1, 4, 12, True)  # fmt: skip
A_MINUS = Channel("1.0.2.8.0.255", "A-", "Wh", ServiceKind.ELECTRICITY, Uom.WH,
                  FlowDirection.REVERSE, 12, 1, 4, 12, True)  # fmt: skip
R_PLUS = Channel("1.0.3.8.0.255", "R+", "varh", ServiceKind.ELECTRICITY, Uom.VARH,
                 FlowDirection.FORWARD, 12, 1, 4, 12, True)  # fmt: skip
R_MINUS = Channel("1.0.4.8.0.255", "R-", "varh", ServiceKind.ELECTRICITY, Uom.VARH,
                  FlowDirection.REVERSE, 12, 1, 4, 12, True)  # fmt: skip
S_PLUS = Channel("1.0.9.8.0.255", "S+", "VAh", ServiceKind.ELECTRICITY, Uom.VAH,
                 FlowDirection.FORWARD, 12, 1, 4, 12, True)  # fmt: skip
S_MINUS = Channel("1.0.10.8.0.255", "S-", "VAh", ServiceKind.ELECTRICITY, Uom.VAH,
                  FlowDirection.REVERSE, 12, 1, 4, 12, True)  # fmt: skip
AVERAGE_VOLTAGE = Channel("1.0.12.27.0.255", "average voltage", "V", ServiceKind.ELECTRICITY,
                          Uom.V, FlowDirection.NOT_APPLICABLE, 54, 1, 12, 2, False)  # fmt: skip
DEMAND = Channel("1.0.1.5.0.255", "demand", "W", ServiceKind.ELECTRICITY, Uom.W,
                 FlowDirection.FORWARD, 8, 1, 12, 2, False)  # fmt: skip
GAS_VOLUME = Channel("7.0.3.0.0.255", "gas volume", "m3", ServiceKind.GAS, Uom.M3,
                     FlowDirection.FORWARD, 12, 7, 4, 12, True)  # fmt: skip
# No OBIS code for gas energy in therms could be cited; meterstack uses value group C = 128,
# which IEC 62056-6-1 leaves to manufacturer-specific use.
GAS_ENERGY = Channel("7.0.128.8.0.255", "gas energy", "therm", ServiceKind.GAS, Uom.THERM,
                     FlowDirection.FORWARD, 12, 7, 4, 12, True)  # fmt: skip
WATER_VOLUME = Channel("8.0.1.0.0.255", "water volume", "m3", ServiceKind.WATER, Uom.M3,
                       FlowDirection.FORWARD, 12, 9, 4, 12, True)  # fmt: skip

CHANNELS: tuple[Channel, ...] = (
    A_PLUS, A_MINUS, R_PLUS, R_MINUS, S_PLUS, S_MINUS, AVERAGE_VOLTAGE, DEMAND,
    GAS_VOLUME, GAS_ENERGY, WATER_VOLUME,
)  # fmt: skip
BY_OBIS: dict[str, Channel] = {channel.obis: channel for channel in CHANNELS}

#: The load-profile energy channels VEE validates and estimates.
ENERGY_CHANNELS: tuple[Channel, ...] = (A_PLUS, A_MINUS, R_PLUS, R_MINUS)

# ESPI uom -> (the stored unit it converts to, factor to that unit).
_TO_STORED: dict[Uom, tuple[str, float]] = {
    Uom.WH: ("Wh", 1.0),
    Uom.VARH: ("varh", 1.0),
    Uom.VAH: ("VAh", 1.0),
    Uom.J: ("Wh", 1.0 / 3600.0),
    Uom.W: ("W", 1.0),
    Uom.V: ("V", 1.0),
    Uom.M3: ("m3", 1.0),
    Uom.FT3: ("m3", 0.028316846592),  # 1 ft = 0.3048 m exactly
    Uom.L: ("m3", 0.001),
    Uom.US_GAL: ("m3", 0.003785411784),  # 231 in3 exactly
    Uom.IMP_GAL: ("m3", 0.00454609),  # exactly, by definition
    Uom.THERM: ("therm", 1.0),
    Uom.BTU: ("therm", 1e-5),  # 1 therm = 100 000 Btu
}

#: Units accepted in CSV files: name -> (stored unit, factor to it).
CSV_UNITS: dict[str, tuple[str, float]] = {
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1e3),
    "MWh": ("Wh", 1e6),
    "varh": ("varh", 1.0),
    "kvarh": ("varh", 1e3),
    "VAh": ("VAh", 1.0),
    "kVAh": ("VAh", 1e3),
    "W": ("W", 1.0),
    "kW": ("W", 1e3),
    "V": ("V", 1.0),
    "m3": ("m3", 1.0),
    "ft3": ("m3", 0.028316846592),
    "therm": ("therm", 1.0),
}


def channel_for_espi(
    service: ServiceKind | None, uom: int, flow: int | None, where: str
) -> tuple[Channel, float]:
    """The stored channel for an ESPI ReadingType, and the factor from its uom to the channel's
    unit (before the powerOfTenMultiplier).

    Raises
    ------
    UnitError
        The uom code is not one meterstack knows, or not one it can store for this service.
    """
    try:
        symbol = Uom(uom)
    except ValueError:
        raise UnitError(f"{where}.uom", uom, "not a UnitSymbolKind code meterstack knows") from None
    unit, factor = _TO_STORED.get(symbol, ("", 0.0))
    reverse = flow == FlowDirection.REVERSE
    candidates = [
        c
        for c in CHANNELS
        if c.unit == unit
        and (service is None or c.service == service)
        and (
            c.flow_direction == FlowDirection.NOT_APPLICABLE
            or (c.flow_direction == FlowDirection.REVERSE) == reverse
        )
    ]
    if not candidates:
        raise UnitError(f"{where}.uom", uom, f"{symbol.name} is not stored for service {service!r}")
    return candidates[0], factor


def unit_of(obis: str) -> str | None:
    """The unit of a known channel, or None for a channel meterstack stores without one."""
    channel = BY_OBIS.get(obis)
    return channel.unit if channel is not None else None
