"""One clock: every rule that reads the time reads `api.clock`, so moving that one
clock (the `clock` fixture) moves task timestamps, the overdue filter, idempotency expiry,
token purges and API key validation together."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.clock import Clock
from tests.support.db import user_id
from tests.support.problems import assert_invalid
from tests.support.tasks import create, insert_tasks, listed_ids, stored, timestamp, url


def test_task_timestamps_come_from_the_clock(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    clock.advance(days=400)
    before = clock.now()
    task = create(client, alice)
    assert before <= timestamp(task["created_at"]) <= clock.now()
    clock.advance(days=1)
    done = client.put(url(task["id"], "/status"), json={"status": "completed"}, headers=alice)
    assert done.status_code == 200
    body = done.get_json()
    assert timestamp(body["updated_at"]) - timestamp(task["created_at"]) >= timedelta(days=1)
    assert timestamp(body["completed_at"]) == timestamp(body["updated_at"])
    assert stored(app, task["id"])["completed_at"] == timestamp(body["completed_at"])


def test_overdue_follows_the_clock(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    due = clock.now() + timedelta(hours=1)
    (soon,) = insert_tasks(app, user_id(app, "alice"), [{"title": "Soon", "due_date": due}])
    # Each URL is asked once: the response cache (60 s) would answer a repeat without asking
    # the clock again.
    assert listed_ids(client, alice, [("overdue", "false")]) == [soon]
    clock.advance(hours=2)
    assert listed_ids(client, alice, [("overdue", "true")]) == [soon]


def test_an_api_key_must_expire_after_the_clocks_now(
    client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    tomorrow = (clock.now() + timedelta(days=1)).isoformat()
    clock.advance(days=2)
    body = {"name": "ci", "scopes": ["tasks:read"], "expires_at": tomorrow}
    assert_invalid(client.post("/api/v1/api-keys", json=body, headers=alice), "expires_at")
