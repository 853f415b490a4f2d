"""Page bodies and their headers (`Link`, `X-Total-Count`), built once for every list."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from apiflask import Schema, fields
from flask import request


@dataclass(frozen=True)
class Page:
    """One page of a query's results, and how many results there are in all."""

    items: Sequence[Any]
    page: int
    per_page: int
    total: int
    # Lists with keyset paging (`after`) also say where the next page starts
    # (`next_cursor`, None on the last page).
    keyset: bool = False
    next_cursor: str | None = None


class ListHeaders(Schema):
    """Response headers of every paginated list (the spec describes each once:
    `api.openapi`'s shared headers)."""

    link = fields.String(data_key="Link", required=True)
    total_count = fields.Integer(data_key="X-Total-Count", required=True)


def page_url(page: int) -> str:
    """This request's URL with `page` replaced (other parameters, repeated ones too, kept)."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "page"]
    args.append(("page", str(page)))
    return f"{request.path}?{urlencode(args)}"


def cursor_url(cursor: str) -> str:
    """This request's URL continuing after `cursor` (keyset paging)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("after", "page")]
    args.append(("after", cursor))
    return f"{request.path}?{urlencode(args)}"


def paginated(page: Page) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The `{data, pagination}` body plus `Link` and `X-Total-Count` headers."""
    pages = math.ceil(page.total / page.per_page)
    keyset = "after" in request.args
    if keyset:
        next_url = cursor_url(page.next_cursor) if page.next_cursor else None
    else:
        next_url = page_url(page.page + 1) if page.page < pages else None
    prev_url = None if keyset or page.page <= 1 else page_url(min(page.page - 1, max(pages, 1)))
    links = {
        "first": page_url(1),
        "prev": prev_url,
        "next": next_url,
        "last": page_url(max(pages, 1)),
    }
    pagination: dict[str, Any] = {
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "pages": pages,
        "next": next_url,
        "prev": prev_url,
    }
    if page.keyset:
        pagination["next_cursor"] = page.next_cursor
    body = {"data": page.items, "pagination": pagination}
    headers = {
        "Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items() if url),
        "X-Total-Count": str(page.total),
    }
    return body, 200, headers
