"""Tasks: create, read, replace, patch, status, delete, ownership, lists, filters, sorting."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import Tag, Task, User, task_tags
from api.openapi import TasksAPI

API = "/api/v1/tasks"
Headers = dict[str, str]
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
PRIORITIES = ["low", "medium", "high", "urgent"]
STATUSES = ["pending", "in_progress", "completed"]
SORT_FIELDS = ["id", "title", "status", "priority", "due_date", "created_at", "updated_at"]

PAST = datetime(2001, 1, 1, tzinfo=UTC)
PAST2 = datetime(2001, 6, 1, tzinfo=UTC)
MID = datetime(2030, 6, 1, 12, tzinfo=UTC)
FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------


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


def user_id(app: TasksAPI, username: str) -> int:
    with app.app_context():
        found = db.session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


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
    with app.app_context():
        return db.session.scalar(select(func.count(Task.id))) or 0


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


def assert_problem(response: TestResponse, status: int) -> Json:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: Json = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "request_id"} <= set(body)
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_invalid(response: TestResponse, field: str, location: str = "json") -> Json:
    """A 422 problem whose `errors` name `field` (or an item of it) at `location`."""
    body = assert_problem(response, 422)
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"location", "field", "message"}
    named = {e["field"] for e in body["errors"] if e["location"] == location}
    assert any(n == field or n.startswith(f"{field}.") for n in named), body["errors"]
    return body


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


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


@pytest.fixture
def bob(auth: Callable[..., Headers]) -> Headers:
    return auth("bob")


@pytest.fixture
def admin(auth: Callable[..., Headers]) -> Headers:
    return auth("root", role="admin")


# --- create ----------------------------------------------------------------------------


def test_create_returns_201_with_location_and_defaults(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    before = datetime.now(UTC)
    response = client.post(API, json={"title": "Write report"}, headers=alice)
    after = datetime.now(UTC)

    assert response.status_code == 201
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert urlsplit(response.headers["Location"]).path == url(body["id"])
    assert body["title"] == "Write report"
    assert body["description"] is None
    assert body["status"] == "pending"
    assert body["priority"] == "medium"
    assert body["due_date"] is None
    assert body["tags"] == []
    assert body["completed_at"] is None
    assert body["version"] == 1
    assert body["owner_id"] == user_id(app, "alice")
    assert before <= timestamp(body["created_at"]) <= after
    assert_matches_row(body, stored(app, body["id"]))
    assert task_count(app) == 1

    fetched = client.get(response.headers["Location"], headers=alice)
    assert fetched.status_code == 200
    assert fetched.get_json() == body


def test_create_timestamps_agree(client: FlaskClient, alice: Headers) -> None:
    body = create(client, alice)
    # A new task has not been updated since it was created.
    assert timestamp(body["created_at"]) == timestamp(body["updated_at"])


def test_create_with_every_field_normalises_tags_and_due_date(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    body = create(
        client,
        alice,
        title="Quarterly report",
        description="Numbers for the board.",
        status="in_progress",
        priority="urgent",
        due_date="2030-06-01T14:00:00+02:00",
        tags=[" Work ", "work", "HOME", "home ", "Q4"],
    )
    assert body["description"] == "Numbers for the board."
    assert body["status"] == "in_progress"
    assert body["priority"] == "urgent"
    assert parse_time(body["due_date"]) == MID
    assert sorted(body["tags"]) == ["home", "q4", "work"]
    assert body["completed_at"] is None
    assert_matches_row(body, stored(app, body["id"]))
    for name in ("home", "q4", "work"):
        assert tag_rows(app, name) == 1
    for raw in ("Work", " Work ", "HOME", "Q4"):
        assert tag_rows(app, raw) == 0


def test_create_reuses_existing_tags(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    first = create(client, alice, tags=["shared"])
    second = create(client, alice, tags=["SHARED", "new"])
    assert first["tags"] == ["shared"]
    assert sorted(second["tags"]) == ["new", "shared"]
    assert tag_rows(app, "shared") == 1
    assert tag_rows(app, "new") == 1


def test_create_completed_sets_completed_at(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    before = datetime.now(UTC)
    body = create(client, alice, status="completed")
    assert before <= timestamp(body["completed_at"]) <= datetime.now(UTC)
    assert_matches_row(body, stored(app, body["id"]))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"title": "x" * 200}, id="title-200"),
        pytest.param({"description": "d" * 10_000}, id="description-10000"),
        pytest.param({"description": None}, id="description-null"),
        pytest.param({"due_date": None}, id="due-null"),
        pytest.param({"due_date": "2030-06-01T12:00:00Z"}, id="due-zulu"),
        pytest.param({"tags": [f"t{i}" for i in range(20)]}, id="20-tags"),
        pytest.param({"tags": ["t" * 50]}, id="tag-50"),
    ],
)
def test_create_accepts_boundary_values(
    app: TasksAPI, client: FlaskClient, alice: Headers, fields: Json
) -> None:
    body = create(client, alice, **fields)
    assert_matches_row(body, stored(app, body["id"]))


# --- validation ------------------------------------------------------------------------

INVALID_BODIES = [
    pytest.param({}, "title", id="title-missing"),
    pytest.param({"title": ""}, "title", id="title-empty"),
    pytest.param({"title": "   "}, "title", id="title-blank"),
    pytest.param({"title": "x" * 201}, "title", id="title-201"),
    pytest.param({"title": None}, "title", id="title-null"),
    pytest.param({"title": 5}, "title", id="title-number"),
    pytest.param({"title": ["x"]}, "title", id="title-list"),
    pytest.param({"title": "t", "description": "d" * 10_001}, "description", id="desc-10001"),
    pytest.param({"title": "t", "description": 5}, "description", id="desc-number"),
    pytest.param({"title": "t", "status": "done"}, "status", id="status-unknown"),
    pytest.param({"title": "t", "status": None}, "status", id="status-null"),
    pytest.param({"title": "t", "priority": "extreme"}, "priority", id="priority-unknown"),
    pytest.param({"title": "t", "priority": 2.6e-42}, "priority", id="priority-float"),
    pytest.param({"title": "t", "priority": 2}, "priority", id="priority-int"),
    pytest.param({"title": "t", "due_date": "2030-06-01T12:00:00"}, "due_date", id="due-naive"),
    pytest.param({"title": "t", "due_date": "tomorrow"}, "due_date", id="due-garbage"),
    pytest.param({"title": "t", "due_date": 1_900_000_000}, "due_date", id="due-number"),
    pytest.param({"title": "t", "tags": [f"t{i}" for i in range(21)]}, "tags", id="tags-21"),
    pytest.param({"title": "t", "tags": ["t" * 51]}, "tags", id="tag-51"),
    pytest.param({"title": "t", "tags": [""]}, "tags", id="tag-empty"),
    pytest.param({"title": "t", "tags": ["  "]}, "tags", id="tag-blank"),
    pytest.param({"title": "t", "tags": "x"}, "tags", id="tags-string"),
    pytest.param({"title": "t", "tags": [1]}, "tags", id="tag-number"),
]


@pytest.mark.parametrize(("fields", "field"), INVALID_BODIES)
def test_create_rejects_invalid_fields(
    app: TasksAPI, client: FlaskClient, alice: Headers, fields: Json, field: str
) -> None:
    response = client.post(API, json=fields, headers=alice)
    body = assert_invalid(response, field)
    assert body["title"] == "Validation failed"
    assert task_count(app) == 0


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"title": ""}, "title", id="title-empty"),
        pytest.param({"title": "t", "priority": 2.6e-42}, "priority", id="priority-float"),
        pytest.param({"title": "t", "tags": "x"}, "tags", id="tags-string"),
        pytest.param({"title": "t", "due_date": "2030-06-01T12:00:00"}, "due_date", id="naive"),
        pytest.param({"title": "t", "status": "done"}, "status", id="status-unknown"),
    ],
)
def test_update_rejects_invalid_fields_and_leaves_the_row(
    app: TasksAPI, client: FlaskClient, alice: Headers, method: str, fields: Json, field: str
) -> None:
    task = create(client, alice, title="Keep me", tags=["keep"])
    before = stored(app, task["id"])
    response = client.open(url(task["id"]), method=method.upper(), json=fields, headers=alice)
    assert_invalid(response, field)
    assert snapshot(app, task["id"]) == before


def test_patch_with_empty_body_is_422(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    task = create(client, alice)
    before = stored(app, task["id"])
    response = client.patch(url(task["id"]), json={}, headers=alice)
    assert_invalid(response, "")
    assert snapshot(app, task["id"]) == before


@pytest.mark.parametrize("fields", [{}, {"status": "done"}, {"status": None}])
def test_set_status_rejects_invalid_bodies(
    app: TasksAPI, client: FlaskClient, alice: Headers, fields: Json
) -> None:
    task = create(client, alice)
    before = stored(app, task["id"])
    response = client.put(url(task["id"], "/status"), json=fields, headers=alice)
    assert_invalid(response, "status")
    assert snapshot(app, task["id"]) == before


# --- mass assignment -------------------------------------------------------------------

READ_ONLY_FIELDS = {
    "owner_id": 999,
    "id": 999,
    "version": 42,
    "created_at": "2001-01-01T00:00:00Z",
    "updated_at": "2001-01-01T00:00:00Z",
    "completed_at": "2001-01-01T00:00:00Z",
    "role": "admin",
}


@pytest.mark.parametrize("field", list(READ_ONLY_FIELDS))
@pytest.mark.parametrize(
    ("method", "suffix", "fields"),
    [
        pytest.param("POST", None, {"title": "Sneaky"}, id="create"),
        pytest.param("PUT", "", {"title": "Sneaky"}, id="replace"),
        pytest.param("PATCH", "", {"title": "Sneaky"}, id="update"),
        pytest.param("PUT", "/status", {"status": "completed"}, id="status"),
    ],
)
def test_read_only_fields_are_rejected(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    method: str,
    suffix: str | None,
    fields: Json,
    field: str,
) -> None:
    task = create(client, alice, title="Original")
    before = stored(app, task["id"])
    target = API if suffix is None else url(task["id"], suffix)
    payload = {**fields, field: READ_ONLY_FIELDS[field]}
    response = client.open(target, method=method, json=payload, headers=alice)
    assert_invalid(response, field)
    assert task_count(app) == 1
    assert snapshot(app, task["id"]) == before


# --- read, replace, patch, status, delete ----------------------------------------------


def test_get_returns_the_task(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    task = create(client, alice, title="Read me", tags=["a", "b"], due_date="2030-06-01T12:00:00Z")
    response = client.get(url(task["id"]), headers=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == task
    assert_matches_row(response.get_json(), stored(app, task["id"]))


def test_put_replaces_and_resets_omitted_fields(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = create(
        client,
        alice,
        title="Full",
        description="All fields set",
        status="completed",
        priority="urgent",
        due_date="2030-06-01T12:00:00Z",
        tags=["one", "two"],
    )
    response = client.put(url(task["id"]), json={"title": "Bare"}, headers=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == task["id"]
    assert body["title"] == "Bare"
    assert body["description"] is None
    assert body["status"] == "pending"
    assert body["priority"] == "medium"
    assert body["due_date"] is None
    assert body["tags"] == []
    assert body["completed_at"] is None
    assert body["version"] == task["version"] + 1
    assert body["owner_id"] == task["owner_id"]
    assert body["created_at"] == task["created_at"]
    assert timestamp(body["updated_at"]) > timestamp(task["updated_at"])
    assert_matches_row(body, stored(app, task["id"]))
    assert tag_links(app, task["id"]) == 0


def test_put_with_every_field(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    task = create(client, alice, title="Bare")
    full = {
        "title": "Full",
        "description": "Now with everything",
        "status": "in_progress",
        "priority": "low",
        "due_date": "2030-06-01T12:00:00+00:00",
        "tags": ["X", "y "],
    }
    response = client.put(url(task["id"]), json=full, headers=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("title", "description", "status", "priority")} == {
        k: full[k] for k in ("title", "description", "status", "priority")
    }
    assert parse_time(body["due_date"]) == MID
    assert sorted(body["tags"]) == ["x", "y"]
    assert body["version"] == 2
    assert_matches_row(body, stored(app, task["id"]))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"title": "Renamed"}, id="title"),
        pytest.param({"description": None}, id="description-null"),
        pytest.param({"priority": "low"}, id="priority"),
        pytest.param({"status": "in_progress"}, id="status"),
        pytest.param({"due_date": None}, id="due-null"),
        pytest.param({"due_date": "2999-01-01T00:00:00Z"}, id="due"),
        pytest.param({"tags": ["Fresh", " fresh", "other"]}, id="tags"),
        pytest.param({"tags": []}, id="tags-empty"),
    ],
)
def test_patch_changes_only_the_given_fields(
    app: TasksAPI, client: FlaskClient, alice: Headers, change: Json
) -> None:
    task = create(
        client,
        alice,
        title="Original",
        description="Some text",
        priority="high",
        due_date="2030-06-01T12:00:00Z",
        tags=["keep"],
    )
    response = client.patch(url(task["id"]), json=change, headers=alice)
    assert response.status_code == 200
    body = response.get_json()

    expected = {**task, **change, "version": task["version"] + 1}
    if "tags" in change:
        expected["tags"] = sorted({t.strip().lower() for t in change["tags"]})
    for name in ("id", "title", "description", "status", "priority", "owner_id", "version"):
        assert body[name] == expected[name], name
    assert sorted(body["tags"]) == sorted(expected["tags"])
    assert parse_time(body["due_date"]) == parse_time(expected["due_date"])
    assert body["created_at"] == task["created_at"]
    assert body["completed_at"] is None
    assert timestamp(body["updated_at"]) > timestamp(task["updated_at"])
    assert_matches_row(body, stored(app, task["id"]))


def test_version_increments_by_one_per_change(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = create(client, alice, title="v1")
    assert task["version"] == 1
    changes = [
        ("PATCH", "", {"title": "v2"}),
        ("PATCH", "", {"tags": ["only-tags"]}),
        ("PATCH", "", {"tags": ["only-tags", "more"]}),
        ("PUT", "", {"title": "v5"}),
        ("PUT", "/status", {"status": "completed"}),
        ("PUT", "/status", {"status": "completed"}),
        ("PATCH", "", {"priority": "urgent"}),
    ]
    for expected, (method, suffix, fields) in enumerate(changes, start=2):
        response = client.open(url(task["id"], suffix), method=method, json=fields, headers=alice)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["version"] == expected
        assert stored(app, task["id"])["version"] == expected
    # A rejected change does not count.
    assert client.patch(url(task["id"]), json={}, headers=alice).status_code == 422
    assert stored(app, task["id"])["version"] == len(changes) + 1


def test_set_status_keeps_completed_at_in_step(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = create(client, alice)
    status_url = url(task["id"], "/status")

    before = datetime.now(UTC)
    completed = client.put(status_url, json={"status": "completed"}, headers=alice)
    assert completed.status_code == 200
    body = completed.get_json()
    assert body["status"] == "completed"
    completed_at = timestamp(body["completed_at"])
    assert before <= completed_at <= datetime.now(UTC)
    assert_matches_row(body, stored(app, task["id"]))

    # Completing a completed task keeps the first completion time.
    again = client.put(status_url, json={"status": "completed"}, headers=alice)
    assert again.status_code == 200
    assert again.get_json()["completed_at"] == body["completed_at"]
    assert again.get_json()["version"] == body["version"] + 1
    assert stored(app, task["id"])["completed_at"] == completed_at

    # So does a PATCH that does not leave `completed`.
    renamed = client.patch(url(task["id"]), json={"title": "Renamed"}, headers=alice)
    assert renamed.get_json()["completed_at"] == body["completed_at"]

    reopened = client.put(status_url, json={"status": "in_progress"}, headers=alice)
    assert reopened.status_code == 200
    assert reopened.get_json()["status"] == "in_progress"
    assert reopened.get_json()["completed_at"] is None
    assert_matches_row(reopened.get_json(), stored(app, task["id"]))


def test_patch_status_sets_and_clears_completed_at(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = create(client, alice)
    done = client.patch(url(task["id"]), json={"status": "completed"}, headers=alice)
    assert done.get_json()["completed_at"] is not None
    undone = client.patch(url(task["id"]), json={"status": "pending"}, headers=alice)
    assert undone.get_json()["completed_at"] is None
    assert_matches_row(undone.get_json(), stored(app, task["id"]))


def test_delete_is_204_and_removes_the_row(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = create(client, alice, tags=["gone"])
    other = create(client, alice, tags=["gone"])
    response = client.delete(url(task["id"]), headers=alice)
    assert response.status_code == 204
    assert response.data == b""
    assert snapshot(app, task["id"]) is None
    assert snapshot(app, other["id"]) is not None
    assert tag_links(app, task["id"]) == 0
    assert_problem(client.get(url(task["id"]), headers=alice), 404)
    assert_problem(client.delete(url(task["id"]), headers=alice), 404)


# --- unknown ids -----------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["0", "12345", "2147483648", "99999999999999999999", "-1"])
def test_unknown_ids_are_404_problems(client: FlaskClient, alice: Headers, task_id: str) -> None:
    create(client, alice)
    body = assert_problem(client.get(url(task_id), headers=alice), 404)
    assert body["instance"] == url(task_id)


# Every operation on one task: (method, path suffix, body).
OPERATIONS: list[tuple[str, str, Json | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "Mine now"}),
    ("PATCH", "", {"title": "Mine now"}),
    ("DELETE", "", None),
    ("PUT", "/status", {"status": "completed"}),
]
OPERATION_IDS = ["get", "replace", "update", "delete", "status"]


@pytest.mark.parametrize(("method", "suffix", "fields"), OPERATIONS, ids=OPERATION_IDS)
def test_huge_ids_are_404_on_every_operation(
    client: FlaskClient, alice: Headers, method: str, suffix: str, fields: Json | None
) -> None:
    response = client.open(
        url("99999999999999999999", suffix), method=method, json=fields, headers=alice
    )
    assert_problem(response, 404)


# --- authentication and ownership ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        pytest.param("GET", API, None, id="list"),
        pytest.param("POST", API, {"title": "x"}, id="create"),
        *[
            pytest.param(method, url(1, suffix), fields, id=name)
            for (method, suffix, fields), name in zip(OPERATIONS, OPERATION_IDS, strict=True)
        ],
    ],
)
def test_tasks_need_a_token(
    app: TasksAPI, client: FlaskClient, method: str, path: str, fields: Json | None
) -> None:
    response = client.open(path, method=method, json=fields)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "suffix", "fields"), OPERATIONS, ids=OPERATION_IDS)
def test_another_users_task_is_404(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    bob: Headers,
    method: str,
    suffix: str,
    fields: Json | None,
) -> None:
    task = create(client, alice, title="Alice's", tags=["private"])
    before = stored(app, task["id"])
    response = client.open(url(task["id"], suffix), method=method, json=fields, headers=bob)
    body = assert_problem(response, 404)
    # Indistinguishable from a task that does not exist at all.
    missing = assert_problem(
        client.open(url(12345, suffix), method=method, json=fields, headers=bob), 404
    )
    assert body["title"] == missing["title"]
    assert body["detail"] == missing["detail"].replace("12345", str(task["id"]))
    assert snapshot(app, task["id"]) == before


def test_a_users_list_never_shows_other_users_tasks(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers
) -> None:
    alices = {
        create(client, alice, title=f"Shared words {i}", tags=["secret"])["id"] for i in range(3)
    }
    bobs = {create(client, bob, title="Shared words bob")["id"]}
    for params in ([], [("tag", "secret")], [("q", "shared")], [("status", "pending")]):
        ids = set(listed_ids(client, bob, params))
        assert not ids & alices, params
        assert ids <= bobs
    assert set(listed_ids(client, alice)) == alices


@pytest.mark.parametrize(
    ("method", "suffix", "fields", "status"),
    [
        pytest.param("GET", "", None, 200, id="get"),
        pytest.param("PUT", "", {"title": "By admin"}, 200, id="replace"),
        pytest.param("PATCH", "", {"title": "By admin"}, 200, id="update"),
        pytest.param("PUT", "/status", {"status": "completed"}, 200, id="status"),
        pytest.param("DELETE", "", None, 204, id="delete"),
    ],
)
def test_admin_can_touch_every_task(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    admin: Headers,
    method: str,
    suffix: str,
    fields: Json | None,
    status: int,
) -> None:
    task = create(client, alice, title="Alice's")
    response = client.open(url(task["id"], suffix), method=method, json=fields, headers=admin)
    assert response.status_code == status, response.get_json()
    row = snapshot(app, task["id"])
    if method == "DELETE":
        assert row is None
        return
    assert row is not None
    assert_matches_row(response.get_json(), row)
    # The task stays Alice's, whoever edits it.
    assert row["owner_id"] == user_id(app, "alice")
    if fields:
        for name, value in fields.items():
            assert row[name] == value


def test_admin_lists_everyone_and_filters_by_owner(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers, admin: Headers
) -> None:
    alices = {create(client, alice, title="a")["id"] for _ in range(2)}
    bobs = {create(client, bob, title="b")["id"] for _ in range(3)}
    mine = {create(client, admin, title="root")["id"]}
    assert set(listed_ids(client, admin)) == alices | bobs | mine
    alice_id = str(user_id(app, "alice"))
    assert set(listed_ids(client, admin, [("owner_id", alice_id)])) == alices
    assert set(listed_ids(client, admin, [("owner_id", str(user_id(app, "bob")))])) == bobs
    assert listed_ids(client, admin, [("owner_id", "999999")]) == []


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_owner_id_filter_is_403_for_non_admins(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers, owner: str
) -> None:
    create(client, bob)
    response = get_list(client, alice, [("owner_id", str(user_id(app, owner)))])
    assert_problem(response, 403)


@pytest.mark.parametrize("value", ["0", "abc"])
def test_owner_id_must_be_a_positive_integer(
    client: FlaskClient, admin: Headers, value: str
) -> None:
    assert_invalid(get_list(client, admin, [("owner_id", value)]), "owner_id", "query")


# --- lists and pagination --------------------------------------------------------------


def test_list_shape_and_headers(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    created = [create(client, alice, title=f"t{i}") for i in range(3)]
    response = client.get(API, headers=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {
        "page": 1,
        "per_page": 20,
        "total": 3,
        "pages": 1,
        "next": None,
        "prev": None,
        "next_cursor": None,
    }
    assert response.headers["X-Total-Count"] == "3"
    assert sorted(task["id"] for task in body["data"]) == sorted(t["id"] for t in created)
    for task in body["data"]:
        assert_matches_row(task, stored(app, task["id"]))
    rels = links(response)
    assert set(rels) == {"first", "last"}
    assert query_of(rels["first"])["page"] == ["1"]
    assert query_of(rels["last"])["page"] == ["1"]


def test_default_page_size_is_20_and_last_page_is_partial(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    ids = insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(21)])
    first = client.get(API, headers=alice)
    assert first.status_code == 200
    page1 = first.get_json()
    assert len(page1["data"]) == 20
    assert page1["pagination"]["pages"] == 2
    assert page1["pagination"]["total"] == 21
    assert first.headers["X-Total-Count"] == "21"
    assert page1["pagination"]["next"] == links(first)["next"]

    second = client.get(page1["pagination"]["next"], headers=alice)
    assert second.status_code == 200
    page2 = second.get_json()
    assert len(page2["data"]) == 1
    assert page2["pagination"]["page"] == 2
    assert page2["pagination"]["next"] is None
    assert "next" not in links(second)
    seen = [t["id"] for t in page1["data"] + page2["data"]]
    assert sorted(seen) == sorted(ids)


def test_links_keep_every_query_parameter(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    owner = user_id(app, "alice")
    statuses = ["pending", "completed", "in_progress"] * 3
    ids = insert_tasks(
        app, owner, [{"title": f"t{i}", "status": s} for i, s in enumerate(statuses)]
    )
    expected_ids = {i for i, s in zip(ids, statuses, strict=True) if s != "in_progress"}
    params = [("status", "pending"), ("status", "completed"), ("per_page", "2"), ("page", "2")]

    response = get_list(client, alice, params)
    assert response.status_code == 200
    body = response.get_json()
    assert body["pagination"] == {
        "page": 2,
        "per_page": 2,
        "total": 6,
        "pages": 3,
        "next": body["pagination"]["next"],
        "prev": body["pagination"]["prev"],
        "next_cursor": body["pagination"]["next_cursor"],
    }
    assert response.headers["X-Total-Count"] == "6"
    rels = links(response)
    assert set(rels) == {"first", "prev", "next", "last"}
    assert rels["next"] == body["pagination"]["next"]
    assert rels["prev"] == body["pagination"]["prev"]
    for rel, page in {"first": "1", "prev": "1", "next": "3", "last": "3"}.items():
        query = query_of(rels[rel])
        assert urlsplit(rels[rel]).path == API
        assert query["page"] == [page], rel
        assert query["per_page"] == ["2"], rel
        assert sorted(query["status"]) == ["completed", "pending"], rel

    # Walking first → next → ... visits every matching task exactly once.
    seen: list[int] = []
    link: str | None = rels["first"]
    while link:
        followed = client.get(link, headers=alice)
        assert followed.status_code == 200
        seen += [task["id"] for task in followed.get_json()["data"]]
        link = followed.get_json()["pagination"]["next"]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected_ids


def test_a_page_past_the_end_is_empty(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(3)])
    response = get_list(client, alice, [("page", "5"), ("per_page", "2")])
    assert response.status_code == 200
    body = response.get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 3
    assert body["pagination"]["pages"] == 2
    assert body["pagination"]["next"] is None
    assert response.headers["X-Total-Count"] == "3"
    assert query_of(links(response)["last"])["page"] == ["2"]


def test_an_empty_list(client: FlaskClient, alice: Headers) -> None:
    response = client.get(API, headers=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 0
    assert body["pagination"]["next"] is None
    assert body["pagination"]["prev"] is None
    assert response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("per_page", "0"),
        ("per_page", "101"),
        ("per_page", "abc"),
        ("per_page", "-1"),
        ("page", "0"),
        ("page", "-1"),
        ("page", "abc"),
    ],
)
def test_bad_paging_parameters_are_422(
    client: FlaskClient, alice: Headers, name: str, value: str
) -> None:
    assert_invalid(get_list(client, alice, [(name, value)]), name, "query")


def test_per_page_100_is_allowed(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(3)])
    response = get_list(client, alice, [("per_page", "100")])
    assert response.status_code == 200
    assert response.get_json()["pagination"]["per_page"] == 100


@pytest.mark.parametrize("name", ["stauts", "owner", "limit"])
def test_unknown_query_parameters_are_422(client: FlaskClient, alice: Headers, name: str) -> None:
    assert_invalid(get_list(client, alice, [(name, "x")]), name, "query")


# --- filters ---------------------------------------------------------------------------

FILTER_DATA: list[Json] = [
    {"title": "Write report", "status": "pending", "priority": "high", "due_date": PAST,
     "tags": ["work"]},
    {"title": "Review 100% coverage", "description": "ci run", "status": "in_progress",
     "priority": "urgent", "due_date": FUTURE, "tags": ["work", "ci"]},
    {"title": "Buy milk", "description": "Report the price", "status": "completed",
     "priority": "low", "due_date": PAST, "tags": ["home"]},
    {"title": "a_b naming", "status": "pending", "priority": "medium", "due_date": None},
    {"title": "axb naming", "description": "100 percent sure", "status": "pending",
     "priority": "low", "due_date": MID, "tags": ["home"]},
    {"title": "Plan trip", "description": "with 50% discount", "status": "in_progress",
     "priority": "medium", "due_date": MID, "tags": ["travel"]},
    {"title": "Pay taxes", "status": "pending", "priority": "urgent", "due_date": PAST2,
     "tags": ["home", "work"]},
    {"title": "Done without a date", "status": "completed", "priority": "high",
     "due_date": None},
    {"title": "Inbox zero", "description": "REPORTING", "status": "in_progress",
     "priority": "high", "due_date": PAST},
]  # fmt: skip
# Bob's tasks look like Alice's; no filter may let them through to her.
DECOY_DATA: list[Json] = [
    {"title": "Write report", "status": "pending", "priority": "high", "due_date": PAST,
     "tags": ["work", "ci"]},
    {"title": "100% a_b", "description": "report", "status": "completed", "priority": "urgent",
     "due_date": MID, "tags": ["home"]},
]  # fmt: skip


def _text(needle: str) -> Callable[[Json], bool]:
    def matches(task: Json) -> bool:
        haystacks = (task["title"], task.get("description") or "")
        return any(needle.lower() in text.lower() for text in haystacks)

    return matches


def _due(test: Callable[[datetime], bool]) -> Callable[[Json], bool]:
    return lambda task: task["due_date"] is not None and test(task["due_date"])


def _overdue(task: Json) -> bool:
    due: datetime | None = task["due_date"]
    return due is not None and due < datetime.now(UTC) and task["status"] != "completed"


FILTERS = [
    pytest.param([("status", "pending")], lambda t: t["status"] == "pending", id="status"),
    pytest.param(
        [("status", "pending"), ("status", "completed")],
        lambda t: t["status"] in ("pending", "completed"),
        id="status-repeated",
    ),
    pytest.param([("priority", "high")], lambda t: t["priority"] == "high", id="priority"),
    pytest.param(
        [("priority", "low"), ("priority", "urgent")],
        lambda t: t["priority"] in ("low", "urgent"),
        id="priority-repeated",
    ),
    pytest.param([("tag", "work")], lambda t: "work" in t.get("tags", []), id="tag"),
    pytest.param([("tag", " WORK ")], lambda t: "work" in t.get("tags", []), id="tag-case"),
    pytest.param([("tag", "nothing")], lambda t: False, id="tag-unused"),
    pytest.param([("q", "report")], _text("report"), id="q"),
    pytest.param([("q", "REPORT")], _text("report"), id="q-case"),
    pytest.param([("q", "100%")], _text("100%"), id="q-percent-literal"),
    pytest.param([("q", "%")], _text("%"), id="q-percent-only"),
    pytest.param([("q", "a_b")], _text("a_b"), id="q-underscore-literal"),
    pytest.param([("q", "_")], _text("_"), id="q-underscore-only"),
    pytest.param(
        [("due_before", "2030-06-01T12:00:00Z")], _due(lambda d: d < MID), id="due-before"
    ),
    pytest.param(
        [("due_before", "2030-06-01T14:00:00+02:00")],
        _due(lambda d: d < MID),
        id="due-before-offset",
    ),
    pytest.param([("due_after", "2030-06-01T12:00:00Z")], _due(lambda d: d > MID), id="due-after"),
    pytest.param(
        [("due_after", "2030-06-01T13:00:00+02:00")],
        _due(lambda d: d > MID - timedelta(hours=1)),
        id="due-after-offset",
    ),
    pytest.param(
        [("due_after", "2000-01-01T00:00:00Z"), ("due_before", "2001-03-01T00:00:00Z")],
        _due(lambda d: datetime(2000, 1, 1, tzinfo=UTC) < d < datetime(2001, 3, 1, tzinfo=UTC)),
        id="due-window",
    ),
    pytest.param([("overdue", "true")], _overdue, id="overdue-true"),
    pytest.param([("overdue", "false")], lambda t: not _overdue(t), id="overdue-false"),
    pytest.param(
        [("status", "pending"), ("priority", "urgent"), ("tag", "work")],
        lambda t: t["status"] == "pending" and t["priority"] == "urgent" and "work" in t["tags"],
        id="combined",
    ),
    pytest.param(
        [("status", "in_progress"), ("q", "%")],
        lambda t: t["status"] == "in_progress" and _text("%")(t),
        id="combined-q",
    ),
]


@pytest.fixture
def filter_data(app: TasksAPI, alice: Headers, bob: Headers) -> list[Json]:
    """Alice's FILTER_DATA (each with its `id`), plus Bob's decoys."""
    ids = insert_tasks(app, user_id(app, "alice"), FILTER_DATA)
    insert_tasks(app, user_id(app, "bob"), DECOY_DATA)
    return [
        {"tags": [], "description": None, **spec, "id": i}
        for spec, i in zip(FILTER_DATA, ids, strict=True)
    ]


@pytest.mark.parametrize(("params", "predicate"), FILTERS)
def test_filters_match_the_data(
    client: FlaskClient,
    alice: Headers,
    filter_data: list[Json],
    params: Params,
    predicate: Callable[[Json], bool],
) -> None:
    expected = {task["id"] for task in filter_data if predicate(task)}
    ids = listed_ids(client, alice, params)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


def test_filters_are_not_trivial(filter_data: list[Json]) -> None:
    """Each filter case keeps some tasks and drops others (so it can tell right from wrong)."""
    for case in FILTERS:
        _params, predicate = case.values
        kept = [task for task in filter_data if predicate(task)]  # type: ignore[operator]
        if case.id != "tag-unused":
            assert 0 < len(kept) < len(filter_data), case.id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "done"),
        ("priority", "extreme"),
        ("overdue", "maybe"),
        ("due_before", "2030-06-01T12:00:00"),
        ("due_before", "tomorrow"),
        ("due_after", "2030-06-01"),
        ("tag", "t" * 51),
    ],
)
def test_bad_filter_values_are_422(
    client: FlaskClient, alice: Headers, name: str, value: str
) -> None:
    assert_invalid(get_list(client, alice, [(name, value)]), name, "query")


# --- sorting ---------------------------------------------------------------------------


def _at(day: int) -> datetime:
    return datetime(2030, 1, day, tzinfo=UTC)


SORT_DATA: list[Json] = [
    {"title": "delta", "status": "pending", "priority": "high", "due_date": _at(2),
     "created_at": _at(1), "updated_at": _at(9)},
    {"title": "alpha", "status": "completed", "priority": "low", "due_date": _at(1),
     "created_at": _at(2), "updated_at": _at(5)},
    {"title": "charlie", "status": "in_progress", "priority": "urgent", "due_date": _at(3),
     "created_at": _at(2), "updated_at": _at(5)},
    {"title": "bravo", "status": "pending", "priority": "medium", "due_date": _at(2),
     "created_at": _at(3), "updated_at": _at(3)},
    {"title": "alpha", "status": "in_progress", "priority": "high", "due_date": _at(1),
     "created_at": _at(4), "updated_at": _at(8)},
    {"title": "echo", "status": "completed", "priority": "urgent", "due_date": _at(3),
     "created_at": _at(1), "updated_at": _at(7)},
    {"title": "foxtrot", "status": "pending", "priority": "low", "due_date": _at(2),
     "created_at": _at(5), "updated_at": _at(6)},
    {"title": "golf", "status": "in_progress", "priority": "medium", "due_date": _at(1),
     "created_at": _at(3), "updated_at": _at(4)},
    {"title": "hotel", "status": "pending", "priority": "urgent", "due_date": _at(2),
     "created_at": _at(4), "updated_at": _at(4)},
]  # fmt: skip


def sort_value(name: str, task: Json) -> Any:
    if name == "priority":
        return PRIORITIES.index(task["priority"])
    if name == "status":
        return STATUSES.index(task["status"])
    return task[name]


def expected_order(tasks: list[Json], sort: str) -> list[int]:
    """Python's ordering for `sort`, ties broken by id ascending."""
    ordered = sorted(tasks, key=lambda task: task["id"])
    for part in reversed(sort.split(",")):
        name = part.removeprefix("-")
        ordered.sort(key=lambda task: sort_value(name, task), reverse=part.startswith("-"))
    return [task["id"] for task in ordered]


@pytest.fixture
def sort_data(app: TasksAPI, alice: Headers) -> list[Json]:
    ids = insert_tasks(app, user_id(app, "alice"), SORT_DATA)
    return [{**spec, "id": i} for spec, i in zip(SORT_DATA, ids, strict=True)]


@pytest.mark.parametrize(
    "sort",
    [
        "priority",
        "-priority",
        "status",
        "-status",
        "due_date",
        "-due_date",
        "-due_date,priority",
        "priority,-due_date",
        "status,-priority",
        "-status,due_date,-title",
        "title",
        "-title",
        "id",
        "-id",
        "created_at",
        "-created_at",
        "updated_at,-priority",
    ],
)
def test_sort_orders_like_python(
    client: FlaskClient, alice: Headers, sort_data: list[Json], sort: str
) -> None:
    assert listed_ids(client, alice, [("sort", sort)]) == expected_order(sort_data, sort)


def test_default_sort_is_newest_first(
    client: FlaskClient, alice: Headers, sort_data: list[Json]
) -> None:
    assert listed_ids(client, alice) == expected_order(sort_data, "-created_at")


def test_priority_and_status_sort_by_rank_not_alphabet(
    client: FlaskClient, alice: Headers, sort_data: list[Json]
) -> None:
    by_id = {task["id"]: task for task in sort_data}
    priorities = [by_id[i]["priority"] for i in listed_ids(client, alice, [("sort", "priority")])]
    assert priorities == sorted(priorities, key=PRIORITIES.index)
    assert priorities != sorted(priorities)
    statuses = [by_id[i]["status"] for i in listed_ids(client, alice, [("sort", "status")])]
    assert statuses == sorted(statuses, key=STATUSES.index)
    assert statuses != sorted(statuses)


@pytest.mark.parametrize("page", [1, 2, 3])
def test_sort_filter_and_paging_combine(
    client: FlaskClient, alice: Headers, sort_data: list[Json], page: int
) -> None:
    sort = "-priority,due_date"
    matching = [t for t in sort_data if t["status"] in ("pending", "in_progress")]
    expected = expected_order(matching, sort)[(page - 1) * 3 : page * 3]
    params = [
        ("status", "pending"),
        ("status", "in_progress"),
        ("sort", sort),
        ("per_page", "3"),
        ("page", str(page)),
    ]
    response = get_list(client, alice, params)
    assert response.status_code == 200
    assert [task["id"] for task in response.get_json()["data"]] == expected
    assert response.headers["X-Total-Count"] == str(len(matching))
    for link in links(response).values():
        assert query_of(link)["sort"] == [sort]


@pytest.mark.parametrize("sort", ["owner_id", "-password_hash", "priority,bogus", "", "due_date,"])
def test_unknown_sort_field_is_422_naming_the_allowed_fields(
    client: FlaskClient, alice: Headers, sort: str
) -> None:
    body = assert_invalid(get_list(client, alice, [("sort", sort)]), "sort", "query")
    message = next(e["message"] for e in body["errors"] if e["field"] == "sort")
    for name in SORT_FIELDS:
        assert name in message


# --- tags: created on first use, race-safe ---------------------------------------------


def create_at_once(app: TasksAPI, users: Sequence[Headers], tags: list[str]) -> list[Json]:
    """POST one task per user from parallel threads released together; return the bodies."""
    barrier = threading.Barrier(len(users))
    results: list[Json] = []
    errors: list[BaseException] = []

    def post(headers: Headers) -> None:
        client = app.test_client()  # test clients are not thread-safe: one per thread
        try:
            barrier.wait(timeout=10)
            response = client.post(API, json={"title": "Racer", "tags": tags}, headers=headers)
            results.append({"status": response.status_code, "body": response.get_json()})
        except BaseException as error:  # re-raised below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=post, args=(headers,)) for headers in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == len(users)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_creates_with_the_same_new_tag(
    app: TasksAPI, alice: Headers, bob: Headers, round_: int
) -> None:
    names = [f"race-{round_}-{uuid.uuid4().hex[:8]}", f"race-{round_}-{uuid.uuid4().hex[:8]}"]
    results = create_at_once(app, [alice, bob, alice, bob], [name.upper() for name in names])
    assert [result["status"] for result in results] == [201] * 4, results
    for name in names:
        assert tag_rows(app, name) == 1
    for result in results:
        assert sorted(result["body"]["tags"]) == sorted(names)
        assert_matches_row(result["body"], stored(app, result["body"]["id"]))
