"""DLMS/COSEM (IEC 62056): the virtual meter's server and the head-end client.

Layers, each testable alone with bytes in and bytes out: :mod:`.axdr` (data encoding),
:mod:`.wrapper` (the IEC 62056-47 TCP wrapper), :mod:`.acse` (association),
:mod:`.security` (suites 0 and 1), :mod:`.apdu` (GET/SET/ACTION), :mod:`.cosem` (interface
classes), :mod:`.server`, :mod:`.push` (DataNotifications to push destinations) and
:mod:`.client`.
"""

from meterstack.protocols.dlms.acse import ApplicationContext, Mechanism
from meterstack.protocols.dlms.axdr import Data, DataType, decode_data, encode_data
from meterstack.protocols.dlms.push import Pusher, PushResult
from meterstack.protocols.dlms.security import SecurityKeys, SecuritySuite
from meterstack.protocols.dlms.server import (
    Association,
    ClientPolicy,
    DlmsSecurity,
    DlmsServer,
    LogicalDevice,
    default_clients,
)

__all__ = [
    "ApplicationContext",
    "Association",
    "ClientPolicy",
    "Data",
    "DataType",
    "DlmsSecurity",
    "DlmsServer",
    "LogicalDevice",
    "Mechanism",
    "PushResult",
    "Pusher",
    "SecurityKeys",
    "SecuritySuite",
    "decode_data",
    "default_clients",
    "encode_data",
]
