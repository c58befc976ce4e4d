"""Health checks and degraded mode of FailoverTransport against a real Mosquitto."""

from __future__ import annotations

from typing import Any

import pytest

from meterstack.core.errors import InvalidInputError
from meterstack.link.transports import FailoverPolicy, FailoverTransport

from .support import meter_transport, wait_until


def _paths(broker: Any, serial: str, policy: FailoverPolicy) -> FailoverTransport:
    return FailoverTransport(
        meter_transport(broker, serial, "cellular"),
        meter_transport(broker, serial, "nbiot", low_bandwidth=True),
        policy,
    )


async def test_a_slow_primary_puts_the_module_in_degraded_mode(mosquitto: Any) -> None:
    # Every real round trip is slower than 1 ns: the smoothed RTT marks the link as poor
    # while traffic stays on the (connected, healthy) primary.
    poor = FailoverPolicy(probe_interval_s=0.05, poor_rtt_s=1e-9)
    transport = _paths(mosquitto, "FO0001", poor)
    async with transport:
        assert await transport.primary.wait_connected(5)
        assert await wait_until(lambda: transport.primary.health.probes >= 2, 5)
        assert transport.active is transport.primary
        assert transport.primary.health.rtt_ewma_s is not None
        assert transport.primary.health.rtt_ewma_s > 0
        assert transport.degraded
        diagnostics = transport.diagnostics()
        assert diagnostics["degraded"] is True
        assert diagnostics["active"] == "cellular"


async def test_a_quick_primary_is_not_degraded(mosquitto: Any) -> None:
    quick = FailoverPolicy(probe_interval_s=0.05, poor_rtt_s=30.0)
    transport = _paths(mosquitto, "FO0002", quick)
    async with transport:
        assert await transport.primary.wait_connected(5)
        assert await wait_until(lambda: transport.primary.health.probes >= 2, 5)
        assert await wait_until(lambda: not transport.degraded, 5)
        assert transport.active is transport.primary
        assert transport.switches == []


def test_bad_policies_name_the_field(mosquitto: Any) -> None:
    with pytest.raises(InvalidInputError, match="probe_interval_s"):
        FailoverPolicy(probe_interval_s=0)
    with pytest.raises(InvalidInputError, match="rtt_alpha"):
        FailoverPolicy(rtt_alpha=0)
    with pytest.raises(InvalidInputError, match=r"secondary\.name"):
        FailoverTransport(
            meter_transport(mosquitto, "FO0003", "same"),
            meter_transport(mosquitto, "FO0003", "same"),
        )
