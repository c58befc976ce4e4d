"""The like-day order: which earlier days stand in for a day being substituted.

meterstack follows the "nearest equivalent day" (like day) substitution of the Western
Australian Electricity Industry (Metering) Code 2012, Appendix 3, Substitution Method 14,
which carries over the National Electricity Market's Type 14 like-day substitution of the
AEMO Metrology Procedure Part B [1]_ [2]_. Monday, Friday, Saturday and Sunday stand only
for themselves; Tuesday, Wednesday and Thursday are alike. Candidates, in order:

============  ===========================================================================
day           like days, nearest first (days back)
============  ===========================================================================
Monday        Monday of the week before (7)
Tuesday       Tuesday (7), Wednesday (6), Thursday (5) of the week before
Wednesday     Wednesday of the week before (7), Tuesday of this week (1), Thursday (6) and
              Tuesday (8) of the week before
Thursday      Thursday of the week before (7), Wednesday (1) and Tuesday (2) of this week,
              Wednesday (8) and Tuesday (9) of the week before
Friday        Friday of the week before (7)
Saturday      Saturday of the week before (7)
Sunday        Sunday of the week before (7)
public        the Sunday before it, then earlier Sundays (a public holiday is used like a
holiday       Sunday, and never stands in for an ordinary day)
============  ===========================================================================

The pattern is repeated one week further back, up to ``like_day_weeks`` weeks. Only days
before the one being substituted are used, and a like day is taken whole: the first
candidate with complete actual data for the whole day (every interval present, valid, not
an outage) gives all the substituted intervals of that day, slot by local wall-clock slot
(:func:`meterstack.mdm.vee.estimation.like_day_sources`).
(The Wednesday and Tuesday rows are read from the Method 14 table of [1]_; where that
table's layout is ambiguous meterstack takes the nearest day first.)

References
----------
.. [1] Electricity Industry (Metering) Code 2012 (Western Australia), Appendix 3 "Data
   Substitution and Estimation", Substitution Method 14 "Nearest Equivalent Day or Like Day".
.. [2] AEMO, Metrology Procedure: Part B, substitution Type 14 "Like Day".
"""

from __future__ import annotations

_BASE: dict[int, tuple[int, ...]] = {
    0: (7,),
    1: (7, 6, 5),
    2: (7, 1, 6, 8),
    3: (7, 1, 2, 8, 9),
    4: (7,),
    5: (7,),
    6: (7,),
}


def like_day_offsets(weekday: int, holiday: bool, weeks: int) -> tuple[int, ...]:
    """Days back to try, in order, for a day of ``weekday`` (Monday 0)."""
    if holiday:
        first = weekday + 1  # the Sunday before (Monday -> 1 ... Sunday -> 7)
        return tuple(first + 7 * k for k in range(weeks))
    base = _BASE[weekday]
    out: list[int] = []
    for k in range(weeks):
        for offset in base:
            candidate = offset + 7 * k
            if candidate not in out:
                out.append(candidate)
    return tuple(out)
