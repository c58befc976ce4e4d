"""Shared test configuration.

Tests that need a server (PostgreSQL, Mosquitto, NATS, Redis, RabbitMQ) use
:func:`require_service`: outside CI a missing server skips the test with the reason; with
``CI=true`` it fails, because CI must prove the real thing.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"

settings.register_profile(
    "meterstack",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "60")),
)
settings.load_profile("meterstack")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) unless a TCP server answers at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI needs it running")
        pytest.skip(message)


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data; skip (fail in CI) if the data set is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"test data {path} is missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
