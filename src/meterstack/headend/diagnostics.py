"""Remote troubleshooting: what a meter says about its link, and what the head-end saw.

:func:`remote_diagnostics` asks the meter (the ``diagnostics`` command) for its link quality
(active path, RTT, failovers), outbox depth by class, dropped entries and its last errors;
:func:`headend_view` adds what the head-end knows: last path and time heard, alarms,
open commands and the dead letters it recorded for the meter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meterstack.core.errors import CommandRefusedError
from meterstack.headend.commands import CommandState
from meterstack.headend.service import HeadEnd


@dataclass(frozen=True)
class MeterDiagnostics:
    serial: str
    link: dict[str, Any]
    outbox: dict[str, Any]
    last_errors: list[dict[str, Any]]
    key_id: int
    firmware: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)


async def remote_diagnostics(
    headend: HeadEnd, serial: str, *, timeout: float = 15.0
) -> MeterDiagnostics:
    """Ask ``serial`` for its diagnostics.

    Raises
    ------
    CommandRefusedError
        The meter did not answer (the command failed or expired) or refused.
    """
    record = await headend.command(serial, "diagnostics", timeout=timeout, timeout_s=timeout / 3)
    if record.state is not CommandState.ACKNOWLEDGED or not isinstance(record.result, dict):
        raise CommandRefusedError("diagnostics", f"{record.state.value}: {record.detail}")
    result = record.result
    return MeterDiagnostics(
        serial=serial,
        link=dict(result.get("link") or {}),
        outbox=dict(result.get("outbox") or {}),
        last_errors=list(result.get("last_errors") or []),
        key_id=int(result.get("key_id", 0)),
        firmware=result.get("firmware"),
        extra={
            k: v
            for k, v in result.items()
            if k not in {"link", "outbox", "last_errors", "key_id", "firmware"}
        },
    )


def headend_view(headend: HeadEnd, serial: str) -> dict[str, Any]:
    """What the head-end itself knows about ``serial``."""
    store = headend.store
    rows = store.query("SELECT last_path, last_seen FROM meters WHERE serial = ?", (serial,))
    last_path, last_seen = rows[0] if rows else (None, None)
    commands = headend.commands.for_meter(serial)
    return {
        "serial": serial,
        "last_path": last_path,
        "last_seen": last_seen,
        "alarms": len(store.alarms(serial)),
        "commands": {
            state.value: sum(1 for c in commands if c.state is state) for state in CommandState
        },
        "dead_letters": sum(
            1 for letter in store.dead_letters(1000) if f"/{serial}/" in letter.source
        ),
    }
