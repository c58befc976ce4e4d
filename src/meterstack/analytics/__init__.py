"""Grid analytics over the whole fleet: outages, theft and losses, power-quality compliance.

Vectorised over meters and intervals; no I/O of its own (the arrays come from the meter
data store or the simulator).
"""

from meterstack.analytics.compliance import (
    DistortionWarnings,
    TransformerLoading,
    VoltageCompliance,
    distortion_warnings,
    transformer_loading,
    voltage_compliance,
)
from meterstack.analytics.losses import (
    EnergyBalance,
    TechnicalLossModel,
    customer_sums,
    energy_balance,
)
from meterstack.analytics.network import NetworkModel, load_network_csv
from meterstack.analytics.outages import (
    Outage,
    OutageLevel,
    OutageReport,
    PowerEventKind,
    PowerEvents,
    ReliabilityIndices,
    find_outages,
)
from meterstack.analytics.run import GridReport, analyse
from meterstack.analytics.theft import InspectionList, Suspect, TheftThresholds, detect_theft

__all__ = [
    "DistortionWarnings",
    "EnergyBalance",
    "GridReport",
    "InspectionList",
    "NetworkModel",
    "Outage",
    "OutageLevel",
    "OutageReport",
    "PowerEventKind",
    "PowerEvents",
    "ReliabilityIndices",
    "Suspect",
    "TechnicalLossModel",
    "TheftThresholds",
    "TransformerLoading",
    "VoltageCompliance",
    "analyse",
    "customer_sums",
    "detect_theft",
    "distortion_warnings",
    "energy_balance",
    "find_outages",
    "load_network_csv",
    "transformer_loading",
    "voltage_compliance",
]
