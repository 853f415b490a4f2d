"""Task rules: ownership, filters, sorting, status bookkeeping and tags."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Text,
    and_,
    case,
    func,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from api.errors import ForbiddenError, InvalidFieldError, NotFoundError, PreconditionFailedError
from api.extensions import db
from api.models import MAX_ID, EventType, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.pagination import Page
from api.services import events, notifications
from api.services.sql import insert_missing

# Enum columns sort by meaning, not alphabetically.
_RANK_OF = {
    "status": {s.value: i for i, s in enumerate(TaskStatus)},
    "priority": {p.value: i for i, p in enumerate(TaskPriority)},
}
_RANKS: dict[str, ColumnElement[Any]] = {
    name: case(ranks, value=getattr(Task, name)) for name, ranks in _RANK_OF.items()
}
_SORT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": Task.id,  # type: ignore[dict-item]
    "title": Task.title,  # type: ignore[dict-item]
    "due_date": Task.due_date,  # type: ignore[dict-item]
    "created_at": Task.created_at,  # type: ignore[dict-item]
    "updated_at": Task.updated_at,  # type: ignore[dict-item]
    **_RANKS,
}


def _now() -> datetime:
    return datetime.now(UTC)


def overdue() -> ColumnElement[bool]:
    """Past due and not completed. Spelled out for NULLs: a task with no due date is never
    overdue."""
    return (
        Task.due_date.is_not(None)
        & (Task.due_date < _now())
        & (Task.status != TaskStatus.COMPLETED.value)
    )


def task_filters(user: User, query: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The conditions that select the tasks `user` may see (admins: everyone's) that match
    the filters in `query`; listTasks and reports share them."""
    conditions: list[ColumnElement[bool]] = []
    owner_id = query.get("owner_id")
    if owner_id is not None and not user.is_admin:
        raise ForbiddenError("Only admins can filter by owner_id.")
    if not user.is_admin:
        conditions.append(Task.owner_id == user.id)
    elif owner_id is not None:
        conditions.append(Task.owner_id == owner_id)
    if query.get("status"):
        conditions.append(Task.status.in_(query["status"]))
    if query.get("priority"):
        conditions.append(Task.priority.in_(query["priority"]))
    if "tag" in query:
        conditions.append(Task.tags.any(Tag.name == query["tag"]))
    if "q" in query:
        conditions.append(
            or_(
                Task.title.icontains(query["q"], autoescape=True),
                Task.description.icontains(query["q"], autoescape=True),
            )
        )
    if "due_before" in query:
        conditions.append(Task.due_date < query["due_before"])
    if "due_after" in query:
        conditions.append(Task.due_date > query["due_after"])
    if "overdue" in query:
        conditions.append(overdue() if query["overdue"] else not_(overdue()))
    return conditions


class _JSONList(TypeDecorator[list[Any]]):
    """A JSON array computed by the query: text on SQLite, already decoded on PostgreSQL
    (where an aggregate over no rows is NULL)."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> list[Any]:
        if value is None:
            return []
        return list(orjson.loads(value)) if isinstance(value, str | bytes) else list(value)


def _tag_names(dialect: str, page: FromClause) -> ColumnElement[Any]:
    """The tag names of each task of `page`, alphabetical, as one JSON array (a subquery
    correlated to the page's rows only: never run for rows that OFFSET skips)."""
    linked = task_tags.c.task_id == page.c.id
    if dialect == "postgresql":
        names = (
            select(func.json_agg(aggregate_order_by(Tag.name, Tag.name)))
            .join(task_tags, task_tags.c.tag_id == Tag.id)
            .where(linked)
        )
    else:  # SQLite before 3.44 has no ORDER BY in aggregates: aggregate an ordered list
        ordered = (
            select(Tag.name)
            .join(task_tags, task_tags.c.tag_id == Tag.id)
            .where(linked)
            .order_by(Tag.name)
            .correlate(page)
            .subquery()
        )
        names = select(func.json_group_array(ordered.c.name))
    return type_coerce(names.scalar_subquery(), _JSONList())


# Task attributes that are not columns, and the SQL that computes each for a page.
_COMPUTED: dict[str, Callable[[str, FromClause], ColumnElement[Any]]] = {"tag_names": _tag_names}


def _columns(attributes: tuple[str, ...], dialect: str, rows: FromClause) -> list[Any]:
    """The SQL for each attribute, read from `rows`: a column, or computed (`_COMPUTED`)."""
    return [
        _COMPUTED[name](dialect, rows).label(name) if name in _COMPUTED else rows.c[name]
        for name in attributes
    ]


@cache
def _table_columns(attributes: tuple[str, ...], dialect: str) -> tuple[Any, ...]:
    # Built once per shape: building SQL expressions costs more than running this query.
    return tuple(_columns(attributes, dialect, Task.__table__))


def _ordering(keys: list[tuple[str, bool]], columns: Any) -> list[ColumnElement[Any]]:
    """ORDER BY `keys` over `columns` (the table's, or a subquery's)."""
    order = []
    for name, descending in keys:
        column = case(_RANK_OF[name], value=columns[name]) if name in _RANK_OF else columns[name]
        order.append(column.desc() if descending else column.asc())
    return order


def _sort_keys(query: dict[str, Any]) -> list[tuple[str, bool]]:
    """The query's sort, with ties broken by id (unless it sorts by id already)."""
    keys: list[tuple[str, bool]] = query["sort"]
    return keys if any(name == "id" for name, _ in keys) else [*keys, ("id", False)]


def list_tasks(user: User, query: dict[str, Any], attributes: tuple[str, ...]) -> Page:
    """The tasks `user` may see that match `query`, one page of them, as rows that carry
    `attributes` (and the sort keys), read in one statement: the page, its total and its
    tags. No ORM objects are built: the rows go straight to a compiled dumper.

    `page` skips rows (OFFSET: the deeper, the slower); `after` continues from a cursor
    (keyset: every page costs the same). Either way the page carries the cursor of its
    last row, so a client can switch to keyset paging at any point.
    """
    conditions = task_filters(user, query)
    keys = _sort_keys(query)
    page, per_page = query["page"], query["per_page"]
    wanted = tuple(dict.fromkeys([*attributes, *(name for name, _ in keys)]))
    table = Task.__table__.c
    # The total of the whole filtered list (cursor or not) as an uncorrelated subquery:
    # computed once per statement, where a window count would sort every matching row.
    total = (
        select(func.count()).select_from(Task).where(*conditions).correlate(None)
    ).scalar_subquery()
    dialect = db.session.get_bind().dialect.name
    keyset = "after" in query
    skipped = 0 if keyset else (page - 1) * per_page
    if skipped == 0:  # the first page, or any page after a cursor: nothing to skip
        stmt = (
            select(*_table_columns(wanted, dialect), total.label("total"))
            .where(*conditions)
            .order_by(*_ordering(keys, table))
            .limit(per_page)
        )
        if keyset:
            stmt = stmt.where(_after(keys, _decode_cursor(query, keys)))
    else:
        # The page first, then its tags: computed in the SELECT list, they would be
        # computed for every row that OFFSET skips too.
        found = (
            select(*(table[name] for name in wanted if name not in _COMPUTED), total.label("total"))
            .where(*conditions)
            .order_by(*_ordering(keys, table))
            .limit(per_page)
            .offset(skipped)
            .subquery("page")
        )
        stmt = select(*_columns(wanted, dialect, found), found.c.total).order_by(
            *_ordering(keys, found.c)
        )
    rows = db.session.execute(stmt).all()
    if rows:
        count = int(rows[0].total)
    elif page == 1 and not keyset:
        count = 0
    else:  # past the end: no row brought the total along
        count = db.session.scalar(select(func.count(Task.id)).where(*conditions)) or 0
    items = list(rows)
    cursor = (
        _encode_cursor(keys, items[-1]) if len(items) == per_page and _keyset_ok(keys) else None
    )
    return Page(items, page, per_page, count, keyset=True, next_cursor=cursor)


# --- keyset cursors ----------------------------------------------------------------------

# A nullable sort key has no single place for NULL on every backend: no cursor for it.
_NULLABLE_SORT_KEYS = frozenset({"due_date"})
_DATETIME_KEYS = frozenset({"created_at", "updated_at"})


def _keyset_ok(keys: list[tuple[str, bool]]) -> bool:
    return not any(name in _NULLABLE_SORT_KEYS for name, _ in keys)


def _key_value(task: Any, name: str) -> Any:
    value = getattr(task, name)
    if name in _RANK_OF:
        return _RANK_OF[name][value]
    return value.isoformat() if name in _DATETIME_KEYS else value


def _encode_cursor(keys: list[tuple[str, bool]], task: Any) -> str:
    signature = ",".join(("-" if d else "") + n for n, d in keys)
    payload = [signature, [_key_value(task, name) for name, _ in keys]]
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode_cursor(query: dict[str, Any], keys: list[tuple[str, bool]]) -> list[Any]:
    """The sort values a cursor carries, checked against this query's sort."""
    if not _keyset_ok(keys):
        raise InvalidFieldError(
            "after", "A cursor cannot follow a sort by due_date; use page.", location="query"
        )
    signature = ",".join(("-" if d else "") + n for n, d in keys)
    try:
        found, values = json.loads(base64.urlsafe_b64decode(query["after"].encode()))
        if found != signature or len(values) != len(keys):
            raise ValueError(found)
        return [
            datetime.fromisoformat(value) if name in _DATETIME_KEYS else value
            for (name, _), value in zip(keys, values, strict=True)
        ]
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidFieldError(
            "after", "Not a cursor of this listing (same filters and sort).", location="query"
        ) from error


def _after(keys: list[tuple[str, bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows after `values` in the order `keys`: (a, b) > (x, y) spelled out per direction."""
    clauses = []
    for i, (name, descending) in enumerate(keys):
        column = _SORT_COLUMNS[name]
        equal = [_SORT_COLUMNS[n] == v for (n, _), v in zip(keys[:i], values[:i], strict=True)]
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def get_owned_task(user: User, task_id: int) -> Task:
    """The task, if `user` owns it or is an admin; otherwise 404 (never 403: no oracle)."""
    task = db.session.get(Task, task_id) if 0 < task_id <= MAX_ID else None
    if task is None or (task.owner_id != user.id and not user.is_admin):
        raise NotFoundError(f"Task {task_id} does not exist.")
    return task


def _tags(names: list[str]) -> list[Tag]:
    """Get or create tags by name, safe against a concurrent insert of the same name."""
    if not names:
        return []
    insert_missing(Tag, [{"name": name} for name in names], "name")
    by_name = {tag.name: tag for tag in db.session.scalars(select(Tag).where(Tag.name.in_(names)))}
    return [by_name[name] for name in names]


def _apply(task: Task, changes: dict[str, Any], now: datetime) -> None:
    # One UPDATE per change: no flush half-way (which would bump `version` twice).
    with db.session.no_autoflush:
        for name, value in changes.items():
            if name == "tags":
                task.tags = _tags(value)
            else:
                setattr(task, name, value)
    if "status" in changes:
        if task.status == TaskStatus.COMPLETED.value:
            task.completed_at = task.completed_at or now
        else:
            task.completed_at = None
    # Always touch the row, so a tags-only change still bumps `version`.
    task.updated_at = now


def _commit() -> None:
    _stale_is_412(db.session.commit)


def _flush() -> None:
    # Before recording the change's event: the UPDATE's version check runs here.
    _stale_is_412(db.session.flush)


def _stale_is_412(write: Callable[[], None]) -> None:
    try:
        write()
    except StaleDataError:
        db.session.rollback()
        raise PreconditionFailedError(
            "The task changed during this request; fetch it and retry."
        ) from None


def create_task(user: User, data: dict[str, Any]) -> Task:
    now = _now()
    task = Task(owner_id=user.id, created_at=now)
    _apply(task, data, now)
    db.session.add(task)
    db.session.flush()
    events.record(EventType.TASK_CREATED, user.id, events.task_data(task))
    _commit()
    notifications.task_created(user, task)
    return task


def update_task(task: Task, changes: dict[str, Any]) -> Task:
    """Change some fields (PATCH, and PUT with a whole task)."""
    status_before = task.status
    _apply(task, changes, _now())
    _flush()
    events.record_task_change(task, changes, status_before)
    _commit()
    return task


def delete_task(task: Task) -> None:
    events.record(EventType.TASK_DELETED, task.owner_id, {"id": task.id})
    db.session.delete(task)
    _commit()


def list_tags(user: User) -> list[dict[str, Any]]:
    """The tags on `user`'s own tasks, with how many tasks carry each."""
    count = func.count(task_tags.c.task_id)
    rows = db.session.execute(
        select(Tag.name, count.label("task_count"))
        .join(task_tags, task_tags.c.tag_id == Tag.id)
        .join(Task, Task.id == task_tags.c.task_id)
        .where(Task.owner_id == user.id)
        .group_by(Tag.name)
        .order_by(Tag.name)
    )
    return [{"name": name, "task_count": n} for name, n in rows]
