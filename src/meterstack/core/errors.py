"""The one error hierarchy of meterstack.

Every error raised on bad input names what is wrong: the field, the value, and why. Callers
catch :class:`MeterstackError` for anything of ours, or a subclass for one kind of failure.
"""

from __future__ import annotations


class MeterstackError(Exception):
    """Base of every error meterstack raises on purpose.

    ``hint`` says what the user can do next; the CLI prints it under the message.
    """

    hint: str = ""


class InvalidInputError(MeterstackError, ValueError):
    """A value from outside was rejected; nothing was changed.

    Attributes
    ----------
    field : str
        Dotted path of the offending field, e.g. ``"voltage_v[2]"``.
    value : object
        The rejected value as it was given.
    reason : str
        Why it was rejected, in words a user can act on.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, object, str]]:
        # Errors cross process boundaries (worker pools): pickle by constructor arguments.
        return (type(self), (self.field, self.value, self.reason))


class MeasurementError(InvalidInputError):
    """A measurement handed to the meter is not physically possible or not well formed."""


class ClockError(InvalidInputError):
    """A timestamp is naive, or earlier than a time the receiver has already seen."""


class ConfigError(MeterstackError):
    """A configuration file or value could not be loaded or is inconsistent."""

    hint = "fix the value named above in the TOML file or the METERSTACK_* variable"


class StoreError(MeterstackError):
    """A persistent store could not be read or written."""

    hint = "check that the data directory exists, is writable and has free space"


class CorruptStateError(StoreError):
    """Persisted state exists but cannot be decoded into a valid object."""


class CommandRefusedError(MeterstackError):
    """A well-formed command is not allowed in the receiver's current state.

    Attributes
    ----------
    command : str
        The command that was refused, e.g. ``"manual_reconnect"``.
    reason : str
        Why, in words a user can act on.
    """

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command} refused: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.command, self.reason))
