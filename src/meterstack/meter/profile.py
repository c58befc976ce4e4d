"""The load profile: one entry per capture period (15, 30 or 60 minutes).

Each entry holds the energy of the interval on four channels (A+, A-, R+, R-) as whole-unit
differences of the registers, so the entries of a span add up to the register's change over
that span exactly; the average voltage and the average import demand of the interval; and a
status word.

Status bits 0-7 follow the IDIS "AMR profile status" (bit 7 power down, bit 5 clock
adjusted, bit 2 data not valid); bits 8 and 9 are meterstack's (tamper, relay open).
"""

from __future__ import annotations

from enum import IntFlag
from typing import NamedTuple

from meterstack.core.obis import ObisCode
from meterstack.meter import obis
from meterstack.meter.ring import NumberedRing


class ProfileStatus(IntFlag):
    """Status word of one load-profile interval."""

    CRITICAL_ERROR = 0x01
    CLOCK_INVALID = 0x02
    DATA_NOT_VALID = 0x04
    DAYLIGHT_SAVING = 0x08
    CLOCK_ADJUSTED = 0x20
    POWER_DOWN = 0x80
    TAMPER = 0x100
    RELAY_OPEN = 0x200


class ProfileEntry(NamedTuple):
    """One captured interval, labelled by its end (POSIX seconds, UTC)."""

    seq: int
    interval_end: float
    a_plus_wh: int
    a_minus_wh: int
    r_plus_varh: int
    r_minus_varh: int
    average_voltage_v: float
    demand_w: float
    status: int


#: The capture objects, in column order after ``interval_end``.
CAPTURE_OBJECTS: tuple[ObisCode, ...] = (
    obis.ACTIVE_ENERGY_IMPORT,
    obis.ACTIVE_ENERGY_EXPORT,
    obis.REACTIVE_ENERGY_IMPORT,
    obis.REACTIVE_ENERGY_EXPORT,
    obis.AVERAGE_VOLTAGE,
    obis.DEMAND_LAST_AVERAGE,
)


class LoadProfile(NumberedRing[ProfileEntry]):
    """A ring buffer of :class:`ProfileEntry`, ``capacity_days`` deep."""

    def __init__(self, capture_period_s: int, capacity_days: int) -> None:
        super().__init__(capacity_days * 86400 // capture_period_s)
        self.capture_period_s = capture_period_s

    def append(
        self,
        *,
        interval_end: float,
        a_plus_wh: int,
        a_minus_wh: int,
        r_plus_varh: int,
        r_minus_varh: int,
        average_voltage_v: float,
        demand_w: float,
        status: int,
    ) -> ProfileEntry:
        self.last_seq += 1
        return self._push(
            ProfileEntry(
                self.last_seq,
                interval_end,
                a_plus_wh,
                a_minus_wh,
                r_plus_varh,
                r_minus_varh,
                average_voltage_v,
                demand_w,
                status,
            )
        )

    def between(self, start: float, end: float) -> list[ProfileEntry]:
        """Entries whose ``interval_end`` lies in ``(start, end]`` (selective access by range)."""
        return [entry for entry in self._entries if start < entry.interval_end <= end]
