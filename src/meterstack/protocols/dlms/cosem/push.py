"""Interface class 40 "Push setup" and the DataNotification it sends.

Attributes: 2 ``push_object_list`` (array of {class_id, logical_name, attribute_index,
data_index}; data_index 0, the whole attribute), 3 ``send_destination_and_method``
{transport (0 TCP), destination (octet-string ``host:port``), message (0 A-XDR encoded
xDLMS APDU)}, 4 ``communication_window`` (array of {start, end} date-times; empty: at any
time), 5 ``randomisation_start_interval`` [s], 6 ``number_of_retries``, 7
``repetition_delay`` [s]. Method 1 ``push`` captures the listed attributes' values into a
DataNotification and queues it in :attr:`PushSetupObject.outbox`; the
:class:`~meterstack.protocols.dlms.push.Pusher` sends it to the destination. A listed
attribute that cannot be read at push time is sent as null-data.

The virtual meter has two push setups, as IDIS meters do: 0.0.25.9.0.255 (run by the push
action schedule) pushes the logical device name, the clock and the energy registers A+
and A-; 0.4.25.9.0.255 (run when the meter raises an alarm) pushes the logical device
name, the clock and the last event code of each event log.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.4.8 "Push setup" (class_id 40).
.. [2] IEC 62056-5-3:2017 (Green Book ed. 8), 9.3.12 "The DataNotification service":
   ``0F long-invoke-id-and-priority(4) date-time(octet-string) notification-body(Data)``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms.apdu import AccessSelection, DataAccessResult
from meterstack.protocols.dlms.axdr import (
    Data,
    DataType,
    date_time_data,
    decode_date_time,
    encode_data,
    encode_date_time,
)
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    type_unmatched,
)
from meterstack.protocols.errors import ProtocolError

DATA_NOTIFICATION = 0x0F
MAX_QUEUED = 64
#: push_object_list entry: (class_id, logical_name, attribute_index)
PushObject = tuple[int, ObisCode, int]


def data_notification(invoke_id: int, at: datetime | None, body: Data) -> bytes:
    """A DataNotification APDU [2]_."""
    stamp = b"\x00" if at is None else bytes((12,)) + encode_date_time(at)
    return bytes((DATA_NOTIFICATION,)) + invoke_id.to_bytes(4, "big") + stamp + encode_data(body)


def parse_destination(destination: bytes) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) of a TCP push destination.

    Raises
    ------
    ProtocolError
        Not ASCII ``host:port`` with a port 1-65535.
    """
    try:
        text = destination.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("destination", destination.hex(), "ASCII host:port") from None
    host, _, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ProtocolError("destination", text, "host:port with a port 1-65535")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class QueuedPush:
    """One DataNotification waiting to be sent, and when it was made."""

    at: datetime
    apdu: bytes


class PushSetupObject(CosemObject):
    class_id = 40
    version = 0
    attribute_count = 7
    writable = frozenset({2, 3, 4, 5, 6, 7})
    methods = frozenset({1})

    def __init__(
        self,
        logical_name: ObisCode,
        push_objects: list[PushObject] | None = None,
        destination: bytes = b"",
    ) -> None:
        super().__init__(logical_name)
        self.push_objects: list[PushObject] = list(push_objects or [])
        self.destination = destination
        self.windows: list[tuple[datetime, datetime]] = []
        self.randomisation_s = 0
        self.retries = 3
        self.repetition_delay_s = 30
        self.outbox: deque[QueuedPush] = deque(maxlen=MAX_QUEUED)
        self._invoke = 0

    def in_window(self, at: datetime) -> bool:
        """Whether a push may be sent at ``at`` (no window: at any time)."""
        return not self.windows or any(start <= at <= end for start, end in self.windows)

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        if attribute == 2:
            return Data.array(
                [
                    Data.structure(
                        Data.long_unsigned(cls),
                        Data.octet_string(name.to_bytes()),
                        Data.integer(index),
                        Data.long_unsigned(0),
                    )
                    for cls, name, index in self.push_objects
                ]
            )
        if attribute == 3:
            return Data.structure(Data.enum(0), Data.octet_string(self.destination), Data.enum(0))
        if attribute == 4:
            return Data.array(
                [
                    Data.structure(date_time_data(start), date_time_data(end))
                    for start, end in self.windows
                ]
            )
        if attribute == 5:
            return Data.long_unsigned(self.randomisation_s)
        if attribute == 6:
            return Data.unsigned(self.retries)
        return Data.long_unsigned(self.repetition_delay_s)

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        try:
            if attribute == 2:
                self.push_objects = self._object_list(value, ctx)
            elif attribute == 3:
                transport, destination, message = value.as_items("send_destination_and_method", 3)
                if transport.as_int("transport_service") != 0 or message.as_int("message") != 0:
                    raise type_unmatched("only TCP (0) with A-XDR xDLMS APDUs (0) is supported")
                octets = destination.as_bytes("destination")
                parse_destination(octets)
                self.destination = octets
            elif attribute == 4:
                windows = []
                for item in value.as_items("communication_window"):
                    start, end = item.as_items("window", 2)
                    window = (
                        decode_date_time(start.as_bytes("start"), "window.start"),
                        decode_date_time(end.as_bytes("end"), "window.end"),
                    )
                    if window[1] < window[0]:
                        raise type_unmatched("a window ends after it starts")
                    windows.append(window)
                self.windows = windows
            elif attribute == 5:
                self.randomisation_s = value.as_int("randomisation_start_interval")
            elif attribute == 6:
                self.retries = value.as_int("number_of_retries")
            else:
                self.repetition_delay_s = value.as_int("repetition_delay")
        except MeterstackError as exc:
            raise type_unmatched(str(exc)) from exc

    @staticmethod
    def _object_list(value: Data, ctx: ServiceContext) -> list[PushObject]:
        known = {(obj.class_id, obj.logical_name) for obj in ctx.objects}
        objects = []
        for item in value.as_items("push_object_list"):
            cls, name, index, data_index = item.as_items("push_object", 4)
            entry = (
                cls.as_int("class_id"),
                ObisCode(*name.as_bytes("logical_name")),
                index.as_int("attribute_index"),
            )
            if entry[:2] not in known:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"{entry[1]} is not here")
            if data_index.as_int("data_index") != 0:
                raise CosemError(
                    DataAccessResult.SCOPE_OF_ACCESS_VIOLATED, "only whole attributes are pushed"
                )
            objects.append(entry)
        return objects

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        self.push(ctx)
        return None

    def push(self, ctx: ServiceContext) -> QueuedPush:
        """Capture the push object list now and queue the DataNotification."""
        by_name = {(obj.class_id, obj.logical_name): obj for obj in ctx.objects}
        values = []
        for cls, name, index in self.push_objects:
            obj = by_name.get((cls, name))
            try:
                if obj is None:
                    raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"{name} is not here")
                values.append(obj.get(index, ctx, None))
            except (CosemError, MeterstackError):
                values.append(Data.null())
        self._invoke = (self._invoke + 1) & 0x00FFFFFF
        at = ctx.binding.now()
        queued = QueuedPush(
            at, data_notification(self._invoke, at, Data(DataType.STRUCTURE, tuple(values)))
        )
        self.outbox.append(queued)
        return queued
