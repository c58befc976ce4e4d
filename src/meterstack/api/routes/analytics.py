"""Grid analytics: outages and reliability indices, the theft inspection list, power quality.

``POST /analytics/run`` reads a period from the stores for the network model the server
was started with (``meterstack serve --network FILE``) and keeps the report;
``GET /analytics/report`` answers the latest one (a run from ``meterstack analytics run``
on the same data directory counts too). Its long lists come a page at a time from
``GET /analytics/report/{section}``; the report itself carries the first ``preview`` items
of each and their totals.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from meterstack.analytics.from_store import assemble
from meterstack.api.context import ApiContext, Context, require_roles
from meterstack.api.pagination import Page, PageParams, page_params, paginate
from meterstack.api.problems import PROBLEM_RESPONSES, ProblemError
from meterstack.api.security import Principal
from meterstack.core.config import Settings
from meterstack.core.errors import StoreError

__all__ = ["SECTIONS", "load_report", "report_path", "router", "save_report"]

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"], responses=PROBLEM_RESPONSES)
Staff = Annotated[Principal, Depends(require_roles("admin", "operator"))]
Pages = Annotated[PageParams, Depends(page_params)]

#: The report's long lists, by the name their pages are read under: where each sits.
SECTIONS: dict[str, tuple[str, ...]] = {
    "outages": ("outages",),
    "inspection": ("inspection",),
    "non-compliant": ("pq", "non_compliant"),
    "overloaded": ("pq", "overloaded"),
    "energy-balance": ("energy_balance",),
}
DEFAULT_DAYS = 28
MAX_DAYS = 400


def report_path(settings: Settings) -> Path:
    """Where the latest report is kept, beside the embedded stores."""
    return settings.data_dir / "analytics" / "latest.json"


def save_report(settings: Settings, report: dict[str, Any]) -> Path:
    """Write the report atomically (a reader never sees half a file)."""
    path = report_path(settings)
    partial = path.with_suffix(".json.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(report, allow_nan=False), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise StoreError(f"cannot write the analytics report {path}: {exc}") from exc
    return path


def load_report(settings: Settings) -> dict[str, Any] | None:
    """The saved report, or None if there is none (or it cannot be read)."""
    path = report_path(settings)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _section(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    node: Any = report
    for key in SECTIONS[name]:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, list) else []


def _latest(ctx: ApiContext) -> dict[str, Any]:
    report = ctx.analytics_report or load_report(ctx.settings)
    if report is None:
        raise ProblemError(
            404,
            "no grid analytics report yet: POST /api/v1/analytics/run, or run "
            "`meterstack analytics run --network FILE`",
            slug="no-report",
        )
    return report


def _summary(report: dict[str, Any], preview: int) -> dict[str, Any]:
    """The report with each long list cut to its first ``preview`` items, and the totals."""
    out: dict[str, Any] = copy.deepcopy(report)
    totals = {}
    for name, where in SECTIONS.items():
        items = _section(report, name)
        totals[name] = len(items)
        parent = out
        for key in where[:-1]:
            parent = parent[key]
        if where[-1] in parent:
            parent[where[-1]] = items[:preview]
    out["totals"] = totals
    return out


Preview = Annotated[
    int, Query(ge=0, le=1000, description="items of each list to include (the rest are paged)")
]


@router.get("/report", response_model=dict[str, Any])
def get_report(ctx: Context, _: Staff, preview: Preview = 20) -> dict[str, Any]:
    """The latest report: period, reliability indices (IEEE 1366 SAIFI, SAIDI, CAIDI,
    MAIFI), and the first ``preview`` outages, suspects, EN 50160 non-compliant meters,
    overloaded transformers and transformer balances, with each list's total."""
    return _summary(_latest(ctx), preview)


@router.get("/report/{section}", response_model=Page[dict[str, Any]])
def get_report_section(
    ctx: Context,
    request: Request,
    response: Response,
    section: str,
    _: Staff,
    params: Pages,
) -> Page[dict[str, Any]]:
    """One list of the latest report, a page at a time: ``outages``, ``inspection``
    (ranked), ``non-compliant``, ``overloaded`` or ``energy-balance``."""
    if section not in SECTIONS:
        raise ProblemError(404, f"no section {section!r}; the sections are {', '.join(SECTIONS)}")
    items = _section(_latest(ctx), section)
    page = items[params.offset : params.offset + params.page_size]
    return paginate(request, response, params, page, len(items))


class RunIn(BaseModel):
    """The period to analyse, ``(start, end]``; times need a UTC offset."""

    start: datetime | None = Field(default=None, description=f"default: end - {DEFAULT_DAYS} days")
    end: datetime | None = Field(default=None, description="default: now")


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ProblemError(422, f"{field} needs a UTC offset (e.g. Z)", field=field)
    return value.astimezone(UTC)


@router.post("/run", response_model=dict[str, Any])
def run_analytics(
    ctx: Context,
    principal: Staff,
    start: Annotated[datetime | None, Query(description="start of the period (ISO 8601)")] = None,
    end: Annotated[datetime | None, Query(description="end of the period (ISO 8601)")] = None,
    body: Annotated[RunIn | None, Body()] = None,
    preview: Preview = 20,
) -> dict[str, Any]:
    """Run outage, theft and power-quality analytics over a period (query or JSON body:
    ``start``, ``end``; default the last 28 days) on the server's network model, keep the
    report and answer it as ``GET /report`` does."""
    if ctx.network is None:
        raise ProblemError(
            409,
            "the server has no network model: start it with "
            "`meterstack serve --network FILE` (a CSV of meter, transformer, feeder)",
            slug="no-network",
        )
    given_start = _aware(body.start if body and body.start else start, "start")
    given_end = _aware(body.end if body and body.end else end, "end")
    period_end = given_end or ctx.clock.now().astimezone(UTC)
    period_start = given_start or period_end - timedelta(days=DEFAULT_DAYS)
    if period_end <= period_start:
        raise ProblemError(
            422,
            f"end {period_end.isoformat()} is not after start {period_start.isoformat()}",
            field="end",
        )
    if period_end - period_start > timedelta(days=MAX_DAYS):
        raise ProblemError(422, f"the period is longer than {MAX_DAYS} days", field="start")
    with ctx.intervals() as store:
        inputs = assemble(ctx.network, store, ctx.engine, start=period_start, end=period_end)
    report = inputs.analyse().to_dict()
    report["generated_at"] = ctx.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report["generated_by"] = principal.actor
    ctx.analytics_report = report
    save_report(ctx.settings, report)
    return _summary(report, preview)
