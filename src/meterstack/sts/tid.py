"""The token identifier (TID): minutes since the base date, in the utility's local time.

Every class 0 and most class 2 tokens carry a 24-bit TID, the whole minutes from the base
date (00:00 on 1 January of 1993, 2014 or 2035, local time) to the moment of issue [1]. The
meter keeps the TIDs it has accepted, so a token works once. 24 bits run out after
16 777 215 minutes: the 1993 count ended on 2024-11-24, which is why meters move to the
2014 base date through key change tokens with the rollover bit set (the meter then clears
its TID memory) [1, 2].

The key expiry number (KEN, 8 bits) of a decoder key is compared with the TID's 8 most
significant bits: a token whose ``tid >> 16`` exceeds the KEN is refused as "key expired"
[1].

References
----------
.. [1] IEC 62055-41:2018, the TID data element and the key expiry number.
.. [2] STS Association, "TID rollover" (2024 change of base date to 2014-01-01).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo

from meterstack.core.time import ensure_utc, zone
from meterstack.sts.errors import StsInputError

__all__ = [
    "MAX_TID",
    "BaseDate",
    "key_expired",
    "local_time_of_tid",
    "tid_at",
    "tid_from_local",
]

#: The largest TID: 2**24 - 1 minutes after the base date.
MAX_TID = (1 << 24) - 1


class BaseDate(IntEnum):
    """The base dates of IEC 62055-41 (the year of 00:00 local time on 1 January)."""

    Y1993 = 1993
    Y2014 = 2014
    Y2035 = 2035

    @property
    def start(self) -> datetime:
        """00:00 on 1 January of the base year, local time (naive)."""
        return datetime(int(self), 1, 1)

    @property
    def code(self) -> str:
        """The two-digit code used in decoder key generation (``"93"``, ``"14"``, ``"35"``)."""
        return f"{int(self) % 100:02d}"

    def next(self) -> BaseDate:
        """The base date a TID rollover moves to."""
        members = list(BaseDate)
        index = members.index(self)
        if index + 1 == len(members):
            raise StsInputError("base_date", int(self), "no later base date is defined")
        return members[index + 1]

    @classmethod
    def parse(cls, value: int | str, field: str = "base_date") -> BaseDate:
        """``1993``, ``"1993"``, ``"1993-01-01"`` or ``"93"`` -> :class:`BaseDate`."""
        text = str(value).strip()
        if len(text) == 10 and text.endswith("-01-01"):
            text = text[:4]
        if len(text) == 2 and text.isdigit():
            text = ("19" if text == "93" else "20") + text
        try:
            return cls(int(text))
        except ValueError:
            raise StsInputError(field, value, "the base date is 1993, 2014 or 2035") from None


def tid_from_local(local_time: datetime, base_date: BaseDate) -> int:
    """TID of a token issued at ``local_time`` (the utility's wall-clock time).

    Parameters
    ----------
    local_time : datetime
        Naive local time of issue; seconds are dropped (whole minutes).
    base_date : BaseDate
        The meter's base date.

    Returns
    -------
    tid : int
        ``floor((local_time - base_date) / 1 min)``, 0 to :data:`MAX_TID`. [min]
    """
    if not isinstance(local_time, datetime) or local_time.tzinfo is not None:
        raise StsInputError("time", local_time, "give the local time of issue without a zone")
    minutes = (local_time - base_date.start) // timedelta(minutes=1)
    if not 0 <= minutes <= MAX_TID:
        first, last = base_date.start, local_time_of_tid(MAX_TID, base_date)
        raise StsInputError(
            "time",
            local_time.isoformat(),
            f"outside the TID range of base date {int(base_date)} ({first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d %H:%M}); a later base date needs a key change with rollover",
        )
    return minutes


def tid_at(at: datetime, timezone: str | ZoneInfo, base_date: BaseDate) -> int:
    """TID of a token issued at the aware instant ``at`` in the utility's ``timezone``."""
    tz = zone(timezone) if isinstance(timezone, str) else timezone
    local = ensure_utc(at, "time").astimezone(tz).replace(tzinfo=None)
    return tid_from_local(local, base_date)


def local_time_of_tid(tid: int, base_date: BaseDate) -> datetime:
    """The local time of issue (naive, whole minutes) that ``tid`` stands for."""
    if isinstance(tid, bool) or not isinstance(tid, int) or not 0 <= tid <= MAX_TID:
        raise StsInputError("tid", tid, f"a TID is 0 to {MAX_TID}")
    return base_date.start + timedelta(minutes=tid)


def key_expired(tid: int, key_expiry_number: int) -> bool:
    """Whether a token with ``tid`` is past the key expiry number (``tid >> 16 > KEN``)."""
    return (tid >> 16) > key_expiry_number
