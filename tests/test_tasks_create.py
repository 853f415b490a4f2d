"""Creating tasks: defaults, every field, tag normalisation, validation, read-only fields
and tags created race-safe on first use."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import user_id
from tests.support.problems import assert_invalid
from tests.support.tasks import (
    API,
    MID,
    Json,
    assert_matches_row,
    create,
    parse_time,
    snapshot,
    stored,
    tag_rows,
    task_count,
    timestamp,
    url,
)

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
