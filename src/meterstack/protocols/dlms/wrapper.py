"""The IEC 62056-47 TCP/UDP wrapper: eight octets in front of every APDU.

    version (2, = 0x0001) | source wPort (2) | destination wPort (2) | length (2) | APDU

The wPort is the DLMS client or server address (SAP): a client's on the way up, the
logical device's on the way down. TCP delivers a stream, so :class:`WrapperFramer`
reassembles whole frames from arbitrary chunks.

References
----------
.. [1] IEC 62056-47:2006, 5.3 "The wrapper protocol data unit" (also IEC 62056-9-7 and
   the DLMS UA Green Book ed. 8, 10.8 "The TCP-UDP/IP based communication profiles").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meterstack.protocols.errors import ProtocolError

WRAPPER_VERSION = 0x0001
HEADER = struct.Struct(">HHHH")
#: The largest APDU accepted in one frame (the length field allows 65535).
MAX_APDU = 0xFFFF


@dataclass(frozen=True, slots=True)
class WrapperFrame:
    """One wrapper PDU: addresses and the APDU it carries."""

    source: int
    destination: int
    apdu: bytes

    def encode(self) -> bytes:
        return encode_frame(self.source, self.destination, self.apdu)


def encode_frame(source: int, destination: int, apdu: bytes) -> bytes:
    """The octets of a wrapper PDU [1]_."""
    for field, value in (("source", source), ("destination", destination)):
        if not 0 <= value <= 0xFFFF:
            raise ProtocolError(f"wrapper.{field}", value, "a wPort is 0-65535")
    if len(apdu) > MAX_APDU:
        raise ProtocolError("wrapper.length", len(apdu), f"an APDU of at most {MAX_APDU} octets")
    return HEADER.pack(WRAPPER_VERSION, source, destination, len(apdu)) + apdu


def decode_frame(octets: bytes) -> WrapperFrame:
    """Decode exactly one wrapper PDU."""
    framer = WrapperFramer()
    frames = framer.feed(octets)
    if len(frames) != 1 or framer.pending:
        raise ProtocolError("wrapper", len(octets), "exactly one whole wrapper PDU")
    return frames[0]


class WrapperFramer:
    """Reassemble wrapper PDUs from a TCP byte stream.

    A wrong version field means the stream is lost (there is no way to resynchronise):
    :meth:`feed` raises and the connection should be closed.
    """

    def __init__(self, max_apdu: int = MAX_APDU) -> None:
        self._buffer = bytearray()
        self._max_apdu = max_apdu

    @property
    def pending(self) -> int:
        """Octets received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[WrapperFrame]:
        self._buffer += chunk
        frames: list[WrapperFrame] = []
        buffer = self._buffer
        while len(buffer) >= HEADER.size:
            version, source, destination, length = HEADER.unpack_from(buffer, 0)
            if version != WRAPPER_VERSION:
                raise ProtocolError("wrapper.version", version, "the wrapper version is 0x0001")
            if length > self._max_apdu:
                raise ProtocolError(
                    "wrapper.length", length, f"an APDU of at most {self._max_apdu} octets"
                )
            end = HEADER.size + length
            if len(buffer) < end:
                break
            frames.append(WrapperFrame(source, destination, bytes(buffer[HEADER.size : end])))
            del buffer[:end]
        return frames
