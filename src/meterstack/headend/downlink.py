"""Sending to meters: seal with the head-end's system title and publish on the right path.

Each head-end process has its own 8-byte system title (``MSHE`` + a 4-byte instance
number) and its own persisted invocation counter, so two processes never produce the same
nonce under a meter's key. A frame goes out on the path the meter was last heard on (its
cellular or its LoRa/NB-IoT side), or on any other path that is up.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.errors import InvalidInputError
from meterstack.core.time import Clock
from meterstack.headend.store import HeadEndStore, MeterRecord
from meterstack.link import topics
from meterstack.link.counters import InvocationCounter
from meterstack.link.envelope import seal
from meterstack.link.errors import LinkDownError
from meterstack.link.schema import Body, Message, MessageKind, encode
from meterstack.link.transports.mqtt import MqttTransport


def headend_title(instance: int) -> bytes:
    """The system title of head-end process ``instance`` (0 to 2**32 - 1)."""
    if not 0 <= instance < 2**32:
        raise InvalidInputError("instance", instance, "a 32-bit instance number")
    return b"MSHE" + instance.to_bytes(4, "big")


class Downlink:
    """Seals and publishes head-end messages to meters."""

    def __init__(
        self,
        store: HeadEndStore,
        paths: Mapping[str, MqttTransport],
        *,
        instance: int,
        clock: Clock,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        if not paths:
            raise InvalidInputError("paths", paths, "at least one broker path")
        self.store = store
        self.paths = dict(paths)
        self.instance = instance
        self.system_title = headend_title(instance)
        self.clock = clock
        self.signing_key = signing_key
        self.counter = InvocationCounter(store, f"ic.{self.system_title.hex()}", reserve=1024)
        self._ack_seq = itertools.count(1)

    def seal(self, record: MeterRecord, kind: MessageKind, seq: int, body: Body) -> bytes:
        message = Message(
            kind,
            record.serial,
            self.instance,
            seq,
            round(self.clock.now().timestamp() * 1000),
            body,
        )
        return seal(
            encode(message),
            record.ring.current,
            system_title=self.system_title,
            invocation_counter=self.counter.take(),
            signing_key=self.signing_key,
        )

    async def send(
        self,
        record: MeterRecord,
        kind: MessageKind,
        body: Body,
        *,
        seq: int | None = None,
        path: str | None = None,
    ) -> str:
        """Seal and publish; return the path used.

        Raises
        ------
        LinkDownError
            No path took the frame.
        """
        frame = self.seal(record, kind, next(self._ack_seq) if seq is None else seq, body)
        topic = topics.downlink(record.serial, kind)
        preferred = path or record.last_path
        order = sorted(self.paths, key=lambda name: name != preferred)
        errors = []
        for name in order:
            try:
                return await self.paths[name].publish(topic, frame)
            except LinkDownError as exc:
                errors.append(str(exc))
        raise LinkDownError("; ".join(errors))
