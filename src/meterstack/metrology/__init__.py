"""Metrology: measurements from sampled voltage and current, pure NumPy/SciPy.

Build a :class:`WaveformRecord` with :func:`make_record` (or read one with
:func:`read_csv` / :func:`read_comtrade`; :func:`load_comtrade` gives every channel of a
COMTRADE record as the file defines it), then :func:`analyze` it: RMS values, IEEE 1459
power quantities, IEC 61000-4-7 harmonics, THD, unbalance, frequency, dips, swells and
interruptions, per synchronised 10/12-cycle window. :func:`summarize` reduces an analysis
to one value per quantity for the whole record, :func:`aggregate` to 150/180-cycle,
10-min and 2-h values; :func:`assess` checks IEEE 519-2022 limits; the modules
``harmonics``, ``power``, ``unbalance``, ``events``, ``energy``, ``filters``, ``limits`` and
``accuracy`` hold the plain array functions the pipeline is made of.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meterstack.metrology.accuracy import TypeTestPoint, point_record, type_test_points
    from meterstack.metrology.analysis import Analysis, analyze, summarize
    from meterstack.metrology.comtrade_reader import (
        ComtradeChannel,
        ComtradeRecord,
        ComtradeRecordError,
        load_comtrade,
        read_comtrade,
    )
    from meterstack.metrology.energy import (
        CtRange,
        FourQuadrantEnergy,
        RangeSwitchingCt,
        four_quadrant_energy,
        wide_range_ct,
    )
    from meterstack.metrology.events import EventThresholds, VoltageEvent
    from meterstack.metrology.filters import MeasurementBand, band_response, default_band
    from meterstack.metrology.intervals import Aggregates, aggregate
    from meterstack.metrology.limits import LimitSettings, LoadWarning, assess
    from meterstack.metrology.readers import read_csv
    from meterstack.metrology.record import WaveformError, WaveformRecord, make_record
    from meterstack.metrology.stream import (
        WarningChange,
        WindowMeasurement,
        warning_changes,
        window_measurements,
    )

# Submodules load on first use (PEP 562): importing the package stays cheap, and SciPy
# is only imported by the parts that need it.
_SOURCES: dict[str, str] = {
    "Aggregates": "meterstack.metrology.intervals",
    "Analysis": "meterstack.metrology.analysis",
    "ComtradeChannel": "meterstack.metrology.comtrade_reader",
    "ComtradeRecord": "meterstack.metrology.comtrade_reader",
    "ComtradeRecordError": "meterstack.metrology.comtrade_reader",
    "CtRange": "meterstack.metrology.energy",
    "EventThresholds": "meterstack.metrology.events",
    "FourQuadrantEnergy": "meterstack.metrology.energy",
    "LimitSettings": "meterstack.metrology.limits",
    "LoadWarning": "meterstack.metrology.limits",
    "MeasurementBand": "meterstack.metrology.filters",
    "RangeSwitchingCt": "meterstack.metrology.energy",
    "TypeTestPoint": "meterstack.metrology.accuracy",
    "VoltageEvent": "meterstack.metrology.events",
    "WarningChange": "meterstack.metrology.stream",
    "WaveformError": "meterstack.metrology.record",
    "WaveformRecord": "meterstack.metrology.record",
    "WindowMeasurement": "meterstack.metrology.stream",
    "aggregate": "meterstack.metrology.intervals",
    "analyze": "meterstack.metrology.analysis",
    "assess": "meterstack.metrology.limits",
    "band_response": "meterstack.metrology.filters",
    "default_band": "meterstack.metrology.filters",
    "four_quadrant_energy": "meterstack.metrology.energy",
    "load_comtrade": "meterstack.metrology.comtrade_reader",
    "make_record": "meterstack.metrology.record",
    "point_record": "meterstack.metrology.accuracy",
    "read_comtrade": "meterstack.metrology.comtrade_reader",
    "read_csv": "meterstack.metrology.readers",
    "summarize": "meterstack.metrology.analysis",
    "type_test_points": "meterstack.metrology.accuracy",
    "warning_changes": "meterstack.metrology.stream",
    "wide_range_ct": "meterstack.metrology.energy",
    "window_measurements": "meterstack.metrology.stream",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


__all__ = [
    "Aggregates",
    "Analysis",
    "ComtradeChannel",
    "ComtradeRecord",
    "ComtradeRecordError",
    "CtRange",
    "EventThresholds",
    "FourQuadrantEnergy",
    "LimitSettings",
    "LoadWarning",
    "MeasurementBand",
    "RangeSwitchingCt",
    "TypeTestPoint",
    "VoltageEvent",
    "WarningChange",
    "WaveformError",
    "WaveformRecord",
    "WindowMeasurement",
    "aggregate",
    "analyze",
    "assess",
    "band_response",
    "default_band",
    "four_quadrant_energy",
    "load_comtrade",
    "make_record",
    "point_record",
    "read_comtrade",
    "read_csv",
    "summarize",
    "type_test_points",
    "warning_changes",
    "wide_range_ct",
    "window_measurements",
]
