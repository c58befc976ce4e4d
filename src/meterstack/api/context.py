"""What every request needs: the stores, the services, the caller, and who may do what."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from meterstack.analytics.network import NetworkModel
from meterstack.api.problems import ProblemError
from meterstack.api.ratelimit import TokenBucketLimiter
from meterstack.api.security import (
    Principal,
    decode_access_token,
    hash_api_key,
    split_api_key,
)
from meterstack.api.webhooks import WebhookDispatcher, enqueue_event
from meterstack.core.config import Settings
from meterstack.core.time import Clock
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.models import (
    Account,
    ApiKey,
    Meter,
    ServicePoint,
)
from meterstack.vending import SmartPrepay, SupplyCommandPort, VendingService

__all__ = [
    "ApiContext",
    "CurrentPrincipal",
    "context_of",
    "owned_meters",
    "require_meter_access",
    "require_roles",
]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass
class ApiContext:
    """The state of one API application."""

    settings: Settings
    engine: Engine
    store: IntervalStore
    clock: Clock
    jwt_secret: bytes
    vending: VendingService
    prepay: SmartPrepay
    limiter: TokenBucketLimiter
    dispatcher: WebhookDispatcher
    command_port: SupplyCommandPort | None = None
    store_lock: threading.RLock = field(default_factory=threading.RLock)
    #: The distribution network the grid analytics reason over (``serve --network``).
    network: NetworkModel | None = None
    #: The latest grid analytics report (``POST /api/v1/analytics/run``).
    analytics_report: dict[str, Any] | None = None

    @contextmanager
    def intervals(self) -> Iterator[IntervalStore]:
        """The interval store, one request at a time (a DuckDB connection is not shared
        between threads)."""
        with self.store_lock:
            yield self.store

    def event_sink(self) -> Callable[[Session, str, dict[str, Any]], None]:
        def sink(session: Session, kind: str, data: dict[str, Any]) -> None:
            enqueue_event(session, kind, data, datetime.now(UTC))

        return sink

    def session(self) -> Session:
        return Session(self.engine)


async def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context_of)]


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def resolve_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller, from a bearer token or an API key; 401 without a valid one.

    A coroutine, so that it runs on the event loop rather than costing a worker-thread hop
    per request; the key lookup is one indexed row from the operational store.
    """
    ctx: ApiContext = request.app.state.context
    if api_key:
        prefix = split_api_key(api_key)
        if prefix is None:
            raise _unauthorized("the API key is not well formed")
        with ctx.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
            if row is None or row.revoked_at is not None:
                raise _unauthorized("unknown or revoked API key")
            if not hmac.compare_digest(row.key_hash, hash_api_key(api_key)):
                raise _unauthorized("unknown or revoked API key")
            principal = Principal("key", row.id, row.name, row.role, row.customer_id, row.vendor_id)
    elif token:
        found = decode_access_token(token, ctx.jwt_secret)
        if found is None:
            raise _unauthorized("the bearer token is invalid or has expired")
        principal = found
    else:
        raise _unauthorized("log in (POST /api/v1/auth/token) or send an X-API-Key")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(resolve_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ProblemError(
                403, f"role {principal.role} may not do this (needs {' or '.join(roles)})"
            )
        return principal

    return check


def owned_meters(session: Session, customer_id: int) -> list[str]:
    """Serials of the meters on the customer's accounts."""
    return list(
        session.scalars(
            select(Meter.id)
            .join(ServicePoint, ServicePoint.id == Meter.service_point_id)
            .join(Account, Account.id == ServicePoint.account_id)
            .where(Account.customer_id == customer_id)
            .order_by(Meter.id)
        )
    )


def require_meter_access(ctx: ApiContext, principal: Principal, serial: str) -> Meter:
    """The meter, if the caller may see it: staff see all; a customer only their own; a
    vendor none of the readings. 403 for a meter that is not the customer's (whether it
    exists or not), 404 for staff asking for an unknown meter."""
    with ctx.session() as session:
        if principal.role == "customer":
            if principal.customer_id is None or serial not in owned_meters(
                session, principal.customer_id
            ):
                raise ProblemError(403, f"meter {serial} is not one of your meters")
        elif principal.role not in ("admin", "operator"):
            raise ProblemError(403, f"role {principal.role} may not read meter data")
        meter = session.get(Meter, serial)
        if meter is None:
            raise ProblemError(404, f"no meter {serial}")
        session.expunge(meter)
        return meter
