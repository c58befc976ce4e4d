"""Synthetic test signals whose answers are known exactly."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def data_dir() -> Path:
    """The shared test data; skipped when absent outside CI, an error in CI."""
    if not DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test data directory {DATA} is missing")
        pytest.skip(f"test data directory {DATA} is absent")
    return DATA


def tone(
    components: Sequence[Sequence[float]],
    fs: float,
    samples: int,
    f0: float,
    shift_deg: float = 0.0,
) -> np.ndarray:
    """Sum of sqrt(2) * rms * sin(2 pi h f0 t + phase + h * shift) over (h, rms, phase_deg)."""
    t = np.arange(samples) / fs
    x = np.zeros(samples)
    for order, rms, phase in components:
        x += (
            np.sqrt(2)
            * rms
            * np.sin(2 * np.pi * order * f0 * t + np.deg2rad(phase + order * shift_deg))
        )
    return x


def three_phase(
    components: Sequence[Sequence[float]], fs: float, samples: int, f0: float
) -> np.ndarray:
    """A balanced positive-sequence set: phase b and c shifted by -120 and +120 degrees
    at the fundamental (harmonic h shifted by h times that)."""
    return np.stack([tone(components, fs, samples, f0, shift) for shift in (0, -120, 120)])
