"""Task rules: ownership, filters, sorting, status bookkeeping and tags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
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

from api import clock
from api.errors import (
    ConflictError,
    ForbiddenError,
    InvalidFieldError,
    NotFoundError,
    PreconditionFailedError,
)
from api.extensions import db
from api.models import MAX_ID, EventType, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.pagination import Page
from api.services import attachments, events, notifications
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


def overdue() -> ColumnElement[bool]:
    """Past due and not completed. Spelled out for NULLs: a task with no due date is never
    overdue."""
    return (
        Task.due_date.is_not(None)
        & (Task.due_date < clock.now())
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


def _signature(keys: list[tuple[str, bool]]) -> str:
    return ",".join(("-" if d else "") + n for n, d in keys)


def _cursor_serializer() -> URLSafeSerializer:
    # Signed with the app's secret: a cursor the server did not mint is refused before any
    # of its values reach a query (where a wrong type would be a 500 on PostgreSQL).
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="tasks-cursor")


def _encode_cursor(keys: list[tuple[str, bool]], task: Any) -> str:
    return str(
        _cursor_serializer().dumps([_signature(keys), [_key_value(task, n) for n, _ in keys]])
    )


# What each sort key's value must be in a cursor (ranks are ints, timestamps ISO strings).
_KEY_TYPES: dict[str, type] = {"id": int, "title": str, "status": int, "priority": int}


def _decode_cursor(query: dict[str, Any], keys: list[tuple[str, bool]]) -> list[Any]:
    """The sort values a cursor carries: signed by this server, for this sort, each of its
    key's type. Anything else is a 422 naming `after`."""
    if not _keyset_ok(keys):
        raise InvalidFieldError(
            "after", "A cursor cannot follow a sort by due_date; use page.", location="query"
        )
    try:
        found, values = _cursor_serializer().loads(query["after"])
        if found != _signature(keys) or not isinstance(values, list) or len(values) != len(keys):
            raise ValueError(found)
        return [_cursor_value(name, value) for (name, _), value in zip(keys, values, strict=True)]
    except (BadSignature, ValueError, TypeError) as error:
        raise InvalidFieldError(
            "after", "Not a cursor of this listing (same filters and sort).", location="query"
        ) from error


def _cursor_value(name: str, value: Any) -> Any:
    """One sort value, type-checked (the signature already vouches for it: a second line
    of defence, should the secret leak)."""
    if name in _DATETIME_KEYS:
        if not isinstance(value, str):
            raise TypeError(name)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(name)
        return parsed
    expected = _KEY_TYPES[name]
    if type(value) is not expected or (isinstance(value, str) and "\x00" in value):
        raise TypeError(name)
    return value


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


# A change sent without If-Match that loses a race to a concurrent change is applied again
# on the new version, this many times in all; a task changing faster than that is a 409.
BLIND_WRITE_ATTEMPTS = 3
_CHANGED_DURING = "The task changed during this request; fetch it and retry."


def _commit() -> None:
    """Commit; a concurrent change to a version-checked row is a 412 (the If-Match case)."""
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise PreconditionFailedError(_CHANGED_DURING) from None


def create_task(user: User, data: dict[str, Any]) -> Task:
    now = clock.now()
    task = Task(owner_id=user.id, created_at=now)
    _apply(task, data, now)
    db.session.add(task)
    db.session.flush()
    events.record(EventType.TASK_CREATED, user.id, events.task_data(task))
    _commit()
    notifications.task_created(user, task)
    return task


def _write(task: Task, conditional: bool, change: Callable[[Task], None]) -> Task:
    """Run `change` on `task` and commit, version-checked.

    `conditional` (the client sent If-Match, already checked): a concurrent change in
    between is a 412, the precondition the client asked for. Otherwise the client asked
    for no precondition, so it never gets a 412: the change is applied again to the
    task's new version (last writer wins, as a blind write means), and after
    `BLIND_WRITE_ATTEMPTS` lost races it is a 409. A task deleted meanwhile is a 404.
    """
    task_id = task.id
    for _ in range(BLIND_WRITE_ATTEMPTS):
        try:
            change(task)  # flushes: the UPDATE's version check runs there
            db.session.commit()
            return task
        except StaleDataError:
            db.session.rollback()
            if conditional:
                raise PreconditionFailedError(_CHANGED_DURING) from None
        fresh = db.session.get(Task, task_id, populate_existing=True)
        if fresh is None:
            raise NotFoundError(f"Task {task_id} does not exist.")
        task = fresh
    raise ConflictError(
        "The task kept changing while this request tried to change it; retry later."
    )


def update_task(task: Task, changes: dict[str, Any], *, conditional: bool = True) -> Task:
    """Change some fields (PATCH, and PUT with a whole task); see `_write`."""

    def change(current: Task) -> None:
        status_before = current.status
        _apply(current, changes, clock.now())
        db.session.flush()  # the version check, before the change's event is recorded
        events.record_task_change(current, changes, status_before)

    return _write(task, conditional, change)


def delete_task(task: Task, *, conditional: bool = True) -> None:
    """Delete a task with its attachments and the stored objects no other attachment
    shares; see `_write` for a concurrent change."""

    def change(current: Task) -> None:
        task_id, owner_id = current.id, current.owner_id
        gone = attachments.task_attachments(current)
        db.session.delete(current)  # the database cascades the attachment rows
        db.session.flush()  # the version check, before the events (recorded last: they lock)
        # The stored objects no other attachment shares; a store that cannot be reached
        # rolls it all back (503), so no row ever loses its bytes.
        attachments.release_objects([digest for _, digest in gone])
        for attachment_id, _ in gone:
            events.record(EventType.ATTACHMENT_DELETED, owner_id, {"id": attachment_id})
        events.record(EventType.TASK_DELETED, owner_id, {"id": task_id})

    _write(task, conditional, change)


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
