"""Errors of prepaid vending, each a subclass of the core hierarchy."""

from __future__ import annotations

from meterstack.core.errors import CommandRefusedError, InvalidInputError


class VendRefusedError(CommandRefusedError):
    """A well-formed vend, reversal or deposit that cannot be done now."""

    hint = "read the reason above: top up the vendor float, tender more, or ask a supervisor"


class RequestConflictError(CommandRefusedError):
    """A request id was used before for a different request."""

    hint = "use a new request id for a new request; repeat a request with its own id"


class NotFoundError(InvalidInputError):
    """A vend, account, meter or vendor that does not exist."""

    hint = "check the identifier"


class TariffNotVendableError(InvalidInputError):
    """The tariff cannot price a token in advance (time-of-use, demand blocks)."""

    hint = "sell on a single-period tariff, or use account-based smart prepay"


class PermissionRefusedError(CommandRefusedError):
    """The caller's role does not allow this action (a vendor reversing a vend, say)."""

    hint = "ask a supervisor (operator or admin) to do it"
