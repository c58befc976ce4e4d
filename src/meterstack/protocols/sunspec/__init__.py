"""SunSpec: a simulated inverter (models 1, 103, 123) and export control against it."""

from meterstack.protocols.sunspec.inverter import InverterSettings, SimulatedInverter
from meterstack.protocols.sunspec.server import InverterContext, InverterServer
from meterstack.protocols.sunspec.simulation import (
    ExportReport,
    Scenario,
    simulate,
    standard_scenarios,
)

__all__ = [
    "ExportReport",
    "InverterContext",
    "InverterServer",
    "InverterSettings",
    "Scenario",
    "SimulatedInverter",
    "simulate",
    "standard_scenarios",
]
