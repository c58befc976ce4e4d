"""The COSEM object model: interface classes bound to a :class:`~meterstack.meter.Meter`.

Every COSEM object has a class id, a version and a logical name (attribute 1, the OBIS
code as a 6-octet string); the other attributes and the methods are those of its interface
class in the Blue Book. Objects here read the meter model directly and send commands to it
with the meter's own time (:class:`MeterBinding`), so a value read over DLMS is the value
the model holds at that instant.

References
----------
.. [1] IEC 62056-6-2:2017 (DLMS UA Blue Book ed. 12), 4.1 "Basic principles", 4.5 the
   interface classes, 4.7 "Relation to OBIS".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from meterstack.core.errors import ClockError, CommandRefusedError, InvalidInputError
from meterstack.core.obis import ObisCode
from meterstack.core.time import Clock, ensure_utc
from meterstack.meter import Meter
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult, DataAccessResult
from meterstack.protocols.dlms.axdr import Data


class CosemError(Exception):
    """Raised inside an object to answer with a data-access or action result."""

    def __init__(self, result: int, reason: str = "") -> None:
        self.result = result
        self.reason = reason
        super().__init__(f"{result}: {reason}")


def denied(reason: str = "") -> CosemError:
    return CosemError(DataAccessResult.READ_WRITE_DENIED, reason)


def unavailable(reason: str = "") -> CosemError:
    return CosemError(DataAccessResult.OBJECT_UNAVAILABLE, reason)


def type_unmatched(reason: str = "") -> CosemError:
    return CosemError(DataAccessResult.TYPE_UNMATCHED, reason)


class MeterBinding:
    """The meter behind the objects and the meter's clock.

    The meter's clock is the server's ``clock`` plus an offset that a clock SET changes
    (the virtual meter's time can be adjusted like a real one's); it never runs behind a
    time the meter has already been told.
    """

    def __init__(self, meter: Meter, clock: Clock) -> None:
        self.meter = meter
        self.clock = clock
        self.offset = timedelta(0)

    def now(self) -> datetime:
        now = self.clock.now() + self.offset
        return max(now, self.meter.now)

    def set_time(self, new_time: datetime) -> None:
        """Adjust the meter's clock to ``new_time`` (logged by the meter)."""
        new_time = ensure_utc(new_time, "time")
        at = self.now()
        self.meter.set_clock(at, new_time)
        self.offset = new_time - self.clock.now()


class AssociationView(Protocol):
    """What the association object (class 15) shows of the open association."""

    client_sap: int
    server_sap: int
    mechanism: int
    application_context: int
    authenticated: bool
    client_title: bytes | None


@dataclass
class ServiceContext:
    """What an attribute access or method invocation runs with."""

    binding: MeterBinding
    association: AssociationView
    objects: list[CosemObject] = field(default_factory=list)


class CosemObject:
    """One COSEM object: a logical name, readable attributes, writable ones, methods.

    Subclasses set ``class_id``, ``version``, ``attribute_count``, ``writable`` (the
    attribute ids a SET may change) and ``methods`` (the method ids they implement), and
    override :meth:`get`, :meth:`set` and :meth:`action`.
    """

    class_id: ClassVar[int]
    version: ClassVar[int] = 0
    attribute_count: ClassVar[int] = 1
    writable: ClassVar[frozenset[int]] = frozenset()
    methods: ClassVar[frozenset[int]] = frozenset()
    selective: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, logical_name: ObisCode) -> None:
        self.logical_name = logical_name

    def get(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        """The value of ``attribute`` (attribute 1 is the logical name)."""
        if access is not None and attribute not in self.selective:
            raise CosemError(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED, "no selective access")
        if attribute == 1:
            return Data.octet_string(self.logical_name.to_bytes())
        if not 1 <= attribute <= self.attribute_count:
            raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no attribute {attribute}")
        return self.read(attribute, ctx, access)

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        raise unavailable(f"attribute {attribute} is not implemented")

    def set(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        if not 1 <= attribute <= self.attribute_count:
            raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no attribute {attribute}")
        if attribute not in self.writable:
            raise denied(f"attribute {attribute} is read-only")
        self.write(attribute, value, ctx)

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        raise denied(f"attribute {attribute} is read-only")

    def action(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if method not in self.methods:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"method {method} not available")
        return self.invoke(method, parameters, ctx)

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"method {method} not available")


def meter_refusal(exc: Exception, *, action: bool) -> CosemError:
    """The result a meter exception becomes on the wire."""
    if isinstance(exc, CommandRefusedError):
        return CosemError(
            ActionResult.TEMPORARY_FAILURE if action else DataAccessResult.TEMPORARY_FAILURE,
            exc.reason,
        )
    if isinstance(exc, ClockError):
        return CosemError(ActionResult.OTHER_REASON if action else DataAccessResult.OTHER_REASON)
    if isinstance(exc, InvalidInputError):
        return CosemError(
            ActionResult.TYPE_UNMATCHED if action else DataAccessResult.TYPE_UNMATCHED, exc.reason
        )
    raise exc
