"""Report data: tasks whose titles are hard to put in CSV, and the numbers a summary must
show, counted straight from the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.extensions import db
from api.models import Tag, Task, task_tags
from api.openapi import TasksAPI
from tests.support.auth import Headers

Json = dict[str, Any]
PAST = "2001-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"
TRICKY_TITLES = [
    'She said "hi", then left',
    "line one\nline two, with a comma",
    '=HYPERLINK("http://evil")',
    "-2+3",
    "@SUM(A1)",
    "plain",
]


def make_tasks(client: FlaskClient, headers: Headers) -> list[Json]:
    """Create six tasks through the API (quotes, newlines, formulas in titles); return them."""
    specs: list[Json] = [
        {"title": TRICKY_TITLES[0], "tags": ["work", "q4"], "priority": "high"},
        {"title": TRICKY_TITLES[1], "tags": ["work"], "due_date": PAST},
        {"title": TRICKY_TITLES[2], "status": "completed", "due_date": PAST},
        {"title": TRICKY_TITLES[3], "status": "in_progress", "priority": "urgent"},
        {"title": TRICKY_TITLES[4], "status": "completed", "tags": ["home"]},
        {"title": TRICKY_TITLES[5], "due_date": FUTURE, "description": "+1 on this"},
    ]
    created = []
    for spec in specs:
        response = client.post("/api/v1/tasks", json=spec, headers=headers)
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json())
    return created


def direct_counts(app: TasksAPI, user_id: int) -> Json:
    """The summary's numbers, straight from the tables."""
    with app.app_context():
        mine = Task.owner_id == user_id

        def by(column: Any) -> dict[str, int]:
            rows = db.session.execute(select(column, func.count()).where(mine).group_by(column))
            return {str(key): n for key, n in rows}

        tags = db.session.execute(
            select(Tag.name, func.count())
            .select_from(task_tags)
            .join(Tag, Tag.id == task_tags.c.tag_id)
            .join(Task, Task.id == task_tags.c.task_id)
            .where(mine)
            .group_by(Tag.name)
        )
        now = datetime.now(UTC)
        tasks = list(db.session.scalars(select(Task).where(mine)))
        return {
            "total": len(tasks),
            "by_status": by(Task.status),
            "by_priority": by(Task.priority),
            "by_tag": dict(tags.all()),
            "overdue": sum(
                1
                for t in tasks
                if t.due_date is not None and t.due_date < now and t.status != "completed"
            ),
            "completed": [t.completed_at for t in tasks if t.completed_at is not None],
        }
