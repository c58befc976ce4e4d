"""The MQTT topic layout, one branch per meter.

::

    meterstack/v1/<serial>/up/<kind>      meter -> head-end: alarm, response, registers,
                                          events, profile, pq
    meterstack/v1/<serial>/down/<kind>    head-end -> meter: command, ack
    meterstack/v1/<serial>/health/<path>  health probes (QoS 1, nobody subscribes: the
                                          broker's PUBACK is the answer)

Head-end ingest workers share one MQTT 5 shared subscription per broker,
``$share/<group>/meterstack/v1/+/up/+``, so N workers split the stream. A serial is letters,
digits, ``_ . -`` (:func:`meterstack.core.ids.validate_serial`), never a wildcard.
"""

from __future__ import annotations

import functools

from meterstack.core.ids import validate_serial
from meterstack.link.errors import SchemaError
from meterstack.link.schema import KIND_BY_TOPIC_NAME, MessageKind

ROOT = "meterstack/v1"


def uplink(serial: str, kind: MessageKind) -> str:
    return f"{ROOT}/{serial}/up/{kind.topic_name}"


def downlink(serial: str, kind: MessageKind) -> str:
    return f"{ROOT}/{serial}/down/{kind.topic_name}"


def downlink_filter(serial: str) -> str:
    """What a meter subscribes to."""
    return f"{ROOT}/{validate_serial(serial)}/down/+"


def health(serial_or_client: str, path: str) -> str:
    return f"{ROOT}/{serial_or_client}/health/{path}"


def shared_uplink_filter(group: str, kinds: tuple[MessageKind, ...] | None = None) -> list[str]:
    """The head-end's shared subscriptions: every uplink kind, or only ``kinds``."""
    if kinds is None:
        return [f"$share/{group}/{ROOT}/+/up/+"]
    return [f"$share/{group}/{ROOT}/+/up/{kind.topic_name}" for kind in kinds]


def uplink_filter(kinds: tuple[MessageKind, ...] | None = None) -> list[str]:
    """Plain (not shared) subscriptions, for brokers without MQTT 5 (amqtt)."""
    if kinds is None:
        return [f"{ROOT}/+/up/+"]
    return [f"{ROOT}/+/up/{kind.topic_name}" for kind in kinds]


@functools.lru_cache(maxsize=1 << 17)
def parse(topic: str) -> tuple[str, str, MessageKind]:
    """``(serial, direction, kind)`` of a message topic.

    Cached: a head-end parses the same few topics per meter over and over (a refused topic
    raises every time and is not cached).

    Raises
    ------
    SchemaError
        Not a topic of this layout.
    """
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] not in ("up", "down"):
        raise SchemaError("topic", topic, f"expected {ROOT}/<serial>/up|down/<kind>")
    kind = KIND_BY_TOPIC_NAME.get(parts[4])
    if kind is None or kind.uplink != (parts[3] == "up"):
        raise SchemaError("topic", topic, f"unknown {parts[3]}link kind {parts[4]!r}")
    try:
        validate_serial(parts[2])
    except ValueError as exc:
        raise SchemaError("topic", topic, "the serial level is not a valid serial") from exc
    return parts[2], parts[3], kind
