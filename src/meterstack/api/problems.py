"""RFC 9457 problem details: every error of the API is an ``application/problem+json``
document with ``type``, ``title``, ``status``, ``detail`` and ``instance``.

``type`` is a relative URI under ``/problems/`` naming the kind of problem
(``/problems/forbidden``, ``/problems/validation``...); a validation problem adds
``errors`` (each with ``field`` and ``reason``), a refusal of bad input adds ``field``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from meterstack.core.errors import (
    CommandRefusedError,
    ConfigError,
    InvalidInputError,
    MeterstackError,
    StoreError,
)
from meterstack.vending.errors import (
    NotFoundError,
    PermissionRefusedError,
    RequestConflictError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "FieldProblem",
    "Problem",
    "ProblemError",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger("meterstack.api")


class FieldProblem(BaseModel):
    """One field that failed validation."""

    field: str
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem details document."""

    type: str = Field(description="URI reference naming the kind of problem")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong this time")
    instance: str = Field(description="the request path")
    field: str | None = Field(default=None, description="the input at fault, if one")
    errors: list[FieldProblem] | None = Field(default=None, description="validation failures")


_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict with the current state"),
    422: ("validation", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        default_slug, default_title = _TITLES.get(status, ("error", "Error"))
        self.status = status
        self.detail = detail
        self.slug = slug or default_slug
        self.title = title or default_title
        self.headers = headers or {}
        self.field = field


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    default_slug, default_title = _TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": f"/problems/{slug or default_slug}",
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if extra:
        body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _problem_content(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


#: The refusals any operation may answer with, for ``responses=`` in the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_content("Bad request"),
    401: _problem_content("No valid bearer token or API key"),
    403: _problem_content("The caller's role or ownership does not allow it"),
    404: _problem_content("No such resource"),
    409: _problem_content("Refused in the current state"),
    422: _problem_content("Invalid input"),
    429: _problem_content("Rate limit exceeded (see Retry-After)"),
    503: _problem_content("A store or secret is not available"),
}


def _status_of(exc: MeterstackError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionRefusedError):
        return 403
    if isinstance(exc, RequestConflictError | CommandRefusedError):
        return 409
    if isinstance(exc, InvalidInputError):
        return 422
    if isinstance(exc, ConfigError | StoreError):
        return 503
    return 400


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path."""
    app = request.app
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "allowed_methods", None
    )
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), {m.upper() for m in operations}))
        app.state.allowed_methods = table
    methods: set[str] = set()
    for regex, verbs in table:
        if regex.match(request.url.path):
            methods |= verbs
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error into a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            headers=exc.headers,
            extra={"field": exc.field},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(part) for part in err.get("loc", ())),
                "reason": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(request, 422, detail or "invalid input", extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route of the path; a path has one per method.
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
        return problem_response(request, exc.status_code, detail, headers=headers or None)

    @app.exception_handler(MeterstackError)
    async def _ours(request: Request, exc: MeterstackError) -> JSONResponse:
        status = _status_of(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidInputError):
            extra["field"] = exc.field
        return problem_response(request, status, str(exc), extra=extra)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error on %s", request.url.path)
        return problem_response(request, 500, "an unexpected error occurred; it was logged")
