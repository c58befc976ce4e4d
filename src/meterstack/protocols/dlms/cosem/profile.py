"""Interface class 7 "Profile generic": the load profile and the event logs.

Attributes: 2 ``buffer`` (an array of rows, each a structure of the captured values), 3
``capture_objects`` (array of ``{class_id, logical_name, attribute_index, data_index}``),
4 ``capture_period`` [s], 5 ``sort_method`` (1: FIFO), 6 ``sort_object``, 7
``entries_in_use``, 8 ``profile_entries``.

Selective access to the buffer [1]_ 4.3.6:

* selector 1, *range_descriptor*: ``{restricting_object, from_value, to_value,
  selected_values}``; rows whose restricting value (here the clock column, the first
  capture object) lies in ``[from_value, to_value]``, both ends included;
* selector 2, *entry_descriptor*: ``{from_entry, to_entry, from_selected_value,
  to_selected_value}``, entries numbered from 1 (the oldest held), ``to_entry = 0`` meaning
  the newest, ``to_selected_value = 0`` the last column.

``selected_values`` (an empty array for all) and the selected-value range choose columns.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.3.6 "Profile generic" (class_id 7,
   version 1).
.. [2] DLMS UA 1000-1 / IDIS package 2: load profile 1.0.99.1.0.255, event logs
   0.0.99.98.x.255 with the event code objects 0.0.96.11.x.255.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meterstack.core.obis import ObisCode
from meterstack.core.time import from_epoch
from meterstack.meter import Meter
from meterstack.meter.events import Event, LogKind
from meterstack.meter.profile import ProfileEntry
from meterstack.protocols.dlms.apdu import AccessSelection, DataAccessResult
from meterstack.protocols.dlms.axdr import Data, DataType, encode_date_time
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    denied,
)
from meterstack.protocols.dlms.cosem.basic import parse_date_time

CLOCK = ObisCode(0, 0, 1, 0, 0)
#: IDIS "AMR profile status" of the load profile.
PROFILE_STATUS = ObisCode(0, 0, 96, 10, 1)

CaptureObject = tuple[int, ObisCode, int, int]


def _scope(reason: str) -> CosemError:
    return CosemError(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED, reason)


class ProfileGeneric(CosemObject):
    """A profile whose rows come from the meter model.

    ``rows(meter)`` gives the entries held, oldest first; ``row_time(entry)`` the POSIX
    time of the first (clock) column; ``encode_row(entry)`` the values of every column.
    """

    class_id = 7
    version = 1
    attribute_count = 8
    selective = frozenset({2})
    methods = frozenset({1, 2})  # reset, capture: refused (the meter captures on its own)

    def __init__(
        self,
        logical_name: ObisCode,
        *,
        capture_objects: Sequence[CaptureObject],
        rows: Callable[[Meter], Sequence[Any]],
        row_time: Callable[[Any], float],
        encode_row: Callable[[Any], tuple[Data, ...]],
        capture_period_s: int,
        capacity: Callable[[Meter], int],
    ) -> None:
        super().__init__(logical_name)
        self.capture_objects = tuple(capture_objects)
        self._rows = rows
        self._row_time = row_time
        self._encode_row = encode_row
        self.capture_period_s = capture_period_s
        self._capacity = capacity

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        meter = ctx.binding.meter
        if attribute == 2:
            return self._buffer(meter, access)
        if attribute == 3:
            return Data.array([_capture_object(c) for c in self.capture_objects])
        if attribute == 4:
            return Data.double_long_unsigned(self.capture_period_s)
        if attribute == 5:
            return Data.enum(1)
        if attribute == 6:
            return _capture_object((8, CLOCK, 2, 0))
        if attribute == 7:
            return Data.double_long_unsigned(len(self._rows(meter)))
        return Data.double_long_unsigned(self._capacity(meter))

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        raise denied("the meter captures and keeps its profiles itself")

    def _buffer(self, meter: Meter, access: AccessSelection | None) -> Data:
        rows: Sequence[Any] = self._rows(meter)
        columns: list[int] | None = None
        if access is not None:
            if access.selector == 1:
                rows, columns = self._by_range(rows, access.parameters)
            elif access.selector == 2:
                rows, columns = self._by_entry(rows, access.parameters)
            else:
                raise _scope(f"access selector {access.selector} is not 1 or 2")
        encode = self._encode_row
        if columns is None:
            return Data.array([Data(DataType.STRUCTURE, encode(row)) for row in rows])
        picked = []
        for row in rows:
            values = encode(row)
            picked.append(Data(DataType.STRUCTURE, tuple(values[c] for c in columns)))
        return Data.array(picked)

    def _by_range(
        self, rows: Sequence[Any], parameters: Data
    ) -> tuple[list[Any], list[int] | None]:
        try:
            restricting, start, end, selected = parameters.as_items("range_descriptor", 4)
            class_id, name, attribute, _ = restricting.as_items("restricting_object", 4)
            key = (
                class_id.as_int("class_id"),
                ObisCode(*name.as_bytes("logical_name")),
                attribute.as_int("attribute_index"),
            )
        except Exception as exc:  # malformed descriptor: a type mismatch, not a crash
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, str(exc)) from exc
        first = self.capture_objects[0]
        if key != first[:3]:
            raise _scope("the restricting object must be the profile's clock column")
        low = parse_date_time(start, "from_value").timestamp()
        high = parse_date_time(end, "to_value").timestamp()
        row_time = self._row_time
        chosen = [row for row in rows if low <= row_time(row) <= high]
        return chosen, self._selected_columns(selected)

    def _selected_columns(self, selected: Data) -> list[int] | None:
        items = selected.as_items("selected_values")
        if not items:
            return None
        index = {c[:3]: i for i, c in enumerate(self.capture_objects)}
        columns = []
        for item in items:
            class_id, name, attribute, _ = item.as_items("capture_object_definition", 4)
            key = (
                class_id.as_int("class_id"),
                ObisCode(*name.as_bytes("logical_name")),
                attribute.as_int("attribute_index"),
            )
            if key not in index:
                raise _scope(f"{key[1]} attribute {key[2]} is not captured by this profile")
            columns.append(index[key])
        return columns

    def _by_entry(
        self, rows: Sequence[Any], parameters: Data
    ) -> tuple[list[Any], list[int] | None]:
        try:
            first, last, first_value, last_value = (
                item.as_int("entry_descriptor") for item in parameters.as_items("entry", 4)
            )
        except Exception as exc:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, str(exc)) from exc
        held = list(rows)
        last = len(held) if last == 0 else min(last, len(held))
        first = max(first, 1)
        chosen = held[first - 1 : last]
        width = len(self.capture_objects)
        last_value = width if last_value == 0 else last_value
        first_value = max(first_value, 1)
        if first_value > last_value or last_value > width:
            raise _scope(f"selected values {first_value}-{last_value} of {width} columns")
        if first_value == 1 and last_value == width:
            return chosen, None
        return chosen, list(range(first_value - 1, last_value))


def _capture_object(definition: CaptureObject) -> Data:
    class_id, name, attribute, data_index = definition
    return Data.structure(
        Data.long_unsigned(class_id),
        Data.octet_string(name.to_bytes()),
        Data.integer(attribute),
        Data.long_unsigned(data_index),
    )


# ---------------------------------------------------------------------- the meter's profiles

#: Load profile columns after the clock [2]_ (registers, average voltage, demand, status).
LOAD_PROFILE_COLUMNS: tuple[CaptureObject, ...] = (
    (8, CLOCK, 2, 0),
    (3, ObisCode(1, 0, 1, 8, 0), 2, 0),
    (3, ObisCode(1, 0, 2, 8, 0), 2, 0),
    (3, ObisCode(1, 0, 3, 8, 0), 2, 0),
    (3, ObisCode(1, 0, 4, 8, 0), 2, 0),
    (3, ObisCode(1, 0, 12, 27, 0), 2, 0),
    (3, ObisCode(1, 0, 1, 5, 0), 2, 0),
    (1, PROFILE_STATUS, 2, 0),
)


def _u32(value: int) -> Data:
    if value <= 0xFFFFFFFF:
        return Data(DataType.DOUBLE_LONG_UNSIGNED, value)
    return Data(DataType.LONG64_UNSIGNED, value)


def encode_load_profile_row(entry: ProfileEntry) -> tuple[Data, ...]:
    """One load-profile row: the interval's end, four energies [Wh, varh], the average
    voltage [0.1 V] and demand [W], and the status word."""
    return (
        Data(DataType.OCTET_STRING, encode_date_time(from_epoch(entry.interval_end))),
        _u32(entry.a_plus_wh),
        _u32(entry.a_minus_wh),
        _u32(entry.r_plus_varh),
        _u32(entry.r_minus_varh),
        Data(DataType.LONG_UNSIGNED, min(round(entry.average_voltage_v * 10), 0xFFFF)),
        _u32(round(entry.demand_w)),
        Data(DataType.LONG_UNSIGNED, entry.status & 0xFFFF),
    )


def load_profile(meter: Meter) -> ProfileGeneric:
    return ProfileGeneric(
        ObisCode(1, 0, 99, 1, 0),
        capture_objects=LOAD_PROFILE_COLUMNS,
        rows=lambda m: m.load_profile.held(),
        row_time=lambda entry: entry.interval_end,
        encode_row=encode_load_profile_row,
        capture_period_s=meter.config.capture_period_s,
        capacity=lambda m: m.load_profile.capacity,
    )


#: Event code object of each log (IDIS numbers 0.0.96.11.e.255 after the log's E group;
#: the power-failure log, 1.0.99.97.0.255 in IDIS, uses 0.0.96.11.3.255).
EVENT_CODE_OBJECTS: dict[LogKind, ObisCode] = {
    LogKind.STANDARD: ObisCode(0, 0, 96, 11, 0),
    LogKind.FRAUD: ObisCode(0, 0, 96, 11, 1),
    LogKind.DISCONNECTOR: ObisCode(0, 0, 96, 11, 2),
    LogKind.POWER_FAILURE: ObisCode(0, 0, 96, 11, 3),
    LogKind.POWER_QUALITY: ObisCode(0, 0, 96, 11, 4),
    LogKind.FIRMWARE: ObisCode(0, 0, 96, 11, 5),
    LogKind.TOKEN: ObisCode(0, 0, 96, 11, 6),
    LogKind.EXPORT_CONTROL: ObisCode(0, 0, 96, 11, 7),
}


def encode_event_row(event: Event) -> tuple[Data, ...]:
    """One event-log row: the time of the event and its code."""
    return (
        Data(DataType.OCTET_STRING, encode_date_time(from_epoch(event.at))),
        Data(DataType.UNSIGNED, event.code),
    )


def event_log(kind: LogKind) -> ProfileGeneric:
    columns: tuple[CaptureObject, ...] = (
        (8, CLOCK, 2, 0),
        (1, EVENT_CODE_OBJECTS[kind], 2, 0),
    )
    return ProfileGeneric(
        kind.obis,
        capture_objects=columns,
        rows=lambda m: m.event_logs[kind].held(),
        row_time=lambda event: event.at,
        encode_row=encode_event_row,
        capture_period_s=0,
        capacity=lambda m: m.event_logs[kind].capacity,
    )
