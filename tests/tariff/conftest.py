"""Fixtures of the tariff tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

URDB_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tariffs" / "urdb"


@pytest.fixture(scope="session")
def urdb_dir() -> Path:
    """The real URDB files; fail in CI and skip elsewhere when the data are absent."""
    if not URDB_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test data missing in CI: {URDB_DIR}")
        pytest.skip(f"shared test data not found at {URDB_DIR}")
    return URDB_DIR
