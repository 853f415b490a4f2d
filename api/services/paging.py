"""The one pagination engine: every list (tasks, users, API keys, jobs, webhooks and their
deliveries, attachments) is a `Listing` paged by `fetch_page`.

A page and its total come in one statement: the total is an uncorrelated subquery,
computed once per statement (a window count would sort every matching row). The statement
is built once per shape (which filters, which sort, which kind of page, which columns) with
bound parameters for every value, and run with each request's values: building SQL costs
more than running a page query on SQLite.

A page is reached by `page` (OFFSET: the deeper, the slower) or, for listings that take it,
by `after`, a keyset cursor (every page costs the same). A keyset page carries the cursor
of its last row, signed with the app's secret and bound to its listing and sort, so a
client can switch to keyset paging at any point and nobody can forge a cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Result,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.types import TypeDecorator

from api.errors import InvalidFieldError
from api.extensions import db
from api.pagination import Page

# A listing's sort: (column name, descending) pairs; ties are always broken by id.
SortKeys = tuple[tuple[str, bool], ...]
# A filter: a condition on the value its name is given (`value(name)`): a bound parameter
# in a page's statement, the value itself in `Listing.conditions`.
Value = Callable[[str], Any]
Filter = Callable[[Value], ColumnElement[bool]]
# An attribute that is not a column: the SQL that computes it for each row of `rows`.
Computed = Callable[[str, FromClause], ColumnElement[Any]]

LIKE_ESCAPE = "/"


def like_escaped(text: str) -> str:
    """`text` matched literally by LIKE (with `escape=LIKE_ESCAPE`): wildcards escaped."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


@dataclass(frozen=True, eq=False)
class Listing:
    """What one kind of list pages over, declared next to the service that owns it."""

    name: str  # also signs its cursors: a cursor of another listing is refused
    model: Any
    filters: Mapping[str, Filter] = field(default_factory=dict)
    # Filters whose value is a list (any of several values).
    lists: frozenset[str] = frozenset()
    # Enum columns that sort by meaning, not alphabetically: value -> rank.
    ranks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    computed: Mapping[str, Computed] = field(default_factory=dict)
    # Whether its query takes `after` (and its pages say `next_cursor`).
    keyset: bool = False

    def conditions(self, where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
        """The filters named in `where`, with their values (for other statements)."""
        return [self.filters[name](where.__getitem__) for name in where]

    def sort_column(self, name: str, columns: Any = None) -> ColumnElement[Any]:
        """The expression a sort key orders by, over `columns` (default: the table's)."""
        column = (self.model.__table__.c if columns is None else columns)[name]
        return case(self.ranks[name], value=column) if name in self.ranks else column


def fetch_page(
    listing: Listing,
    query: Mapping[str, Any],
    sort: SortKeys,
    where: Mapping[str, Any],
    attributes: tuple[str, ...] | None = None,
) -> Page:
    """One page (`query["page"]` or `query["after"]`, `query["per_page"]`) of `listing`,
    filtered by `where` (filter name -> value), sorted by `sort` (then id), and its total.

    With `attributes`, the items are rows that carry them (columns, or `computed`), for a
    compiled dumper; without, they are the model's objects.
    """
    keys = sort if any(name == "id" for name, _ in sort) else (*sort, ("id", False))
    page, per_page = query["page"], query["per_page"]
    values = {**where, "limit": per_page}
    if "after" in query:
        kind = "after"
        values.update(_cursor_params(_decode_cursor(listing, keys, query["after"])))
    elif page > 1:
        kind = "offset"
        values["offset"] = (page - 1) * per_page
    else:
        kind = "first"
    execute: Callable[..., Result[Any]]
    if attributes is None:
        statements = _statements(listing, tuple(where), keys, kind, None, "")
        execute = db.session.execute
    else:
        # Core, not the ORM session's execute: rows, not objects, and no ORM compile step.
        connection = db.session.connection()
        wanted = tuple(dict.fromkeys([*attributes, *(name for name, _ in keys)]))
        dialect = connection.dialect.name
        statements = _statements(listing, tuple(where), keys, kind, wanted, dialect)
        execute = connection.execute
    rows = execute(statements.page, values).all()
    items = list(rows) if attributes is not None else [row[0] for row in rows]
    if rows:
        total = int(rows[-1].total)
    elif kind == "first":
        total = 0
    else:  # past the end: no row brought the total along
        total = int(execute(statements.count, values).scalar_one())
    cursor = None
    if listing.keyset and len(rows) == per_page and _keyset_ok(listing, keys):
        cursor = _encode_cursor(listing, keys, items[-1])
    return Page(items, page, per_page, total, keyset=listing.keyset, next_cursor=cursor)


@dataclass(frozen=True, slots=True)
class _Statements:
    page: Select[Any]  # the page's rows, each with the total
    count: Select[Any]  # the total alone (for a page past the end, which brings no row)


@lru_cache(maxsize=512)
def _statements(
    listing: Listing,
    filters: tuple[str, ...],
    keys: SortKeys,
    kind: str,
    wanted: tuple[str, ...] | None,
    dialect: str,
) -> _Statements:
    """The statements of one shape of `listing`'s pages, on bound parameters."""
    conditions = [
        listing.filters[name](lambda n: bindparam(n, expanding=n in listing.lists))
        for name in filters
    ]
    table = listing.model.__table__
    count = select(func.count()).select_from(table).where(*conditions)
    total = count.correlate(None).scalar_subquery().label("total")
    order = _ordering(listing, keys, table.c)
    if wanted is None:
        page = select(listing.model, total).where(*conditions).order_by(*order)
    elif kind == "offset" and listing.computed:
        # The page first, then its computed columns: in the SELECT list, they would be
        # computed for every row that OFFSET skips too.
        found = (
            select(*(table.c[name] for name in wanted if name not in listing.computed), total)
            .where(*conditions)
            .order_by(*order)
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
            .subquery("page")
        )
        page = select(*_columns(listing, wanted, dialect, found), found.c.total)
        return _Statements(page.order_by(*_ordering(listing, keys, found.c)), count)
    else:
        page = select(*_columns(listing, wanted, dialect, table), total)
        page = page.where(*conditions).order_by(*order)
    page = page.limit(bindparam("limit"))
    if kind == "offset":
        page = page.offset(bindparam("offset"))
    elif kind == "after":
        page = page.where(_after(listing, keys))
    return _Statements(page, count)


def _columns(
    listing: Listing, attributes: tuple[str, ...], dialect: str, rows: FromClause
) -> list[Any]:
    """The SQL for each attribute, read from `rows`: a column, or computed."""
    computed = listing.computed
    return [
        computed[name](dialect, rows).label(name) if name in computed else rows.c[name]
        for name in attributes
    ]


def _ordering(listing: Listing, keys: SortKeys, columns: Any) -> list[ColumnElement[Any]]:
    order: list[ColumnElement[Any]] = []
    for name, descending in keys:
        column = listing.sort_column(name, columns)
        order.append(column.desc() if descending else column.asc())
    return order


def _after(listing: Listing, keys: SortKeys) -> ColumnElement[bool]:
    """Rows after the cursor's values (bound as `after_0`, `after_1`, ...) in the order
    `keys`: (a, b) > (x, y) spelled out per direction."""
    values: list[Any] = [bindparam(f"after_{i}") for i in range(len(keys))]
    columns = [listing.sort_column(name) for name, _ in keys]
    clauses = []
    for i, (_, descending) in enumerate(keys):
        equal = [column == value for column, value in zip(columns[:i], values[:i], strict=True)]
        beyond = columns[i] < values[i] if descending else columns[i] > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


# --- keyset cursors ----------------------------------------------------------------------


def _nullable(listing: Listing, name: str) -> bool:
    # A nullable sort key has no single place for NULL on every backend: no cursor for it.
    return bool(listing.model.__table__.c[name].nullable)


def _keyset_ok(listing: Listing, keys: SortKeys) -> bool:
    return not any(_nullable(listing, name) for name, _ in keys)


def _python_type(listing: Listing, name: str) -> type:
    column_type = listing.model.__table__.c[name].type
    if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime: its impl's type
        column_type = column_type.impl_instance
    python_type: type = column_type.python_type
    return python_type


def _key_type(listing: Listing, name: str) -> type:
    """What a sort key's value is in a cursor: ranks are ints, timestamps ISO strings."""
    if name in listing.ranks:
        return int
    python_type = _python_type(listing, name)
    return str if python_type is datetime else python_type


def _key_value(listing: Listing, row: Any, name: str) -> Any:
    value = getattr(row, name)
    if name in listing.ranks:
        return listing.ranks[name][value]
    return value.isoformat() if isinstance(value, datetime) else value


def _signature(keys: SortKeys) -> str:
    return ",".join(("-" if descending else "") + name for name, descending in keys)


@lru_cache(maxsize=64)
def _serializer(secret: str, listing: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"{listing}-cursor")


def _cursor_serializer(listing: Listing) -> URLSafeSerializer:
    # Signed with the app's secret: a cursor the server did not mint is refused before any
    # of its values reach a query (where a wrong type would be a 500 on PostgreSQL).
    return _serializer(current_app.config["SECRET_KEY"], listing.name)


def _encode_cursor(listing: Listing, keys: SortKeys, row: Any) -> str:
    values = [_key_value(listing, row, name) for name, _ in keys]
    return str(_cursor_serializer(listing).dumps([_signature(keys), values]))


def _decode_cursor(listing: Listing, keys: SortKeys, cursor: str) -> list[Any]:
    """The sort values a cursor carries: signed by this server, for this listing and sort,
    each of its key's type. Anything else is a 422 naming `after`."""
    empty = [name for name, _ in keys if _nullable(listing, name)]
    if empty:
        raise InvalidFieldError(
            "after", f"A cursor cannot follow a sort by {empty[0]}; use page.", location="query"
        )
    try:
        found, values = _cursor_serializer(listing).loads(cursor)
        if found != _signature(keys) or not isinstance(values, list) or len(values) != len(keys):
            raise ValueError(found)
        return [
            _cursor_value(listing, name, value)
            for (name, _), value in zip(keys, values, strict=True)
        ]
    except (BadSignature, ValueError, TypeError) as error:
        raise InvalidFieldError(
            "after", "Not a cursor of this listing (same filters and sort).", location="query"
        ) from error


def _cursor_value(listing: Listing, name: str, value: Any) -> Any:
    """One sort value, type-checked (the signature already vouches for it: a second line
    of defence, should the secret leak)."""
    expected = _key_type(listing, name)
    if type(value) is not expected or (isinstance(value, str) and "\x00" in value):
        raise TypeError(name)
    if isinstance(value, str) and _python_type(listing, name) is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(name)
        return parsed
    return value


def _cursor_params(values: list[Any]) -> dict[str, Any]:
    return {f"after_{i}": value for i, value in enumerate(values)}
