"""Errors of meter data management, each a subclass of the core hierarchy."""

from __future__ import annotations

from meterstack.core.errors import CommandRefusedError, InvalidInputError


class UnknownMeterError(InvalidInputError):
    """A reading names a meter that the store does not know."""

    hint = "register the meter first (meterstack mdm add-meter ID), then import again"


class UnitError(InvalidInputError):
    """A quantity comes in a unit (or ESPI uom code) that meterstack does not know."""

    hint = "use one of the units listed in docs/mdm.md, or convert the file first"


class FileFormatError(InvalidInputError):
    """A file to import is not well formed (XML, CSV): nothing of it was written."""

    hint = "fix the file at the place named above and import it again"


class NothingToEditError(InvalidInputError):
    """An edit names an interval that has no validated value yet."""

    hint = "validate the interval first (meterstack vee run --from ... --to ...), then edit"


class EstimationRefusedError(CommandRefusedError):
    """An estimate was asked for where the rules forbid one (across an outage, say)."""

    hint = "use the zero (outage) substitution or a like-day estimate, or edit by hand"


class MonthNotClosedError(CommandRefusedError):
    """A month was asked to be archived before it is closed."""

    hint = "archive a month only after it has ended and its late reads are in"
