"""Idempotency-Key where things go wrong: a view that fails after writing, bodies that are
not JSON, the shortest key, and a claim that vanishes while a second request reads it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import request
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, select
from werkzeug.test import TestResponse

from api.extensions import db
from api.idempotency import idempotent
from api.models import IdempotencyRecord, Scope, Task, User
from api.openapi import TasksAPI
from api.security import requires
from api.services import idempotency, tasks
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.problems import assert_problem

TASKS = "/api/v1/tasks"
KEY = "8a0e1f3c-5b2d-4c6e-9f70-1d2c3b4a5e6f"
BODY = {"title": "Pay rent"}
Headers = dict[str, str]


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


def post(client: FlaskClient, headers: Headers, key: str = KEY, **kwargs: Any) -> TestResponse:
    kwargs.setdefault("json", BODY)
    return client.post(TASKS, headers={**headers, "Idempotency-Key": key}, **kwargs)


def task_titles(app: TasksAPI) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Task.title).order_by(Task.id)))


def records(app: TasksAPI) -> list[tuple[str, int | None]]:
    with app.app_context():
        rows = db.session.execute(select(IdempotencyRecord.key, IdempotencyRecord.status_code))
        return [(key, status) for key, status in rows]


def test_a_view_failing_after_writing_leaves_nothing_behind(
    app: TasksAPI, client: FlaskClient, alice: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tasks.create_task
    failures = [RuntimeError("the notification service went away")]

    def write_then_fail(user: User, data: dict[str, Any]) -> Task:
        if not failures:
            return real(user, data)
        db.session.add(Task(owner_id=user.id, title="half-done"))
        db.session.flush()  # the INSERT ran, in the request's open transaction
        raise failures.pop()

    monkeypatch.setattr(tasks, "create_task", write_then_fail)
    assert_problem(post(client, alice), 500)
    # Releasing the key must not commit the failed view's writes along with it.
    assert task_titles(app) == []
    assert records(app) == []

    retry = post(client, alice)
    assert retry.status_code == 201
    assert "Idempotency-Replayed" not in retry.headers
    assert task_titles(app) == ["Pay rent"]
    assert records(app) == [(KEY, 201)]


def test_a_body_that_is_not_json_is_415_and_leaves_the_key_unused(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    refused = post(client, alice, json=None, data="title=Pay rent", content_type="text/plain")
    assert_problem(refused, 415)
    assert records(app) == []
    assert post(client, alice).status_code == 201
    assert task_titles(app) == ["Pay rent"]


def test_a_key_of_one_character_is_accepted(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    first = post(client, alice, key="k")
    assert first.status_code == 201, first.get_json()
    replay = post(client, alice, key="k")
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    assert records(app) == [("k", 201)]


@contextmanager
def released_while_read_back(app: TasksAPI, user_id: int, key: str) -> Iterator[list[str]]:
    """Delete the claim on (`user_id`, `key`) from another connection just before the
    first SELECT of idempotency records, as its owner releasing it would. Yields the
    statements it fired on (one, or none if no request read a record back)."""
    fired: list[str] = []
    with app.app_context():
        engine = db.engine

    def release(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if fired or not statement.lstrip().upper().startswith("SELECT"):
            return
        if "idempotency_records" not in statement:
            return
        fired.append(statement)
        with engine.begin() as other:
            other.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
                )
            )

    event.listen(engine, "before_cursor_execute", release)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", release)


def test_a_claim_released_while_a_retry_reads_it_is_claimed_again(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.username == "alice"))
        assert user_id is not None
        # The first request with this key is running (its claim has no answer yet)...
        db.session.add(
            IdempotencyRecord(
                user_id=user_id,
                key=KEY,
                fingerprint="of the first request",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        db.session.commit()

    # ...and fails, releasing the key, between this retry's claim and its read-back.
    with released_while_read_back(app, user_id, KEY) as fired:
        retry = post(client, alice)
    assert len(fired) == 1, "the race was not forced"
    assert retry.status_code == 201, retry.get_json()
    assert "Idempotency-Replayed" not in retry.headers
    assert task_titles(app) == ["Pay rent"]
    assert records(app) == [(KEY, 201)]


def test_the_purge_commits_its_deletions(app: TasksAPI, alice: Headers) -> None:
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.username == "alice"))
        now = datetime.now(UTC)
        for key, expires_at in (("old", now - timedelta(minutes=1)), ("live", now + timedelta(1))):
            record = IdempotencyRecord(
                user_id=user_id, key=key, fingerprint="f", expires_at=expires_at
            )
            db.session.add(record)
        db.session.commit()
        assert idempotency.purge_expired() == 1
        db.session.rollback()  # nothing left pending: the purge stands on its own
    assert [key for key, _ in records(app)] == ["live"]


# --- a view that takes any body (uploads): the raw bytes are the request ----------------


@pytest.fixture
def raw_app(tmp_path: Path) -> Iterator[tuple[TasksAPI, list[bytes]]]:
    """An app with one idempotent view that takes any body; yields it and the bodies the
    view ran for."""
    ran: list[bytes] = []
    with isolated_process_state():
        application = app_with_schema(sqlite_url(tmp_path))

        @application.post("/api/v1/uploads")
        @requires(Scope.TASKS_WRITE)
        @idempotent
        def upload() -> tuple[dict[str, Any], int]:
            """Store the body; answer with the status in `?status=` (201 by default)."""
            ran.append(request.get_data())
            status = int(request.args.get("status", "201"))
            return {"upload": len(ran), "size": len(request.get_data())}, status

        add_user(application, "alice")
        yield application, ran
        dispose(application)


Send = Callable[..., TestResponse]


@pytest.fixture
def send(raw_app: tuple[TasksAPI, list[bytes]]) -> Send:
    """`send(data, status=201)`: POST `data` to the raw view with alice's token and KEY."""
    application, _ = raw_app
    client = application.test_client()
    headers = {**bearer(login(client, "alice")["access_token"]), "Idempotency-Key": KEY}

    def post_raw(data: bytes, status: int = 201) -> TestResponse:
        return client.post(
            f"/api/v1/uploads?status={status}",
            data=data,
            headers=headers,
            content_type="application/octet-stream",
        )

    return post_raw


def test_a_body_that_is_not_json_is_fingerprinted_by_its_bytes(
    raw_app: tuple[TasksAPI, list[bytes]], send: Send
) -> None:
    application, ran = raw_app

    first = send(b"\x89PNG\r\n\x1a\n not json")
    assert first.status_code == 201, first.get_data(as_text=True)
    replay = send(b"\x89PNG\r\n\x1a\n not json")
    assert replay.status_code == 201
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    other = send(b"\x89PNG\r\n\x1a\n other bytes")
    body = assert_problem(other, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("header", "Idempotency-Key")]
    assert ran == [b"\x89PNG\r\n\x1a\n not json"]
    with application.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_a_200_answer_is_kept_and_replayed(
    raw_app: tuple[TasksAPI, list[bytes]], send: Send
) -> None:
    _, ran = raw_app
    first = send(b"data", status=200)
    assert first.status_code == 200
    replay = send(b"data", status=200)
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    assert len(ran) == 1


def test_an_error_the_view_answers_without_raising_releases_the_key(
    raw_app: tuple[TasksAPI, list[bytes]], send: Send
) -> None:
    application, ran = raw_app
    assert send(b"data", status=409).status_code == 409
    with application.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    retry = send(b"data")
    assert retry.status_code == 201
    assert "Idempotency-Replayed" not in retry.headers
    assert len(ran) == 2
