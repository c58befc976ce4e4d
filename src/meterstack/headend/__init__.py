"""The head-end: ingest from meters into MDM, commands to meters, keys and firmware.

Orchestration level: it does I/O (MQTT connections, its SQLite database) and is the only
part of the link stack that imports ``mdm`` (the :class:`~meterstack.mdm.MeterDataSink`
contract it writes through).
"""

from meterstack.headend.campaigns import CampaignState, FirmwareCampaign, MeterProgress
from meterstack.headend.commands import (
    COMMAND_NAMES,
    CommandDispatcher,
    CommandQueue,
    CommandRecord,
    CommandState,
)
from meterstack.headend.diagnostics import MeterDiagnostics, headend_view, remote_diagnostics
from meterstack.headend.downlink import Downlink, headend_title
from meterstack.headend.embedded_broker import EmbeddedBroker, free_port
from meterstack.headend.ingest import (
    AlarmNotice,
    IngestConfig,
    IngestStats,
    IngestWorker,
    ResponseNotice,
)
from meterstack.headend.service import BrokerPath, HeadEnd
from meterstack.headend.store import HeadEndStore, MeterRecord

__all__ = [
    "COMMAND_NAMES",
    "AlarmNotice",
    "BrokerPath",
    "CampaignState",
    "CommandDispatcher",
    "CommandQueue",
    "CommandRecord",
    "CommandState",
    "Downlink",
    "EmbeddedBroker",
    "FirmwareCampaign",
    "HeadEnd",
    "HeadEndStore",
    "IngestConfig",
    "IngestStats",
    "IngestWorker",
    "MeterDiagnostics",
    "MeterProgress",
    "MeterRecord",
    "ResponseNotice",
    "free_port",
    "headend_title",
    "headend_view",
    "remote_diagnostics",
]
