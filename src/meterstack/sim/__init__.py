"""The fleet simulator: load shapes, scenarios and the demo runner."""

from meterstack.sim.loadshapes import (
    ALLOWED_INTERVALS_S,
    CustomerClass,
    FleetMix,
    LoadShapes,
    generate_load_shapes,
)

__all__ = [
    "ALLOWED_INTERVALS_S",
    "CustomerClass",
    "FleetMix",
    "LoadShapes",
    "generate_load_shapes",
]
