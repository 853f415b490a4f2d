"""Tasks through the API and in the database: create one, list them, compare the two."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import Tag, Task, task_tags
from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import count

API = "/api/v1/tasks"
Json = dict[str, Any]
Params = Sequence[tuple[str, str]]

TASK_FIELDS = {
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_date",
    "tags",
    "owner_id",
    "created_at",
    "updated_at",
    "completed_at",
    "version",
}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LINK = re.compile(r'^<([^>]+)>; rel="(first|prev|next|last)"$')
# A due date the tests write in several notations (a Z, an offset) and compare.
MID = datetime(2030, 6, 1, 12, tzinfo=UTC)


def url(task_id: int | str, suffix: str = "") -> str:
    return f"{API}/{task_id}{suffix}"


def create(client: FlaskClient, headers: Headers, **fields: Any) -> Json:
    """POST a task (title defaults to "A task"); assert 201 and return the body."""
    fields.setdefault("title", "A task")
    response = client.post(API, json=fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: Json = response.get_json()
    return body


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp with an offset, parsed; None stays None."""
    if value is None:
        return None
    assert RFC3339.match(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def timestamp(value: str | None) -> datetime:
    """An RFC 3339 timestamp that must be present."""
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def snapshot(app: TasksAPI, task_id: int) -> Json | None:
    """The task's row as a dict (tags as sorted names), or None when it does not exist."""
    with app.app_context():
        task = db.session.get(Task, task_id)
        if task is None:
            return None
        values = {attr.key: getattr(task, attr.key) for attr in Task.__mapper__.column_attrs}
        values["tags"] = sorted(task.tag_names)
        return values


def stored(app: TasksAPI, task_id: int) -> Json:
    """The task's row, which must exist."""
    row = snapshot(app, task_id)
    assert row is not None, f"task {task_id} is not in the database"
    return row


def tag_links(app: TasksAPI, task_id: int) -> int:
    """How many task_tags rows point at the task."""
    with app.app_context():
        return (
            db.session.scalar(
                select(func.count()).select_from(task_tags).where(task_tags.c.task_id == task_id)
            )
            or 0
        )


def task_count(app: TasksAPI) -> int:
    return count(app, Task)


def tag_rows(app: TasksAPI, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Tag.id)).where(Tag.name == name)) or 0


def assert_matches_row(body: Json, row: Json) -> None:
    """The API's view of a task equals its database row."""
    assert set(body) == TASK_FIELDS
    for name in ("due_date", "created_at", "updated_at", "completed_at"):
        assert parse_time(body[name]) == row[name], name
    assert sorted(body["tags"]) == row["tags"]
    for name in ("id", "title", "description", "status", "priority", "owner_id", "version"):
        assert body[name] == row[name], name


def links(response: TestResponse) -> dict[str, str]:
    """The `Link` header as {rel: url}; every part must be well formed."""
    parsed: dict[str, str] = {}
    for part in response.headers["Link"].split(", "):
        match = LINK.match(part)
        assert match, part
        parsed[match[2]] = match[1]
    return parsed


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def get_list(client: FlaskClient, headers: Headers, params: Params = ()) -> TestResponse:
    return client.get(f"{API}?{urlencode(list(params))}", headers=headers)


def listed_ids(client: FlaskClient, headers: Headers, params: Params = ()) -> list[int]:
    """The ids of one page (per_page 100) of the list, in order; checks the count header."""
    response = get_list(client, headers, [*params, ("per_page", "100")])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["pagination"]["total"] <= 100
    assert response.headers["X-Total-Count"] == str(body["pagination"]["total"])
    assert len(body["data"]) == body["pagination"]["total"]
    return [task["id"] for task in body["data"]]


def insert_tasks(app: TasksAPI, owner_id: int, specs: Sequence[Json]) -> list[int]:
    """Insert tasks straight into the database (fast set-up for list tests)."""
    with app.app_context():
        tags: dict[str, Tag] = {}
        tasks = []
        for spec in specs:
            fields = {k: v for k, v in spec.items() if k not in ("tags", "id")}
            task = Task(owner_id=owner_id, **fields)
            for name in spec.get("tags", []):
                if name not in tags:
                    existing = db.session.scalar(select(Tag).where(Tag.name == name))
                    tags[name] = existing or Tag(name=name)
                task.tags.append(tags[name])
            if task.status == "completed" and task.completed_at is None:
                task.completed_at = datetime.now(UTC)
            tasks.append(task)
        db.session.add_all(tasks)
        db.session.commit()
        return [task.id for task in tasks]
