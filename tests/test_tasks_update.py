"""Reading, replacing, patching, setting the status of and deleting one task: the
response, the row, `version` and `completed_at`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.problems import assert_problem
from tests.support.tasks import (
    MID,
    Json,
    assert_matches_row,
    create,
    parse_time,
    snapshot,
    stored,
    tag_links,
    timestamp,
    url,
)

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
