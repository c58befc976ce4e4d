"""Aggregated intervals of an analysis: 150/180 cycles, 10 min and 2 h.

:func:`aggregate` applies :mod:`~meterstack.metrology.aggregation` to every quantity of an
:class:`~meterstack.metrology.analysis.Analysis`: RMS aggregation for magnitudes (RMS
values, harmonic groups, THD, unbalance), the arithmetic mean for the signed powers P and
Q1, and the flag of any flagged input (IEC 61000-4-30, 4.5 and 4.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.aggregation import (
    Aggregation,
    block_groups,
    flag_aggregate,
    mean_aggregate,
    rms_aggregate,
    ten_minute_groups,
    two_hour_groups,
)
from meterstack.metrology.analysis import Analysis
from meterstack.metrology.harmonics import thd_f
from meterstack.metrology.record import FloatArray
from meterstack.metrology.windows import BoolArray

__all__ = ["Aggregates", "Interval", "aggregate"]

Interval = Literal["150/180-cycle", "10-min", "2-h"]


@dataclass(frozen=True, slots=True, eq=False)
class Aggregates:
    """Aggregated values; per-phase arrays are (phases, intervals[, orders]).

    Attributes: ``interval``; ``end_epoch`` [s]; ``flagged``; ``vrms`` [V]; ``irms`` [A];
    ``harmonics_v`` [V]; ``harmonics_i`` [A]; ``thd_f_v`` [%]; ``unbalance_iec_pct`` [%];
    ``p_w`` [W]; ``q1_var`` [var]; ``windows`` (inputs per interval).
    """

    interval: Interval
    end_epoch: FloatArray
    flagged: BoolArray
    vrms: FloatArray
    irms: FloatArray | None
    harmonics_v: FloatArray
    harmonics_i: FloatArray | None
    thd_f_v: FloatArray
    unbalance_iec_pct: FloatArray | None
    p_w: FloatArray | None
    q1_var: FloatArray | None
    windows: FloatArray


def _groups(analysis: Analysis, interval: Interval) -> tuple[Aggregation, Aggregation | None]:
    framing = analysis.framing
    if interval == "150/180-cycle":
        return block_groups(framing.segment, analysis.window_end), None
    ten = ten_minute_groups(framing.segment, analysis.window_start)
    if interval == "10-min":
        return ten, None
    if interval == "2-h":
        return ten, two_hour_groups(ten.end_epoch)
    raise InvalidInputError("interval", interval, "one of 150/180-cycle, 10-min, 2-h")


def aggregate(analysis: Analysis, interval: Interval) -> Aggregates:
    """Aggregate every quantity of ``analysis`` over ``interval``.

    2-h values are the RMS (or mean) of the 10-min values, as IEC 61000-4-30 specifies.
    """
    first, second = _groups(analysis, interval)

    def rms(values: FloatArray) -> FloatArray:
        result = rms_aggregate(values, first)
        return rms_aggregate(result, second) if second is not None else result

    def mean(values: FloatArray) -> FloatArray:
        result = mean_aggregate(values, first)
        return mean_aggregate(result, second) if second is not None else result

    flags = flag_aggregate(analysis.flagged, first)
    sizes = first.sizes().astype(np.float64)
    if second is not None:
        flags = flag_aggregate(flags, second)
        sizes = np.add.reduceat(sizes[second.members], second.starts) if second.count else sizes
    end = second.end_epoch if second is not None else first.end_epoch

    def orders(values: FloatArray | None) -> FloatArray | None:
        if values is None:
            return None
        result: FloatArray = rms(values.transpose(0, 2, 1)).transpose(0, 2, 1)
        return result

    harmonics_v = orders(analysis.harmonics_v)
    assert harmonics_v is not None
    power = analysis.power
    return Aggregates(
        interval=interval,
        end_epoch=end,
        flagged=flags,
        vrms=rms(analysis.vrms),
        irms=rms(analysis.irms) if analysis.irms is not None else None,
        harmonics_v=harmonics_v,
        harmonics_i=orders(analysis.harmonics_i),
        thd_f_v=thd_f(harmonics_v),
        unbalance_iec_pct=(
            rms(analysis.unbalance_iec_pct) if analysis.unbalance_iec_pct is not None else None
        ),
        p_w=mean(power.p) if power is not None else None,
        q1_var=mean(power.q1) if power is not None else None,
        windows=sizes,
    )
