"""Named random streams: every model component draws from its own generator.

A stream is keyed by ``(seed, stream[, chunk])`` through ``SeedSequence.spawn_key``, so the
draws of one component never shift those of another: changing the PV shares of a fleet
leaves its loads as they were, and chunking (fixed by the interval count, never by the
machine) keeps results reproducible.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "APPLIANCES",
    "DEMAND",
    "FLEET",
    "GRID",
    "LOAD_NOISE",
    "PV",
    "PV_NOISE",
    "VOLTAGE",
    "WEATHER",
    "stream",
]

FLEET = 0
PV = 1
GRID = 2
WEATHER = 3
DEMAND = (10, 11, 12)  # per-meter parameters of residential, commercial, industrial
LOAD_NOISE = 20
APPLIANCES = 21
PV_NOISE = 22
VOLTAGE = 23


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator of stream ``key`` under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
