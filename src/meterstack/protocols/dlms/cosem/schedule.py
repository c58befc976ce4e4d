"""Interface classes 9 "Script table" and 22 "Single action schedule": what runs a push.

A single action schedule holds execution times and the script it runs then; a script
table holds scripts, each a list of actions (write an attribute, execute a method) on
other objects. The virtual meter has the push script table 0.0.10.0.108.255 (script 1
pushes 0.0.25.9.0.255, script 2 pushes 0.4.25.9.0.255) and the push action schedule
0.0.15.0.4.255, laid out as IDIS meters do.

Single action schedule: 2 ``executed_script`` {script_logical_name, script_selector}, 3
``type`` (1: one execution time, wildcards in the date allowed; 2: n times, all the same
time of day, no date wildcards; 3: as 2 with date wildcards; 4: n times, any time of day,
no date wildcards; 5: as 4 with date wildcards), 4 ``execution_time`` (array of {time
octet-string(4), date octet-string(5)}). Time and date follow the COSEM formats, 0xFF
(0xFFFF for the year) meaning "any" [1]_ 4.1.6.1; day of month 0xFE is the last day and
0xFD the second last. This meter reads execution times in UTC, the time its clock object
shows (deviation 0). Hundredths must be 0 or 0xFF.

Script table: 2 ``scripts`` (array of {script_identifier, actions: array of {service_id
(1 write attribute, 2 execute method), class_id, logical_name, index, parameter}}); method
1 ``execute(script_identifier)``.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.1.6.1 date and time formats, 4.5.3
   "Script table" (class_id 9), 4.5.7 "Single action schedule" (class_id 22).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult, DataAccessResult
from meterstack.protocols.dlms.axdr import Data
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    type_unmatched,
)

ANY = 0xFF
LAST_DAY = 0xFE
SECOND_LAST_DAY = 0xFD
#: How far ahead an execution time is searched for (four years: every 29 February). [days]
_HORIZON_DAYS = 4 * 366


@dataclass(frozen=True, slots=True)
class ExecutionTime:
    """One ``execution_time_date``; ``None`` is a wildcard."""

    hour: int | None
    minute: int | None
    second: int | None
    year: int | None
    month: int | None
    day: int | None  # 1-31, or LAST_DAY / SECOND_LAST_DAY
    weekday: int | None  # 1 Monday .. 7 Sunday

    @property
    def time_of_day(self) -> tuple[int | None, int | None, int | None]:
        return self.hour, self.minute, self.second

    @property
    def date_wildcards(self) -> bool:
        return None in (self.year, self.month, self.day) or self.day in (LAST_DAY, SECOND_LAST_DAY)

    @classmethod
    def decode(cls, time: bytes, day: bytes) -> ExecutionTime:
        """From the octet-strings; raises :class:`CosemError` (type-unmatched) if invalid."""
        if len(time) != 4 or len(day) != 5:
            raise type_unmatched("an execution time is time (4 octets) and date (5 octets)")
        hour, minute, second, hundredths = time
        year = int.from_bytes(day[:2], "big")
        month, day_of_month, weekday = day[2], day[3], day[4]
        checks = (
            hour == ANY or hour < 24,
            minute == ANY or minute < 60,
            second == ANY or second < 60,
            hundredths in (0, ANY),
            month == ANY or 1 <= month <= 12,
            day_of_month == ANY or 1 <= day_of_month <= 31 or day_of_month >= SECOND_LAST_DAY,
            weekday == ANY or 1 <= weekday <= 7,
        )
        if not all(checks):
            raise type_unmatched(f"not a valid execution time: {time.hex()} {day.hex()}")

        def value(octet: int) -> int | None:
            return None if octet == ANY else octet

        return cls(
            value(hour),
            value(minute),
            value(second),
            None if year == 0xFFFF else year,
            value(month),
            value(day_of_month),
            value(weekday),
        )

    def encode(self) -> tuple[bytes, bytes]:
        def octet(value: int | None) -> int:
            return ANY if value is None else value

        time = bytes((octet(self.hour), octet(self.minute), octet(self.second), 0))
        year = 0xFFFF if self.year is None else self.year
        day = year.to_bytes(2, "big") + bytes(
            (octet(self.month), octet(self.day), octet(self.weekday))
        )
        return time, day

    def _day_matches(self, day: date) -> bool:
        if self.year is not None and day.year != self.year:
            return False
        if self.month is not None and day.month != self.month:
            return False
        if self.weekday is not None and day.isoweekday() != self.weekday:
            return False
        if self.day is None:
            return True
        last = calendar.monthrange(day.year, day.month)[1]
        wanted = {LAST_DAY: last, SECOND_LAST_DAY: last - 1}.get(self.day, self.day)
        return day.day == wanted

    def _first_time(self, floor: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        """The earliest matching time of day strictly after ``floor`` (any, if ``None``)."""
        hours = range(24) if self.hour is None else (self.hour,)
        minutes = range(60) if self.minute is None else (self.minute,)
        seconds = range(60) if self.second is None else (self.second,)
        for h in hours:
            if floor is not None and h < floor[0]:
                continue
            for m in minutes:
                if floor is not None and (h, m) < floor[:2]:
                    continue
                for s in seconds:
                    if floor is None or (h, m, s) > floor:
                        return h, m, s
        return None

    def next_after(self, after: datetime) -> datetime | None:
        """The first instant strictly after ``after`` that this execution time names."""
        after = after.astimezone(UTC)
        floor = (after.hour, after.minute, after.second)  # whole seconds up to it are past
        day = after.date()
        for offset in range(_HORIZON_DAYS):
            candidate = day + timedelta(days=offset)
            if self.year is not None and candidate.year > self.year:
                return None
            if not self._day_matches(candidate):
                continue
            found = self._first_time(floor if offset == 0 else None)
            if found is not None:
                return datetime(candidate.year, candidate.month, candidate.day, *found, tzinfo=UTC)
        return None


class SingleActionSchedule(CosemObject):
    """Class 22: runs ``executed_script`` at each execution time."""

    class_id = 22
    attribute_count = 4
    writable = frozenset({2, 3, 4})

    def __init__(
        self,
        logical_name: ObisCode,
        script: tuple[ObisCode, int],
        times: list[ExecutionTime] | None = None,
        kind: int = 5,
    ) -> None:
        super().__init__(logical_name)
        self.script = script
        self.kind = kind
        self.times: list[ExecutionTime] = list(times or [])

    def due(self, after: datetime, until: datetime) -> bool:
        """Whether an execution time falls in ``(after, until]``."""
        for entry in self.times:
            at = entry.next_after(after)
            if at is not None and at <= until:
                return True
        return False

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            name, selector = self.script
            return Data.structure(Data.octet_string(name.to_bytes()), Data.long_unsigned(selector))
        if attribute == 3:
            return Data.enum(self.kind)
        return Data.array(
            [
                Data.structure(Data.octet_string(time), Data.octet_string(day))
                for time, day in (entry.encode() for entry in self.times)
            ]
        )

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        try:
            if attribute == 2:
                name, selector = value.as_items("executed_script", 2)
                self.script = (
                    ObisCode(*name.as_bytes("script_logical_name")),
                    selector.as_int("script_selector"),
                )
            elif attribute == 3:
                kind = value.as_int("type")
                if not 1 <= kind <= 5:
                    raise type_unmatched(f"schedule type {kind} is not 1-5")
                self._check(kind, self.times)
                self.kind = kind
            else:
                times = []
                for item in value.as_items("execution_time"):
                    time, day = item.as_items("execution_time_date", 2)
                    times.append(ExecutionTime.decode(time.as_bytes("time"), day.as_bytes("date")))
                self._check(self.kind, times)
                self.times = times
        except MeterstackError as exc:
            raise type_unmatched(str(exc)) from exc

    @staticmethod
    def _check(kind: int, times: list[ExecutionTime]) -> None:
        """The constraints of ``type`` [1]_ 4.5.7."""
        if kind == 1 and len(times) > 1:
            raise type_unmatched("type 1 holds one execution time")
        if kind in (2, 4) and any(entry.date_wildcards for entry in times):
            raise type_unmatched(f"type {kind} allows no wildcards in the date")
        if kind in (2, 3) and len({entry.time_of_day for entry in times}) > 1:
            raise type_unmatched(f"type {kind} needs the same time of day throughout")


@dataclass(frozen=True, slots=True)
class ScriptAction:
    """One action of a script: write attribute (1) or execute method (2)."""

    service: int
    class_id: int
    logical_name: ObisCode
    index: int
    parameter: Data


class ScriptTable(CosemObject):
    """Class 9: scripts run by schedules (or by a client through method 1)."""

    class_id = 9
    attribute_count = 2
    methods = frozenset({1})

    def __init__(self, logical_name: ObisCode, scripts: dict[int, list[ScriptAction]]) -> None:
        super().__init__(logical_name)
        self.scripts = scripts

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        return Data.array(
            [
                Data.structure(
                    Data.long_unsigned(identifier),
                    Data.array(
                        [
                            Data.structure(
                                Data.enum(action.service),
                                Data.long_unsigned(action.class_id),
                                Data.octet_string(action.logical_name.to_bytes()),
                                Data.integer(action.index),
                                action.parameter,
                            )
                            for action in actions
                        ]
                    ),
                )
                for identifier, actions in sorted(self.scripts.items())
            ]
        )

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if parameters is None:
            raise type_unmatched("execute takes the script identifier")
        try:
            identifier = parameters.as_int("script_identifier")
        except MeterstackError as exc:
            raise type_unmatched(str(exc)) from exc
        self.execute(identifier, ctx)
        return None

    def execute(self, identifier: int, ctx: ServiceContext) -> None:
        """Run script ``identifier``: every action, in order."""
        actions = self.scripts.get(identifier)
        if actions is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"no script {identifier}")
        by_name = {(obj.class_id, obj.logical_name): obj for obj in ctx.objects}
        for action in actions:
            target = by_name.get((action.class_id, action.logical_name))
            if target is None:
                raise CosemError(
                    DataAccessResult.OBJECT_UNDEFINED, f"{action.logical_name} is not in the meter"
                )
            if action.service == 1:
                target.set(action.index, action.parameter, ctx)
            else:
                target.action(action.index, action.parameter, ctx)
