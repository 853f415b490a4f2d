"""Task rules: ownership, filters, sorting, status bookkeeping and tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, not_, or_, select
from sqlalchemy.orm.exc import StaleDataError

from api.errors import ForbiddenError, NotFoundError, PreconditionFailedError
from api.extensions import db
from api.models import MAX_ID, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.pagination import Page
from api.services import notifications
from api.services.sql import insert_missing

# Enum columns sort by meaning, not alphabetically.
_RANKS: dict[str, ColumnElement[Any]] = {
    "status": case({s.value: i for i, s in enumerate(TaskStatus)}, value=Task.status),
    "priority": case({p.value: i for i, p in enumerate(TaskPriority)}, value=Task.priority),
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


def list_tasks(user: User, query: dict[str, Any]) -> Page:
    """The tasks `user` may see that match `query`, one page of them."""
    conditions = task_filters(user, query)
    total = db.session.scalar(select(func.count(Task.id)).where(*conditions)) or 0
    order = []
    for name, descending in query["sort"]:
        column = _SORT_COLUMNS[name]
        order.append(column.desc() if descending else column.asc())
    page, per_page = query["page"], query["per_page"]
    stmt = (
        select(Task)
        .where(*conditions)
        .order_by(*order, Task.id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page(list(db.session.scalars(stmt)), page, per_page, total)


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
    now = _now()
    task = Task(owner_id=user.id, created_at=now)
    _apply(task, data, now)
    db.session.add(task)
    _commit()
    notifications.task_created(user, task)
    return task


def update_task(task: Task, changes: dict[str, Any]) -> Task:
    """Change some fields (PATCH, and PUT with a whole task)."""
    _apply(task, changes, _now())
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
