"""Page pagination: ``?page=N&page_size=M``, answered with the items, the total and links
(``self``, ``first``, ``prev``, ``next``, ``last``), also sent as an RFC 8288 ``Link``
header."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel

__all__ = ["Page", "PageLinks", "PageParams", "page_params", "paginate"]

T = TypeVar("T")


class PageLinks(BaseModel):
    self: str
    first: str
    last: str
    prev: str | None = None
    next: str | None = None


class Page(BaseModel, Generic[T]):
    """One page of a collection."""

    items: list[T]
    page: int
    page_size: int
    total: int
    links: PageLinks


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def page_params(
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")] = 1,
    page_size: Annotated[
        int | None, Query(ge=1, le=1000, description="items per page (default 50)")
    ] = None,
) -> PageParams:
    settings = request.app.state.context.settings.api
    size = page_size or settings.page_size
    return PageParams(page, min(size, settings.max_page_size))


def paginate(
    request: Request, response: Response, params: PageParams, items: list[T], total: int
) -> Page[T]:
    """Build the page and its links (and the ``Link`` header)."""
    last = max(1, math.ceil(total / params.page_size))

    def url(page: int) -> str:
        return str(request.url.include_query_params(page=page, page_size=params.page_size))

    links = PageLinks(
        self=url(params.page),
        first=url(1),
        last=url(last),
        prev=url(params.page - 1) if params.page > 1 else None,
        next=url(params.page + 1) if params.page < last else None,
    )
    response.headers["Link"] = ", ".join(
        f'<{href}>; rel="{rel}"'
        for rel, href in links.model_dump().items()
        if href is not None and rel != "self"
    )
    return Page[T](
        items=items, page=params.page, page_size=params.page_size, total=total, links=links
    )
