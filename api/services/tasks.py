"""Task rules: ownership, filters, sorting, status bookkeeping and tags."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, not_, or_, select
from sqlalchemy.orm.exc import StaleDataError

from api.errors import ForbiddenError, InvalidFieldError, NotFoundError, PreconditionFailedError
from api.extensions import db
from api.models import MAX_ID, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.pagination import Page
from api.services import clock, notifications
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


def list_tasks(user: User, query: dict[str, Any]) -> Page:
    """The tasks `user` may see that match `query`, one page of them.

    `page` skips rows (OFFSET: the deeper, the slower); `after` continues from a cursor
    (keyset: every page costs the same). Either way the page carries the cursor of its
    last row, so a client can switch to keyset paging at any point.
    """
    conditions = task_filters(user, query)
    keys = [*query["sort"], ("id", False)]
    order = []
    for name, descending in keys:
        column = _SORT_COLUMNS[name]
        order.append(column.desc() if descending else column.asc())
    page, per_page = query["page"], query["per_page"]
    # The total rides along with the page (a window count over the filtered rows, before
    # LIMIT): one round trip instead of two.
    total_column = func.count().over().label("total")
    stmt = select(Task, total_column).where(*conditions).order_by(*order).limit(per_page)
    keyset = "after" in query
    if keyset:
        stmt = stmt.where(_after(keys, _decode_cursor(query, keys)))
    else:
        stmt = stmt.offset((page - 1) * per_page)
    rows = db.session.execute(stmt).all()
    items = [row[0] for row in rows]
    if rows and not keyset:
        total = int(rows[0].total)
    elif page == 1 and not keyset:
        total = 0
    else:  # past the end, or after a cursor (whose window counts only what follows it)
        total = db.session.scalar(select(func.count(Task.id)).where(*conditions)) or 0
    cursor = (
        _encode_cursor(keys, items[-1]) if len(items) == per_page and _keyset_ok(keys) else None
    )
    return Page(items, page, per_page, total, keyset=True, next_cursor=cursor)


# --- keyset cursors ----------------------------------------------------------------------

# A nullable sort key has no single place for NULL on every backend: no cursor for it.
_NULLABLE_SORT_KEYS = frozenset({"due_date"})
_DATETIME_KEYS = frozenset({"created_at", "updated_at"})


def _keyset_ok(keys: list[tuple[str, bool]]) -> bool:
    return not any(name in _NULLABLE_SORT_KEYS for name, _ in keys)


def _key_value(task: Task, name: str) -> Any:
    value = getattr(task, name)
    if name in _RANK_OF:
        return _RANK_OF[name][value]
    return value.isoformat() if name in _DATETIME_KEYS else value


def _encode_cursor(keys: list[tuple[str, bool]], task: Task) -> str:
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
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise PreconditionFailedError(
            "The task changed during this request; fetch it and retry."
        ) from None


def create_task(user: User, data: dict[str, Any]) -> Task:
    now = clock.now()
    task = Task(owner_id=user.id, created_at=now)
    _apply(task, data, now)
    db.session.add(task)
    _commit()
    notifications.task_created(user, task)
    return task


def update_task(task: Task, changes: dict[str, Any]) -> Task:
    """Change some fields (PATCH, and PUT with a whole task)."""
    _apply(task, changes, clock.now())
    _commit()
    return task


def delete_task(task: Task) -> None:
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
