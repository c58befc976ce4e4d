"""Run a meter from sampled waveforms.

The meter's measuring element is :mod:`meterstack.metrology`: it analyses a waveform
record window by window, and :func:`run_waveform` steps the meter with one
:class:`~meterstack.meter.measurement.Measurement` per 10/12-cycle window (mean P and Q1,
RMS V and I over the window, ending at the window's end), then reports the load warnings
(IEEE 519 harmonic limits, unbalance) as they start and end, so registers, load profile
and power-quality log come from the waveforms. Overload reaches the meter through the
measured currents (its own OVERLOAD event).
"""

from __future__ import annotations

from dataclasses import dataclass

from meterstack.meter.device import Meter
from meterstack.meter.measurement import Measurement
from meterstack.metrology.analysis import Analysis, analyze
from meterstack.metrology.energy import RangeSwitchingCt
from meterstack.metrology.limits import LimitSettings, LoadWarning
from meterstack.metrology.record import WaveformError, WaveformRecord
from meterstack.metrology.stream import WarningChange, warning_changes, window_measurements

__all__ = ["WaveformRun", "run_waveform"]

#: Fraction of the meter's starting current below which a phase books no energy.
NO_LOAD_FRACTION = 0.5


@dataclass(frozen=True, slots=True, eq=False)
class WaveformRun:
    """What one record did to a meter: the analysis, measurements stepped, warnings."""

    analysis: Analysis
    measurements: int
    changes: list[WarningChange]
    warnings: list[LoadWarning]


def run_waveform(
    meter: Meter,
    record: WaveformRecord,
    *,
    limits: LimitSettings | None = None,
    ct: RangeSwitchingCt | None = None,
    declared_voltage_v: float | None = None,
) -> WaveformRun:
    """Analyse ``record`` and step ``meter`` through it, window by window.

    Parameters
    ----------
    meter : Meter
        A meter with the record's phase count; its clock must not be past the record's
        first window.
    record : WaveformRecord
        Voltage and current samples.
    limits : LimitSettings, optional
        Load-warning limits; none are checked without them.
    ct : RangeSwitchingCt, optional
        Wide-range current input model.
    declared_voltage_v : float, optional
        U_din for dips and swells; the meter's nominal voltage by default. [V]

    Raises
    ------
    WaveformError
        The record has a different phase count or no currents.
    """
    config = meter.config
    if record.phases != config.phases:
        raise WaveformError(
            "phases", record.phases, f"meter {config.serial} has {config.phases} phase(s)"
        )
    if record.current_a is None:
        raise WaveformError("current_a", None, "a meter needs current samples to register")
    analysis = analyze(
        record,
        declared_voltage_v=declared_voltage_v or config.nominal_voltage_v,
        ct=ct,
    )
    threshold = NO_LOAD_FRACTION * config.thresholds.starting_current_a
    windows = window_measurements(analysis, no_load_current_a=threshold)
    changes, found = warning_changes(analysis, limits) if limits is not None else ([], [])
    # Merge by time; a warning at the end of a window follows that window's measurement.
    pending = iter(changes)
    change = next(pending, None)
    for window in windows:
        meter.step(
            Measurement(
                timestamp=window.timestamp,
                voltage_v=window.voltage_v,
                current_a=window.current_a,
                active_power_w=window.active_power_w,
                reactive_power_var=window.reactive_power_var,
                frequency_hz=window.frequency_hz,
                neutral_current_a=window.neutral_current_a,
            )
        )
        while change is not None and change.at <= window.timestamp:
            if change.group != "overload":
                meter.load_warning(change.group, change.active, window.timestamp, change.detail)
            change = next(pending, None)
    return WaveformRun(analysis, len(windows), changes, found)
