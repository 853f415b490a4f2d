"""Reports: a summary of the caller's tasks, or an export of them, made by a job.

A report covers the tasks `listTasks` would list with the same filters (admins:
everyone's). CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`,
`-`, `@`, tab or carriage return) are prefixed with `'` (OWASP's CSV injection advice).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from api import clock
from api.errors import NotFoundError
from api.extensions import db
from api.jobs import Output, job_kind
from api.jobs.queue import enqueue
from api.models import Job, Tag, Task, TaskPriority, TaskStatus, User, task_tags
from api.services.tasks import overdue, task_filters
from schemas.tasks import TaskOut

REPORT_JOB = "report"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
_DATE_FILTERS = ("due_before", "due_after")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_date",
    "tags",
    "created_at",
    "updated_at",
    "completed_at",
)


def create_report(user: User, request: dict[str, Any]) -> Job:
    """Queue a report job for `user` (`request`: kind, format, filters)."""
    filters = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in request["filters"].items()
    }
    params = {"kind": request["kind"], "format": request["format"], "filters": filters}
    return enqueue(REPORT_JOB, params, owner_id=user.id)


@job_kind(REPORT_JOB)
def make_report(job: Job) -> Output:
    """Run a report job: the summary or export its params ask for."""
    user = db.session.get(User, job.owner_id) if job.owner_id is not None else None
    if user is None:
        raise NotFoundError("The report's owner no longer exists.")
    params = job.params
    query = {
        name: datetime.fromisoformat(value) if name in _DATE_FILTERS else value
        for name, value in params["filters"].items()
    }
    conditions = task_filters(user, query)
    as_csv = params["format"] == "csv"
    if params["kind"] == "summary":
        report = summary(conditions)
        if as_csv:
            return Output(csv_text(("metric", "key", "count"), summary_rows(report)), CSV_TYPE)
        return Output(json.dumps(report), JSON_TYPE)
    tasks = list(db.session.scalars(select(Task).where(*conditions).order_by(Task.id)))
    if as_csv:
        return Output(csv_text(EXPORT_COLUMNS, (export_row(task) for task in tasks)), CSV_TYPE)
    return Output(json.dumps({"data": TaskOut(many=True).dump(tasks)}), JSON_TYPE)


def _counted(column: Any, conditions: Sequence[ColumnElement[bool]]) -> dict[str, int]:
    rows = db.session.execute(
        select(column, func.count(Task.id)).where(*conditions).group_by(column)
    )
    return {str(key): int(n) for key, n in rows}


def summary(conditions: Sequence[ColumnElement[bool]]) -> dict[str, Any]:
    """Counts over the tasks matching `conditions`."""
    total = db.session.scalar(select(func.count(Task.id)).where(*conditions)) or 0
    tag_rows = db.session.execute(
        select(Tag.name, func.count(Task.id))
        .join(task_tags, task_tags.c.tag_id == Tag.id)
        .join(Task, Task.id == task_tags.c.task_id)
        .where(*conditions)
        .group_by(Tag.name)
        .order_by(Tag.name)
    )
    # ISO weeks are computed here, not in SQL: SQLite and PostgreSQL spell them apart.
    weeks = Counter(
        "{}-W{:02d}".format(*completed.isocalendar()[:2])
        for completed in db.session.scalars(
            select(Task.completed_at).where(*conditions, Task.completed_at.is_not(None))
        )
        if completed is not None
    )
    return {
        "total": total,
        "by_status": {s.value: 0 for s in TaskStatus} | _counted(Task.status, conditions),
        "by_priority": {p.value: 0 for p in TaskPriority} | _counted(Task.priority, conditions),
        "by_tag": {name: int(n) for name, n in tag_rows},
        "overdue": db.session.scalar(select(func.count(Task.id)).where(*conditions, overdue()))
        or 0,
        "completed_per_week": dict(sorted(weeks.items())),
        "generated_at": clock.now().isoformat(),
    }


def summary_rows(report: dict[str, Any]) -> Iterable[tuple[Any, ...]]:
    yield ("total", "", report["total"])
    for section, metric in (
        ("by_status", "status"),
        ("by_priority", "priority"),
        ("by_tag", "tag"),
        ("completed_per_week", "completed_week"),
    ):
        for key, count in report[section].items():
            yield (metric, key, count)
    yield ("overdue", "", report["overdue"])


def _timestamp(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def export_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.title,
        task.description or "",
        task.status,
        task.priority,
        _timestamp(task.due_date),
        # Tags joined with ";" (use format=json for tags that contain one).
        ";".join(task.tag_names),
        _timestamp(task.created_at),
        _timestamp(task.updated_at),
        _timestamp(task.completed_at),
    )


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (quoted where needed, CRLF line ends), formula-safe cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue()
