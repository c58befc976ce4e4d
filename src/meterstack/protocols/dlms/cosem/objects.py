"""The object list of the virtual meter: every COSEM object mapped onto the meter model.

=================== ===== ==============================================================
logical name        class what
=================== ===== ==============================================================
0.0.40.0.0.255      15    the current association
0.0.43.0.0.255      64    security setup
0.0.42.0.0.255      1     COSEM logical device name (``MST`` + serial)
0.0.96.1.0.255      1     meter serial number
0.0.96.10.1.255     1     load profile status word
0.0.96.11.e.255     1     last event code of each event log
0.0.1.0.0.255       8     clock
1.0.1.8.e.255 ...   3     energy registers (Wh, varh, VAh), per rate
1.0.1.4/5.0.255     3     demand, current and last average (W)
1.0.1.6.0.255       4     maximum demand with its time (W)
1.0.12.27.0.255     3     average voltage of the interval in progress (V)
1.0.99.1.0.255      7     load profile
0.0.99.98.e.255     7     event logs (and 1.0.99.97.0.255, power failures)
0.0.96.3.10.255     70    disconnect control
0.0.17.0.0.255      71    limiter
0.0.44.0.0.255      18    image transfer
1.0.0.2.0.255       1     active firmware identifier
0.0.25.9.0.255      40    push setup, scheduled (0.4.25.9.0.255: on alarm)
0.0.10.0.108.255    9     push script table
0.0.15.0.4.255      22    push action schedule
0.0.19.0.0.255      111   account
0.0.19.10.0/1.255   112   credit: token, emergency
0.0.19.20.e.255     113   charges: consumption (0), standing (1), debt recovery (2)
0.0.19.40.0.255     115   token gateway
=================== ===== ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.obis import ObisCode
from meterstack.link.firmware import FirmwareSlot
from meterstack.meter import Meter
from meterstack.meter import obis as meter_obis
from meterstack.meter.events import LogKind
from meterstack.protocols.dlms.axdr import Data, DataType
from meterstack.protocols.dlms.cosem.association import (
    AssociationLN,
    SecuritySetupObject,
    SecurityState,
)
from meterstack.protocols.dlms.cosem.base import CosemObject
from meterstack.protocols.dlms.cosem.basic import (
    Clock,
    DataObject,
    ExtendedRegister,
    Register,
    Unit,
)
from meterstack.protocols.dlms.cosem.control import DisconnectControlObject, LimiterObject
from meterstack.protocols.dlms.cosem.firmware import (
    ACTIVE_FIRMWARE_IDENTIFIER,
    ImageTransferObject,
)
from meterstack.protocols.dlms.cosem.prepayment import (
    ACCOUNT,
    CONSUMPTION_CHARGE,
    DEBT_RECOVERY_CHARGE,
    EMERGENCY_CREDIT,
    STANDING_CHARGE,
    TOKEN_CREDIT,
    AccountObject,
    ChargeObject,
    CreditObject,
    TokenGatewayObject,
    charges_of,
)
from meterstack.protocols.dlms.cosem.profile import (
    CLOCK,
    EVENT_CODE_OBJECTS,
    PROFILE_STATUS,
    event_log,
    load_profile,
)
from meterstack.protocols.dlms.cosem.push import PushSetupObject
from meterstack.protocols.dlms.cosem.schedule import (
    ScriptAction,
    ScriptTable,
    SingleActionSchedule,
)

CURRENT_ASSOCIATION = ObisCode(0, 0, 40, 0, 0)
SECURITY_SETUP = ObisCode(0, 0, 43, 0, 0)
LOGICAL_DEVICE_NAME = ObisCode(0, 0, 42, 0, 0)
SERIAL_NUMBER = ObisCode(0, 0, 96, 1, 0)
IMAGE_TRANSFER = ObisCode(0, 0, 44, 0, 0)
PUSH_SETUP = ObisCode(0, 0, 25, 9, 0)
PUSH_ON_ALARM = ObisCode(0, 4, 25, 9, 0)
PUSH_SCRIPT_TABLE = ObisCode(0, 0, 10, 0, 108)
PUSH_SCHEDULE = ObisCode(0, 0, 15, 0, 4)
TOKEN_GATEWAY = ObisCode(0, 0, 19, 40, 0)

_ENERGY_UNITS = {
    1: Unit.WATT_HOUR,
    2: Unit.WATT_HOUR,
    9: Unit.VOLT_AMPERE_HOUR,
    10: Unit.VOLT_AMPERE_HOUR,
}


def _last_code(kind: LogKind) -> DataObject:
    def value(meter: Meter) -> Data:
        log = meter.event_logs[kind]
        last = log.held()[-1].code if len(log) else 0
        return Data(DataType.UNSIGNED, last)

    return DataObject(EVENT_CODE_OBJECTS[kind], value)


def _register(code: ObisCode) -> Callable[[Meter], float]:
    def value(meter: Meter) -> float:
        return meter.register_values()[code]

    return value


def _average_voltage(meter: Meter) -> float:
    held = meter.load_profile.held()
    return held[-1].average_voltage_v if len(held) else 0.0


def push_objects() -> list[CosemObject]:
    """The two push setups, the push script table and the (empty) push schedule."""
    scheduled = PushSetupObject(
        PUSH_SETUP,
        [
            (1, LOGICAL_DEVICE_NAME, 2),
            (8, CLOCK, 2),
            (3, meter_obis.ACTIVE_ENERGY_IMPORT, 2),
            (3, meter_obis.ACTIVE_ENERGY_EXPORT, 2),
        ],
    )
    on_alarm = PushSetupObject(
        PUSH_ON_ALARM,
        [
            (1, LOGICAL_DEVICE_NAME, 2),
            (8, CLOCK, 2),
            *((1, EVENT_CODE_OBJECTS[kind], 2) for kind in LogKind),
        ],
    )
    scripts = ScriptTable(
        PUSH_SCRIPT_TABLE,
        {
            1: [ScriptAction(2, 40, PUSH_SETUP, 1, Data.integer(0))],
            2: [ScriptAction(2, 40, PUSH_ON_ALARM, 1, Data.integer(0))],
        },
    )
    schedule = SingleActionSchedule(PUSH_SCHEDULE, (PUSH_SCRIPT_TABLE, 1))
    return [scheduled, on_alarm, scripts, schedule]


def build_object_list(
    meter: Meter,
    security: SecurityState,
    *,
    firmware_verify_key: ec.EllipticCurvePublicKey | None = None,
    firmware: FirmwareSlot | None = None,
) -> list[CosemObject]:
    """Every object of the virtual meter, bound to ``meter``.

    ``firmware_verify_key`` is the vendor's key that images must be signed with;
    ``firmware`` the meter's firmware slot, if it has one (shared with the MQTT link).
    """
    serial = meter.config.serial
    objects: list[CosemObject] = [
        AssociationLN(CURRENT_ASSOCIATION),
        SecuritySetupObject(SECURITY_SETUP, security),
        DataObject(LOGICAL_DEVICE_NAME, lambda m: Data.octet_string(f"MST{serial}".encode())),
        DataObject(SERIAL_NUMBER, lambda m: Data.visible_string(serial)),
        DataObject(
            PROFILE_STATUS,
            lambda m: Data.long_unsigned(
                (m.load_profile.held()[-1].status & 0xFFFF) if len(m.load_profile) else 0
            ),
        ),
        *(_last_code(kind) for kind in LogKind),
        Clock(CLOCK),
    ]
    for code in meter.register_values():
        if code.d == 8:
            unit = _ENERGY_UNITS.get(code.c, Unit.VAR_HOUR)
            objects.append(Register(code, _register(code), unit))
    objects.append(
        Register(
            meter_obis.DEMAND_CURRENT_AVERAGE,
            lambda m: m.demand.current_average_w,
            Unit.WATT,
        )
    )
    objects.append(
        Register(meter_obis.DEMAND_LAST_AVERAGE, lambda m: m.demand.last_average_w, Unit.WATT)
    )
    objects.append(
        ExtendedRegister(
            meter_obis.MAXIMUM_DEMAND,
            lambda m: m.demand.maximum_w,
            Unit.WATT,
            lambda m: m.demand.maximum_at,
        )
    )
    objects.append(
        Register(
            meter_obis.AVERAGE_VOLTAGE,
            _average_voltage,
            Unit.VOLT,
            scaler=-1,
            kind=DataType.LONG_UNSIGNED,
        )
    )
    objects.append(load_profile(meter))
    objects.extend(event_log(kind) for kind in LogKind)
    objects.append(DisconnectControlObject(meter_obis.DISCONNECT_CONTROL))
    objects.append(LimiterObject(meter_obis.LIMITER))
    image_transfer = ImageTransferObject(IMAGE_TRANSFER, firmware_verify_key, firmware)
    objects.append(image_transfer)
    objects.append(
        DataObject(
            ACTIVE_FIRMWARE_IDENTIFIER,
            lambda m: Data.octet_string(image_transfer.running_identifier),
        )
    )
    objects.extend(push_objects())
    if meter.credit is not None:
        objects.extend(
            [
                AccountObject(ACCOUNT),
                CreditObject(TOKEN_CREDIT, emergency=False),
                CreditObject(EMERGENCY_CREDIT, emergency=True),
            ]
        )
        kinds = {CONSUMPTION_CHARGE: 0, STANDING_CHARGE: 1, DEBT_RECOVERY_CHARGE: 2}
        objects.extend(ChargeObject(name, kinds[name]) for name in charges_of(meter))
    if meter.token_gateway is not None:
        objects.append(TokenGatewayObject(TOKEN_GATEWAY))
    return objects
