"""OBIS codes of the meter's objects.

Energy registers and demand follow IEC 62056-6-1 (value groups C and D); the event logs and
the disconnect control follow the IDIS companion specification; the average voltage channel
of the load profile follows IS 15959 (the Indian DLMS companion), which names it
``1.0.12.27.0.255``.
"""

from __future__ import annotations

from meterstack.core.obis import ObisCode

# Energy registers, total (rate 0) [IEC 62056-6-1, C = 1..10, D = 8 time integral 1].
ACTIVE_ENERGY_IMPORT = ObisCode(1, 0, 1, 8, 0)  # A+
ACTIVE_ENERGY_EXPORT = ObisCode(1, 0, 2, 8, 0)  # A-
REACTIVE_ENERGY_IMPORT = ObisCode(1, 0, 3, 8, 0)  # R+ = QI + QII
REACTIVE_ENERGY_EXPORT = ObisCode(1, 0, 4, 8, 0)  # R- = QIII + QIV
REACTIVE_ENERGY_QI = ObisCode(1, 0, 5, 8, 0)
REACTIVE_ENERGY_QII = ObisCode(1, 0, 6, 8, 0)
REACTIVE_ENERGY_QIII = ObisCode(1, 0, 7, 8, 0)
REACTIVE_ENERGY_QIV = ObisCode(1, 0, 8, 8, 0)
APPARENT_ENERGY_IMPORT = ObisCode(1, 0, 9, 8, 0)
APPARENT_ENERGY_EXPORT = ObisCode(1, 0, 10, 8, 0)


def active_energy_import_rate(rate: int) -> ObisCode:
    """A+ register of tariff rate ``rate`` (E = 1..63)."""
    return ObisCode(1, 0, 1, 8, rate)


def active_energy_export_rate(rate: int) -> ObisCode:
    """A- register of tariff rate ``rate`` (E = 1..63)."""
    return ObisCode(1, 0, 2, 8, rate)


# Demand of active import power [IEC 62056-6-1, D = 4 current average, 5 last average, 6 max].
DEMAND_CURRENT_AVERAGE = ObisCode(1, 0, 1, 4, 0)
DEMAND_LAST_AVERAGE = ObisCode(1, 0, 1, 5, 0)
MAXIMUM_DEMAND = ObisCode(1, 0, 1, 6, 0)

# Instantaneous values.
VOLTAGE_L1 = ObisCode(1, 0, 32, 7, 0)
VOLTAGE_L2 = ObisCode(1, 0, 52, 7, 0)
VOLTAGE_L3 = ObisCode(1, 0, 72, 7, 0)
AVERAGE_VOLTAGE = ObisCode(1, 0, 12, 27, 0)  # IS 15959 block load profile

# Profiles, logs and control objects [IDIS].
LOAD_PROFILE = ObisCode(1, 0, 99, 1, 0)
BILLING_PROFILE = ObisCode(1, 0, 98, 1, 0)
STANDARD_EVENT_LOG = ObisCode(0, 0, 99, 98, 0)
FRAUD_DETECTION_LOG = ObisCode(0, 0, 99, 98, 1)
DISCONNECTOR_CONTROL_LOG = ObisCode(0, 0, 99, 98, 2)
POWER_QUALITY_LOG = ObisCode(0, 0, 99, 98, 4)
# Not assigned by IDIS; meterstack uses the next free instances of the same group.
FIRMWARE_EVENT_LOG = ObisCode(0, 0, 99, 98, 5)
TOKEN_EVENT_LOG = ObisCode(0, 0, 99, 98, 6)
EXPORT_CONTROL_LOG = ObisCode(0, 0, 99, 98, 7)
POWER_FAILURE_LOG = ObisCode(1, 0, 99, 97, 0)
DISCONNECT_CONTROL = ObisCode(0, 0, 96, 3, 10)
LIMITER = ObisCode(0, 0, 17, 0, 0)
