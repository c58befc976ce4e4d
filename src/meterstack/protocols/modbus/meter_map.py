"""The virtual meter's Modbus register map (documented in ``docs/protocols.md``).

Every read-only value is served identically as holding registers (function 3) and input
registers (function 4), so a building management system can use either. Energy registers
are 64-bit so they never wrap. Two holding registers take commands, range-checked before
anything reaches the meter: a write outside the allowed values is answered with exception
03 (illegal data value), a write to any other address with exception 02 (illegal data
address), and the meter is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from meterstack.core.obis import ObisCode
from meterstack.meter import Meter
from meterstack.protocols.modbus.registers import RegisterDefinition, encode_value

RELAY_COMMAND = 200
LIMITER_THRESHOLD = 202
#: Allowed limiter thresholds over Modbus. [W]
MIN_THRESHOLD_W = 1
MAX_THRESHOLD_W = 1_000_000


@dataclass(frozen=True, slots=True)
class MeterRegister:
    definition: RegisterDefinition
    read: Callable[[Meter], float | int | str | Decimal]


def _o(text: str) -> ObisCode:
    return ObisCode.parse(text)


def _credit(meter: Meter) -> Decimal:
    return Decimal(0) if meter.credit is None else meter.credit.credit


def _debt(meter: Meter) -> Decimal:
    return Decimal(0) if meter.credit is None else meter.credit.debt


def _voltage(meter: Meter) -> float:
    held = meter.load_profile.held()
    return held[-1].average_voltage_v if len(held) else 0.0


def _r(  # noqa: PLR0917 - a table of registers reads best positionally
    name: str,
    address: int,
    kind: str,
    read: Callable[[Meter], float | int | str | Decimal],
    unit: str = "",
    scale: int = 0,
    obis: str | None = None,
    length: int = 0,
    description: str = "",
) -> MeterRegister:
    return MeterRegister(
        RegisterDefinition(
            name,
            address,
            kind,
            "holding",
            scale,
            unit,
            None if obis is None else _o(obis),
            length,
            False,
            description,
        ),
        read,
    )


METER_REGISTERS: tuple[MeterRegister, ...] = (
    _r(
        "serial",
        0,
        "string",
        lambda m: m.config.serial,
        length=16,
        description="meter serial number, ASCII, NUL padded",
    ),
    _r(
        "active_energy_import",
        100,
        "uint64",
        lambda m: m.registers.a_plus,
        "Wh",
        obis="1.0.1.8.0.255",
    ),
    _r(
        "active_energy_export",
        104,
        "uint64",
        lambda m: m.registers.a_minus,
        "Wh",
        obis="1.0.2.8.0.255",
    ),
    _r(
        "reactive_energy_import",
        108,
        "uint64",
        lambda m: m.registers.r_plus,
        "varh",
        obis="1.0.3.8.0.255",
    ),
    _r(
        "reactive_energy_export",
        112,
        "uint64",
        lambda m: m.registers.r_minus,
        "varh",
        obis="1.0.4.8.0.255",
    ),
    _r(
        "apparent_energy_import",
        116,
        "uint64",
        lambda m: m.registers.s_plus,
        "VAh",
        obis="1.0.9.8.0.255",
    ),
    _r(
        "apparent_energy_export",
        120,
        "uint64",
        lambda m: m.registers.s_minus,
        "VAh",
        obis="1.0.10.8.0.255",
    ),
    _r(
        "demand_current_average",
        124,
        "int32",
        lambda m: m.demand.current_average_w,
        "W",
        obis="1.0.1.4.0.255",
    ),
    _r(
        "demand_last_average",
        126,
        "int32",
        lambda m: m.demand.last_average_w,
        "W",
        obis="1.0.1.5.0.255",
    ),
    _r("maximum_demand", 128, "int32", lambda m: m.demand.maximum_w, "W", obis="1.0.1.6.0.255"),
    _r(
        "average_voltage",
        130,
        "uint16",
        _voltage,
        "V",
        scale=-1,
        obis="1.0.12.27.0.255",
        description="average voltage of the last load-profile interval",
    ),
    _r(
        "relay_output_state",
        140,
        "uint16",
        lambda m: int(m.relay.output_state),
        description="1 connected, 0 open",
    ),
    _r(
        "relay_control_state",
        141,
        "uint16",
        lambda m: int(m.relay.state),
        obis="0.0.96.3.10.255",
        description="0 disconnected, 1 connected, 2 ready for reconnection",
    ),
    _r("relay_control_mode", 142, "uint16", lambda m: m.relay.control_mode),
    _r(
        "limiter_threshold",
        144,
        "uint32",
        lambda m: 0 if m.limiter is None else m.limiter.threshold_w,
        "W",
        obis="0.0.17.0.0.255",
        description="0 when the meter has no limiter",
    ),
    _r(
        "credit",
        150,
        "int32",
        _credit,
        "money or kWh",
        scale=-3,
        description="prepaid credit in thousandths of the credit unit",
    ),
    _r("debt", 152, "int32", _debt, "money or kWh", scale=-3),
)


def _rate_import(meter: Meter, rate: int) -> int:
    return meter.registers.a_plus_rate[rate]


def _rate_export(meter: Meter, rate: int) -> int:
    return meter.registers.a_minus_rate[rate]


def rate_registers(rates: int) -> tuple[MeterRegister, ...]:
    """A+ and A- per tariff rate from address 300 (four registers each)."""
    registers = []
    for rate in range(1, rates + 1):
        registers.append(
            _r(
                f"active_energy_import_rate_{rate}",
                300 + 8 * (rate - 1),
                "uint64",
                partial(_rate_import, rate=rate),
                "Wh",
                obis=f"1.0.1.8.{rate}.255",
            )
        )
        registers.append(
            _r(
                f"active_energy_export_rate_{rate}",
                304 + 8 * (rate - 1),
                "uint64",
                partial(_rate_export, rate=rate),
                "Wh",
                obis=f"1.0.2.8.{rate}.255",
            )
        )
    return tuple(registers)


def meter_registers(meter: Meter) -> tuple[MeterRegister, ...]:
    return METER_REGISTERS + rate_registers(meter.config.rates)


def register_image(meter: Meter, registers: tuple[MeterRegister, ...]) -> dict[int, int]:
    """Address -> 16-bit word of every read-only register, from the meter now."""
    image: dict[int, int] = {}
    for register in registers:
        definition = register.definition
        value = register.read(meter)
        if isinstance(value, Decimal):
            value = float(value)
        words = encode_value(
            value, definition.kind, scale=definition.scale, length=definition.length
        )
        image.update(enumerate(words, start=definition.address))
    return image
