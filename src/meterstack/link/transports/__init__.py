"""Transports of the link: MQTT (aiomqtt for meters, gmqtt for the head-end), and failover.

The caller constructs a transport (which broker, which client id) and hands it to a
communication module or the head-end; nothing in the link opens a connection on its own.
"""

from meterstack.link.transports.base import MessageHandler, PathHealth, Transport
from meterstack.link.transports.failover import FailoverPolicy, FailoverTransport
from meterstack.link.transports.gmqtt import GmqttTransport
from meterstack.link.transports.mqtt import MqttTransport

__all__ = [
    "FailoverPolicy",
    "FailoverTransport",
    "GmqttTransport",
    "MessageHandler",
    "MqttTransport",
    "PathHealth",
    "Transport",
]
