"""Errors of the STS library: each names the field and the value it rejects."""

from __future__ import annotations

from meterstack.core.errors import InvalidInputError

__all__ = ["StsInputError", "TokenFormatError"]


class StsInputError(InvalidInputError):
    """A parameter of an STS operation (key, PAN, amount, time, field) is out of range."""

    hint = "check the value named above against IEC 62055-41's field ranges"


class TokenFormatError(StsInputError):
    """A token is not 20 decimal digits, or its number does not fit in 66 bits."""

    hint = "enter the 20 digits of the token exactly as printed (spaces and dashes are ignored)"
