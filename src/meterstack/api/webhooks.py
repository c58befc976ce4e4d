"""Webhooks for ERP and BMS systems: events out, signed, retried, logged.

An event (``alarm.raised``, ``vend.completed``, ``vend.reversed``, ``account.low_credit``,
``account.disconnected``, ``account.reconnected``) becomes one
:class:`~meterstack.mdm.operational.WebhookDelivery` per subscribed webhook, written in the
transaction of the change that caused it (an outbox: no event without its change, no change
without its events). :class:`WebhookDispatcher` posts them:

``POST <url>`` with the JSON body ``{"id", "type", "created_at", "data"}`` and headers

* ``X-Meterstack-Event``: the event type; ``X-Meterstack-Delivery``: the delivery id;
* ``X-Meterstack-Timestamp``: Unix seconds of this attempt;
* ``X-Meterstack-Signature``: ``sha256=`` + hex HMAC-SHA256 (RFC 2104) under the webhook's
  secret of ``"<timestamp>.<body>"``. A receiver recomputes it, compares in constant time,
  and refuses old timestamps (replays).

A 2xx answer delivers it. Anything else (or no answer within the timeout) is retried after
``backoff * 2**(attempts - 1)`` seconds (capped at ``backoff_max``), up to ``max_attempts``;
then the delivery is ``failed``. Every attempt is appended to the delivery's log (time,
status or error, duration).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.core.aio import wait_event
from meterstack.mdm.operational.models import Webhook, WebhookDelivery

__all__ = [
    "EVENT_TYPES",
    "WebhookDispatcher",
    "enqueue_event",
    "sign",
    "verify_signature",
]

EVENT_TYPES = (
    "alarm.raised",
    "vend.completed",
    "vend.reversed",
    "account.low_credit",
    "account.disconnected",
    "account.reconnected",
)
_log = logging.getLogger("meterstack.api.webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(  # noqa: PLR0917
    secret: str, timestamp: int, body: bytes, signature: str, now: float, tolerance_s: int = 300
) -> bool:
    """Whether ``signature`` is right and ``timestamp`` within ``tolerance_s`` of ``now``."""
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def enqueue_event(
    session: Session, event_type: str, data: dict[str, Any], now: datetime | None = None
) -> int:
    """Add a delivery of the event for each active webhook that wants it; returns how many."""
    at = now or datetime.now(UTC)
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True))).all()
    event_id = uuid.uuid4().hex
    count = 0
    for hook in hooks:
        if event_type not in hook.events and "*" not in hook.events:
            continue
        session.add(
            WebhookDelivery(
                webhook_id=hook.id,
                event_id=event_id,
                event_type=event_type,
                payload={
                    "id": event_id,
                    "type": event_type,
                    "created_at": at.isoformat(),
                    "data": data,
                },
                status="pending",
                attempts=0,
                next_attempt_at=at,
                created_at=at,
                attempts_log=[],
            )
        )
        count += 1
    return count


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class WebhookDispatcher:
    """Delivers due webhook deliveries with retries (run :meth:`run` as a task)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_attempts: int = 6,
        backoff_s: float = 2.0,
        backoff_max_s: float = 600.0,
        timeout_s: float = 10.0,
        poll_s: float = 0.2,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.now = now
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Deliver soon (callable from any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _due(self) -> list[tuple[int, str, str, dict[str, Any], str]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= self.now(),
                )
                .order_by(WebhookDelivery.id)
                .limit(100)
            ).all()
            return [(d.id, hook.url, hook.secret, d.payload, d.event_type) for d, hook in rows]

    def _settle(
        self, delivery_id: int, status: int | None, error: str | None, duration_ms: float
    ) -> None:
        now = self.now()
        with Session(self.engine) as session, session.begin():
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            row.attempts_log = [
                *row.attempts_log,
                {
                    "at": now.isoformat(),
                    "status": status,
                    "error": error,
                    "duration_ms": round(duration_ms, 1),
                },
            ]
            if status is not None and 200 <= status < 300:
                row.status = "delivered"
                row.delivered_at = now
            elif row.attempts >= self.max_attempts:
                row.status = "failed"
            else:
                delay = min(self.backoff_s * 2 ** (row.attempts - 1), self.backoff_max_s)
                row.next_attempt_at = now + timedelta(seconds=delay)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One pass: attempt every due delivery; returns how many were attempted."""
        due = await asyncio.to_thread(self._due)
        for delivery_id, url, secret, payload, event_type in due:
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "meterstack-webhooks/1",
                "X-Meterstack-Event": event_type,
                "X-Meterstack-Delivery": str(delivery_id),
                "X-Meterstack-Timestamp": str(timestamp),
                "X-Meterstack-Signature": sign(secret, timestamp, body),
            }
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            await asyncio.to_thread(
                self._settle, delivery_id, status, error, (time.perf_counter() - started) * 1000
            )
        return len(due)

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                try:
                    await self.deliver_due(client)
                except Exception:
                    _log.exception("webhook delivery pass failed")
                wake.clear()
                await wait_event(wake, self.poll_s)
