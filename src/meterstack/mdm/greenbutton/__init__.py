"""Green Button (NAESB ESPI) export and import."""

from meterstack.mdm.greenbutton.export import export_greenbutton, power_of_ten
from meterstack.mdm.greenbutton.importer import (
    GREENBUTTON_SCHEMA,
    ParsedFeed,
    UsagePointData,
    meter_id_for,
    parse_greenbutton,
)

__all__ = [
    "GREENBUTTON_SCHEMA",
    "ParsedFeed",
    "UsagePointData",
    "export_greenbutton",
    "meter_id_for",
    "parse_greenbutton",
    "power_of_ten",
]
