"""Task rules: ownership, filters, sorting, status bookkeeping and tags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Text,
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
    NotFoundError,
    PreconditionFailedError,
)
from api.extensions import db
from api.models import MAX_ID, EventType, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.pagination import Page
from api.services import attachments, events, notifications
from api.services.paging import LIKE_ESCAPE, Filter, Listing, fetch_page, like_escaped
from api.services.sql import insert_missing

# Enum columns sort by meaning, not alphabetically.
_RANK_OF = {
    "status": {s.value: i for i, s in enumerate(TaskStatus)},
    "priority": {p.value: i for i, p in enumerate(TaskPriority)},
}


def overdue(now: Any = None) -> ColumnElement[bool]:
    """Past due and not completed. Spelled out for NULLs: a task with no due date is never
    overdue. `now` is the clock's (or a bound parameter's, in a statement built once)."""
    return (
        Task.due_date.is_not(None)
        & (Task.due_date < (clock.now() if now is None else now))
        & (Task.status != TaskStatus.COMPLETED.value)
    )


# What a task listing can be filtered by; each filter's parameter is named after it.
_FILTERS: dict[str, Filter] = {
    "owner_id": lambda value: Task.owner_id == value("owner_id"),
    "status": lambda value: Task.status.in_(value("status")),
    "priority": lambda value: Task.priority.in_(value("priority")),
    "tag": lambda value: Task.tags.any(Tag.name == value("tag")),
    "q": lambda value: or_(
        Task.title.icontains(value("q"), escape=LIKE_ESCAPE),
        Task.description.icontains(value("q"), escape=LIKE_ESCAPE),
    ),
    "due_before": lambda value: Task.due_date < value("due_before"),
    "due_after": lambda value: Task.due_date > value("due_after"),
    "overdue": lambda value: overdue(value("overdue")),
    "not_overdue": lambda value: not_(overdue(value("not_overdue"))),
}


def _filter_values(user: User, query: dict[str, Any]) -> dict[str, Any]:
    """The filters (name -> value) that select the tasks `user` may see (admins:
    everyone's) matching `query`."""
    owner_id = query.get("owner_id")
    if owner_id is not None and not user.is_admin:
        raise ForbiddenError("Only admins can filter by owner_id.")
    where: dict[str, Any] = {}
    if not user.is_admin or owner_id is not None:
        where["owner_id"] = user.id if owner_id is None else owner_id
    for name in ("status", "priority"):
        if query.get(name):
            where[name] = list(query[name])
    for name in ("tag", "due_before", "due_after"):
        if name in query:
            where[name] = query[name]
    if "q" in query:
        where["q"] = like_escaped(query["q"])
    if "overdue" in query:
        where["overdue" if query["overdue"] else "not_overdue"] = clock.now()
    return where


def task_filters(user: User, query: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The conditions, with their values, that select the tasks `user` may see (admins:
    everyone's) that match the filters in `query`; listTasks and reports share them."""
    return TASKS.conditions(_filter_values(user, query))


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


TASKS = Listing(
    "tasks",
    Task,
    filters=_FILTERS,
    lists=frozenset({"status", "priority"}),
    ranks=_RANK_OF,
    computed={"tag_names": _tag_names},
    keyset=True,
)


def list_tasks(user: User, query: dict[str, Any], attributes: tuple[str, ...]) -> Page:
    """The tasks `user` may see that match `query`, one page of them, as rows that carry
    `attributes`, read in one statement: the page, its total and its tags. No ORM objects
    are built: the rows go straight to a compiled dumper."""
    return fetch_page(TASKS, query, tuple(query["sort"]), _filter_values(user, query), attributes)


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
