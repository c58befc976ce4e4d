"""Errors of the tariff library: all are :class:`~meterstack.core.errors.InvalidInputError`."""

from __future__ import annotations

from meterstack.core.errors import InvalidInputError

__all__ = ["LoadDataError", "TariffError", "UnsupportedByPySAMError"]


class TariffError(InvalidInputError):
    """A tariff definition is malformed or inconsistent; ``field`` is the dotted place in it."""

    hint = "fix the tariff file at the place named above (see docs/tariff.md for the format)"


class LoadDataError(InvalidInputError):
    """Interval data handed to the rating engine or read from a file is not usable."""

    hint = "fix the load data at the line or index named above; nothing was billed"


class UnsupportedByPySAMError(TariffError):
    """A tariff feature that PySAM's Utilityrate5 cannot represent (named in ``reason``)."""

    hint = "rate this tariff without --pysam-compatible"
