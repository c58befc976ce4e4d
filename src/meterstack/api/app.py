"""The FastAPI application: routes, problem details, rate limiting, webhooks, static files."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

from meterstack import __version__
from meterstack.analytics.network import NetworkModel
from meterstack.api.context import ApiContext
from meterstack.api.problems import Problem, install_problem_handlers, problem_response
from meterstack.api.ratelimit import TokenBucketLimiter
from meterstack.api.routes import analytics, auth, meters, tariffs, vending
from meterstack.api.security import (
    decode_access_token,
    hash_password,
    load_or_create_secret,
    split_api_key,
)
from meterstack.api.webhooks import WebhookDispatcher, enqueue_event
from meterstack.core.config import Settings
from meterstack.core.errors import InvalidInputError
from meterstack.core.time import Clock, SystemClock
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.operational.models import ApiUser
from meterstack.mdm.stores import open_interval_store, open_operational, sync_meters
from meterstack.sts import TokenIssuer, VendingKey
from meterstack.vending import SmartPrepay, SupplyCommandPort, VendingService

__all__ = ["STATIC_DIR", "create_app", "create_user", "vending_key_of"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "web" / "static"
#: The charting library the dashboard uses, shipped inside the plotly Python package.
PLOTLY_JS = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"

DESCRIPTION = """\
The meterstack REST API: meters and their readings, events and alarms, commands, tariffs,
bills, prepaid vending (STS tokens and smart prepay), accounts; webhooks for ERP and BMS.

* Authenticate with `POST /api/v1/auth/token` (OAuth2 password flow) and send
  `Authorization: Bearer <token>`, or send an API key as `X-API-Key`.
* Roles: admin, operator, vendor, customer (a customer sees only their own meters).
* Every error is an RFC 9457 `application/problem+json` document.
* Collections are paged (`page`, `page_size`) with links, also in the `Link` header.
* Each caller has a token bucket (`[api] rate_limit_per_s`, `rate_limit_burst`); past it
  the answer is 429 with `Retry-After`.
"""


def vending_key_of(settings: Settings) -> VendingKey:
    """The STS vending key from the settings, or the embedded default's key file."""
    vending = settings.vending
    if vending.vending_key is not None:
        return VendingKey.from_hex(vending.vending_key.get_secret_value(), "vending.vending_key")
    path = vending.vending_key_file or settings.data_dir / "secrets" / "vending.key"
    return VendingKey(load_or_create_secret(path, 8))


def _jwt_secret(settings: Settings) -> bytes:
    api = settings.api
    if api.jwt_secret is not None:
        return api.jwt_secret.get_secret_value().encode()
    return load_or_create_secret(
        api.jwt_secret_file or settings.data_dir / "secrets" / "jwt.key", 32
    )


def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    customer_id: int | None = None,
    vendor_id: int | None = None,
) -> int:
    """Add a login (the first admin is made this way, or with ``meterstack serve
    --create-admin``)."""
    if role not in ("admin", "operator", "vendor", "customer"):
        raise InvalidInputError("role", role, "admin, operator, vendor or customer")
    with Session(engine) as session, session.begin():
        if session.scalar(select(ApiUser.id).where(ApiUser.username == username)) is not None:
            raise InvalidInputError("username", username, "a user has this name")
        user = ApiUser(
            username=username,
            password_hash=hash_password(password),
            role=role,
            customer_id=customer_id,
            vendor_id=vendor_id,
            active=True,
            created_at=datetime.now(UTC),
        )
        session.add(user)
        session.flush()
        return user.id


class _WebPath(Convertor[str]):
    """Any path except the API's."""

    regex = r"(?!api(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("webpath", _WebPath())


def _rate_key(request: Request, secret: bytes) -> str:
    api_key = request.headers.get("x-api-key")
    if api_key:
        prefix = split_api_key(api_key)
        return f"key:{prefix}" if prefix else f"bad-key:{request.client}"
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        principal = decode_access_token(authorization[7:].strip(), secret)
        if principal is not None:
            return principal.rate_key
    host = request.client.host if request.client is not None else "unknown"
    return f"addr:{host}"


class RateLimitMiddleware:
    """ASGI middleware: a token from the caller's bucket for every ``/api/`` request; 429
    with ``Retry-After`` when the bucket is empty."""

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            request = Request(scope)
            limiter = self.context.limiter
            wait = limiter.take(_rate_key(request, self.context.jwt_secret))
            if wait > 0:
                response = problem_response(
                    request,
                    429,
                    f"rate limit of {limiter.rate:g}/s (burst {limiter.burst}) exceeded; "
                    "retry later",
                    headers={"Retry-After": limiter.retry_after(wait)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    store: IntervalStore | None = None,
    clock: Clock | None = None,
    command_port: SupplyCommandPort | None = None,
    run_webhooks: bool = True,
    network: NetworkModel | None = None,
) -> FastAPI:
    """The API application on the stores the settings name (or those given).

    ``network`` is the distribution network the grid analytics run on
    (``POST /api/v1/analytics/run``); without it they answer 409.
    """
    settings = settings or Settings()
    engine = engine or open_operational(settings)
    if store is None:
        store = open_interval_store(settings)
        sync_meters(engine, store)
    clock = clock or SystemClock()
    issuer = TokenIssuer(vending_key_of(settings), timezone=settings.timezone)

    def sink(session: Session, kind: str, data: dict[str, Any]) -> None:
        enqueue_event(session, kind, data, datetime.now(UTC))

    service = VendingService.from_settings(
        engine, clock, settings.vending, issuer=issuer, event_sink=sink
    )
    api = settings.api
    dispatcher = WebhookDispatcher(
        engine,
        max_attempts=api.webhook_max_attempts,
        backoff_s=api.webhook_backoff_s,
        backoff_max_s=api.webhook_backoff_max_s,
        timeout_s=api.webhook_timeout_s,
    )
    context = ApiContext(
        settings=settings,
        engine=engine,
        store=store,
        clock=clock,
        jwt_secret=_jwt_secret(settings),
        vending=service,
        prepay=SmartPrepay(engine, store, port=command_port, event_sink=sink),
        limiter=TokenBucketLimiter(api.rate_limit_per_s, api.rate_limit_burst),
        dispatcher=dispatcher,
        command_port=command_port,
        network=network,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(dispatcher.run()) if run_webhooks else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="meterstack",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.context = context
    install_problem_handlers(app)

    for module in (auth, meters, vending, tariffs, analytics):
        app.include_router(module.router)

    app.add_middleware(RateLimitMiddleware, context=context)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Register the Problem schema for the $refs of the error responses.
    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
                .get("$defs", {})
                .items()
            ):
                schemas.setdefault(name, definition)
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            problem.pop("$defs", None)
            schemas["Problem"] = problem
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    static = (api.static_dir or STATIC_DIR).resolve()

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        """plotly.js, the dashboard's charting library, from the installed plotly package."""
        return Response(
            PLOTLY_JS.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/{path:webpath}", include_in_schema=False)
    def web(path: str, request: Request) -> Response:
        """The dashboard's files (a route that never matches ``/api``, not a mount, so that
        a wrong method on an API path is answered 405 with that path's own methods)."""
        target = (static / path).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(static) or not target.is_file():
            return problem_response(request, 404, f"no page at /{path}")
        return FileResponse(target)

    return app
