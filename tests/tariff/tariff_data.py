"""Shared fixtures: where the real URDB files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
URDB_DIR = DATA / "tariffs" / "urdb"


def urdb_files() -> list[Path]:
    """The URDB JSON files; fail in CI and skip elsewhere when the data are absent."""
    if not URDB_DIR.is_dir():
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"test data missing in CI: {URDB_DIR}")
        return []
    return sorted(URDB_DIR.glob("*.json"))


@pytest.fixture(scope="session")
def urdb_dir() -> Path:
    if not URDB_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test data missing in CI: {URDB_DIR}")
        pytest.skip(f"shared test data not found at {URDB_DIR}")
    return URDB_DIR
