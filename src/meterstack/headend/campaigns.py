"""Firmware campaigns: one signed image to many meters, with progress per meter.

For each meter the campaign offers the manifest (``firmware_offer``: the meter checks the
vendor signature at once and says which offset it needs), sends the image in chunks
(``firmware_chunk``, each acknowledged with the next offset needed), and activates it
(``firmware_activate``: the meter checks size, SHA-256 and signature, switches, runs its
self-test and rolls back on failure). When the link is lost the chunk command fails after
its retries; the campaign offers again, and the meter answers with the offset it already
holds, so the transfer resumes instead of starting over.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from meterstack.core.errors import InvalidInputError
from meterstack.headend.commands import CommandState
from meterstack.headend.service import HeadEnd
from meterstack.link.firmware import FirmwareManifest
from meterstack.link.schema import ResponseStatus


class CampaignState(StrEnum):
    PENDING = "pending"
    TRANSFERRING = "transferring"
    ACTIVATING = "activating"
    ACTIVE = "active"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass
class MeterProgress:
    serial: str
    state: CampaignState = CampaignState.PENDING
    bytes_confirmed: int = 0
    size: int = 0
    resumes: int = 0
    detail: str = ""

    @property
    def percent(self) -> float:
        return 100.0 * self.bytes_confirmed / self.size if self.size else 0.0


class FirmwareCampaign:
    """Deliver ``image`` (signed as ``manifest``) to ``meters``.

    Parameters
    ----------
    chunk_size : int
        Bytes per chunk command. [bytes]
    command_timeout_s : float
        Wait for each response before resending. [s]
    max_attempts : int
        Sends of one command before it fails and the transfer is resumed.
    max_resumes : int
        Resumptions per meter before the meter is marked failed.
    """

    def __init__(
        self,
        headend: HeadEnd,
        image: bytes,
        manifest: FirmwareManifest,
        meters: list[str],
        *,
        chunk_size: int = 1024,
        command_timeout_s: float = 5.0,
        max_attempts: int = 3,
        max_resumes: int = 5,
    ) -> None:
        if len(image) != manifest.size:
            raise InvalidInputError(
                "image", f"{len(image)} bytes", f"manifest says {manifest.size}"
            )
        if not 16 <= chunk_size <= 65536:
            raise InvalidInputError("chunk_size", chunk_size, "16 to 65536 bytes")
        self.headend = headend
        self.image = image
        self.manifest = manifest
        self.chunk_size = chunk_size
        self.command_timeout_s = command_timeout_s
        self.max_attempts = max_attempts
        self.max_resumes = max_resumes
        self.meters = {serial: MeterProgress(serial, size=manifest.size) for serial in meters}

    def progress(self) -> dict[str, dict[str, Any]]:
        return {
            serial: {**asdict(p), "state": p.state.value, "percent": round(p.percent, 1)}
            for serial, p in self.meters.items()
        }

    async def run(self) -> dict[str, MeterProgress]:
        await asyncio.gather(*(self._meter(serial) for serial in self.meters))
        return self.meters

    async def _call(self, serial: str, name: str, args: dict[str, Any]) -> Any:
        timeout = self.command_timeout_s * self.max_attempts + 1.0
        record = await self.headend.command(
            serial,
            name,
            args,
            timeout=timeout,
            timeout_s=self.command_timeout_s,
            max_attempts=self.max_attempts,
        )
        return record

    async def _meter(self, serial: str) -> None:
        progress = self.meters[serial]
        progress.state = CampaignState.TRANSFERRING
        while True:
            offer = await self._call(serial, "firmware_offer", self.manifest.to_wire())
            if offer.state is not CommandState.ACKNOWLEDGED:
                if offer.status is not None and offer.status is not ResponseStatus.OK:
                    progress.state, progress.detail = CampaignState.REFUSED, str(offer.detail)
                    return
                if not self._resume(progress, f"offer: {offer.detail}"):
                    return
                continue
            offset = int(offer.result["next_offset"])
            progress.bytes_confirmed = offset
            while offset < self.manifest.size:
                data = self.image[offset : offset + self.chunk_size]
                chunk = await self._call(
                    serial,
                    "firmware_chunk",
                    {"version": self.manifest.version, "offset": offset, "data": data},
                )
                if chunk.state is not CommandState.ACKNOWLEDGED:
                    break
                offset = int(chunk.result["next_offset"])
                progress.bytes_confirmed = offset
            if offset < self.manifest.size:
                if not self._resume(progress, "chunk transfer interrupted"):
                    return
                continue
            progress.state = CampaignState.ACTIVATING
            activation = await self._call(serial, "firmware_activate", {})
            if activation.state is CommandState.ACKNOWLEDGED:
                progress.state, progress.detail = CampaignState.ACTIVE, str(activation.detail)
            elif activation.status is ResponseStatus.ERROR:
                progress.state, progress.detail = CampaignState.ROLLED_BACK, str(activation.detail)
            elif activation.status is not None:
                progress.state, progress.detail = CampaignState.REFUSED, str(activation.detail)
            else:
                progress.state, progress.detail = CampaignState.FAILED, str(activation.detail)
            return

    def _resume(self, progress: MeterProgress, why: str) -> bool:
        progress.resumes += 1
        if progress.resumes > self.max_resumes:
            progress.state = CampaignState.FAILED
            progress.detail = f"gave up after {self.max_resumes} resumptions ({why})"
            return False
        progress.state = CampaignState.TRANSFERRING
        progress.detail = f"resuming: {why}"
        return True
