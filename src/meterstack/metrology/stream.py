"""From waveforms to what a meter consumes: one measurement per window, warning changes.

A meter's measuring element hands its logic the mean values over a span every few
hundred milliseconds. :func:`window_measurements` turns an analysis into exactly that, one
:class:`WindowMeasurement` per 10/12-cycle window, time-stamped at the window's end, with
the fields of :class:`meterstack.meter.Measurement` (the meter package builds those;
this package imports nothing above ``core``). :func:`warning_changes` turns the
IEEE 519 / unbalance warnings of the 150/180-cycle values into start and end transitions
per warning group, which the meter logs as power-quality events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from meterstack.core.time import from_epoch
from meterstack.metrology.analysis import Analysis
from meterstack.metrology.intervals import aggregate
from meterstack.metrology.limits import LimitSettings, LoadWarning, assess

__all__ = [
    "WARNING_GROUPS",
    "WarningChange",
    "WarningGroup",
    "WindowMeasurement",
    "warning_changes",
    "window_measurements",
]

WarningGroup = Literal["voltage_harmonics", "current_harmonics", "unbalance", "overload"]

#: Which warning kinds raise which meter-side warning group.
WARNING_GROUPS: dict[str, WarningGroup] = {
    "voltage_harmonic": "voltage_harmonics",
    "voltage_thd": "voltage_harmonics",
    "current_harmonic": "current_harmonics",
    "current_tdd": "current_harmonics",
    "unbalance": "unbalance",
    "overload": "overload",
}


@dataclass(frozen=True, slots=True)
class WindowMeasurement:
    """The values of one window, shaped like ``meterstack.meter.Measurement``.

    ``timestamp`` is the window's end (UTC); per-phase tuples hold RMS V [V], RMS I [A],
    mean P [W] and Q1 [var]; ``frequency_hz`` is N / window duration [Hz];
    ``neutral_current_a`` is the RMS of -(i_a + i_b + i_c) for three phases [A].
    """

    timestamp: datetime
    voltage_v: tuple[float, ...]
    current_a: tuple[float, ...]
    active_power_w: tuple[float, ...]
    reactive_power_var: tuple[float, ...]
    frequency_hz: float
    neutral_current_a: float | None


def window_measurements(
    analysis: Analysis, no_load_current_a: float = 0.0
) -> list[WindowMeasurement]:
    """One measurement per window, in time order.

    Parameters
    ----------
    analysis : Analysis
        The analysed record.
    no_load_current_a : float
        Anti-creep threshold: a phase whose RMS current is below it reports P = Q1 = 0,
        so a meter with voltage and no load registers nothing (IEC 62053-21 8.3.2). [A]
    """
    phases = analysis.record.phases
    windows = analysis.windows
    vrms = analysis.vrms
    if analysis.power is not None:
        irms = analysis.power.i
        idle = irms < no_load_current_a
        p = np.where(idle, 0.0, analysis.power.p)
        q = np.where(idle, 0.0, analysis.power.q1)
    else:
        irms = p = q = np.zeros((phases, windows))
    neutral = None
    if analysis.total is not None:
        # I_e^2 = (sum I^2 + I_n^2) / 3, so I_n follows from I_e and the phase currents.
        neutral = np.sqrt(np.maximum(3.0 * analysis.total.ie**2 - np.sum(irms**2, axis=0), 0.0))
    frequency = analysis.window_frequency_hz
    ends = analysis.window_end
    columns = zip(
        ends.tolist(),
        vrms.T.tolist(),
        irms.T.tolist(),
        p.T.tolist(),
        q.T.tolist(),
        frequency.tolist(),
        (neutral.tolist() if neutral is not None else [None] * windows),
        strict=True,
    )
    return [
        WindowMeasurement(
            timestamp=from_epoch(end),
            voltage_v=tuple(v),
            current_a=tuple(i),
            active_power_w=tuple(pw),
            reactive_power_var=tuple(qv),
            frequency_hz=f,
            neutral_current_a=n,
        )
        for end, v, i, pw, qv, f, n in columns
    ]


@dataclass(frozen=True, slots=True)
class WarningChange:
    """A warning group starts (``active``) or ends at ``at`` (UTC)."""

    at: datetime
    group: WarningGroup
    active: bool
    detail: str


def warning_changes(
    analysis: Analysis, settings: LimitSettings
) -> tuple[list[WarningChange], list[LoadWarning]]:
    """Warnings of the 150/180-cycle values and the transitions they make per group.

    Parameters
    ----------
    analysis : Analysis
        The analysed record.
    settings : LimitSettings
        Limits; IEEE 519-2022 allows 1.5 times the limits for these very-short-time
        values, so ``settings.factor = 1.5`` follows the standard's statistics.

    Returns
    -------
    changes : list of WarningChange
        Start and end of each warning group, in time order. A group still active at the
        end of the record has no end.
    warnings : list of LoadWarning
        Every value above its limit.
    """
    blocks = aggregate(analysis, "150/180-cycle")
    found = assess(
        blocks.end_epoch,
        settings,
        voltage_harmonics_v=blocks.harmonics_v,
        current_harmonics_a=blocks.harmonics_i,
        unbalance_pct=blocks.unbalance_iec_pct,
        current_rms_a=blocks.irms,
    )
    first: dict[tuple[WarningGroup, float], LoadWarning] = {}
    for warning in found:
        first.setdefault((WARNING_GROUPS[warning.kind], warning.at), warning)
    changes: list[WarningChange] = []
    for group in ("voltage_harmonics", "current_harmonics", "unbalance", "overload"):
        active = False
        for at in blocks.end_epoch.tolist():
            hit = first.get((group, at))
            if (hit is not None) != active:
                active = hit is not None
                detail = hit.detail if hit is not None else "back within limits"
                changes.append(WarningChange(from_epoch(at), group, active, detail))
    changes.sort(key=lambda change: (change.at, change.group))
    return changes, found
