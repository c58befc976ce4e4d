"""Identifiers: meter serial numbers and other names that cross system boundaries."""

from __future__ import annotations

import re

from meterstack.core.errors import InvalidInputError

_SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def validate_serial(serial: str, field: str = "serial") -> str:
    """Return ``serial`` if it is a valid meter serial number, else raise.

    A serial is 1-32 characters of letters, digits, ``_``, ``.`` and ``-``, starting with a
    letter or digit, so it can be used unescaped in MQTT topics, file names and URLs.
    """
    if not isinstance(serial, str) or _SERIAL_PATTERN.match(serial) is None:
        raise InvalidInputError(
            field, serial, "1-32 letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return serial
