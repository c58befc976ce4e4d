"""Errors of the wire protocols: every refusal names the layer, the place and the value."""

from __future__ import annotations

from meterstack.core.errors import InvalidInputError, MeterstackError


class ProtocolError(InvalidInputError):
    """Bytes from the wire could not be decoded; ``field`` names the element at fault."""

    hint = "the peer sent a malformed message: check that it speaks the same protocol version"


class SecurityError(MeterstackError):
    """A protected message failed its check: wrong key, bad tag or a replayed counter."""

    hint = "check the keys and system titles on both ends, and that counters only increase"


class AssociationError(MeterstackError):
    """The DLMS application association was refused or is not open."""

    hint = "check the client address, the authentication mechanism and the password or keys"


class DlmsServiceError(MeterstackError):
    """The server answered a request with an error result (data-access or action result)."""

    def __init__(self, service: str, result: int, name: str) -> None:
        self.service = service
        self.result = result
        self.name = name
        super().__init__(f"{service} refused by the meter: {name} ({result})")

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return (type(self), (self.service, self.result, self.name))
