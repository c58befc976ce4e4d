"""Quality of a validated reading: NEM12-like quality flags, the checks that failed, and
how a substitute was made.

Every validated interval carries three things:

* a :class:`Quality` flag, the set of the Australian NEM12 file format [1]: ``A`` actual,
  ``S`` substituted (will be replaced when the actual arrives), ``F`` final substitute
  (no actual will come), ``E`` estimated (forward estimate past the last actual read),
  ``N`` null (no value could be made);
* a bit set of :class:`Check` naming every validation that failed or was raised;
* a :class:`Method` saying how a substitute was made.

References
----------
.. [1] AEMO, Meter Data File Format Specification NEM12 & NEM13, section 300 record
   (QualityMethod: A, E, F, N, S, V) and Appendix C (quality flags).
.. [2] NAESB REQ.21 ESPI, QualityOfReading: 0 valid, 7 manually edited, 8 estimated using
   reference day, 9 estimated using linear interpolation, 10 questionable, 11 derived,
   12 projected (forecast), 17 validated.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag, StrEnum


class Quality(StrEnum):
    """NEM12 quality flag of one validated interval [1]."""

    ACTUAL = "A"
    SUBSTITUTED = "S"
    FINAL_SUBSTITUTE = "F"
    ESTIMATED = "E"
    NULL = "N"


class Method(IntEnum):
    """How a validated value was obtained."""

    ACTUAL = 0
    LINEAR_INTERPOLATION = 1
    LIKE_DAY = 2
    ZERO_OUTAGE = 3
    EDIT = 4
    NONE = 9  # null: nothing could be made


class Check(IntFlag):
    """Validation checks; a set bit means the check failed (or the meter raised the flag)."""

    GAP = 1 << 0
    TIME_TOLERANCE = 1 << 1
    HIGH_LIMIT = 1 << 2
    LOW_LIMIT = 1 << 3
    SPIKE = 1 << 4
    ZERO_RUN = 1 << 5
    FLAT_LINE = 1 << 6
    REVERSE_FLOW = 1 << 7
    SUM_CHECK = 1 << 8
    POWER_FAILURE = 1 << 9
    CLOCK_CHANGE = 1 << 10
    TAMPER = 1 << 11
    DATA_NOT_VALID = 1 << 12
    OUTAGE = 1 << 13


#: Failures that make the reading unusable: it is replaced by a substitute.
SUBSTITUTE_ON = (
    Check.GAP
    | Check.TIME_TOLERANCE
    | Check.HIGH_LIMIT
    | Check.LOW_LIMIT
    | Check.SPIKE
    | Check.CLOCK_CHANGE
    | Check.DATA_NOT_VALID
)
#: Failures that keep the actual value but mark it for review.
REVIEW_ON = Check.ZERO_RUN | Check.FLAT_LINE | Check.REVERSE_FLOW | Check.SUM_CHECK | Check.TAMPER


def espi_quality(quality: Quality, method: Method, checks: int) -> int:
    """The ESPI QualityOfReading code [2] for a validated reading."""
    if method == Method.EDIT:
        return 7
    if method == Method.LIKE_DAY:
        return 12 if quality == Quality.ESTIMATED else 8
    if method == Method.LINEAR_INTERPOLATION:
        return 9
    if method == Method.ZERO_OUTAGE:
        return 11
    if checks & REVIEW_ON:
        return 10
    return 17
