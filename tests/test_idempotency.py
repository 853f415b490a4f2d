"""Idempotency-Key on createTask: replays, reuse with another body, per-user keys,
failures released, a retry while the first runs, expiry and the purge command."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from api.errors import ConflictError
from api.extensions import db
from api.models import IdempotencyRecord, RevokedToken, Task, User
from api.openapi import TasksAPI
from api.services import tasks
from tests.support.auth import AuthHeaders, Headers
from tests.support.clock import Clock
from tests.support.problems import PROBLEM_KEYS, assert_problem

TASKS = "/api/v1/tasks"
KEY = "6f1c2f5e-3c4b-4d39-9c53-2f1d7d0f5a11"
BODY = {"title": "Pay rent", "priority": "high", "tags": ["home"]}
REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")


def post(
    client: FlaskClient, headers: Headers, body: Any = BODY, key: str | None = KEY
) -> TestResponse:
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(TASKS, json=body, headers={**headers, **extra})


def task_count(app: TasksAPI, owner: str | None = None) -> int:
    with app.app_context():
        query = select(func.count(Task.id))
        if owner is not None:
            query = query.join(User, User.id == Task.owner_id).where(User.username == owner)
        return db.session.scalar(query) or 0


def records(app: TasksAPI) -> list[tuple[str, int | None]]:
    """(key, stored status) of every idempotency record."""
    with app.app_context():
        rows = db.session.execute(
            select(IdempotencyRecord.key, IdempotencyRecord.status_code).order_by(
                IdempotencyRecord.id
            )
        )
        return [(key, status) for key, status in rows]


def assert_replay_of(replay: TestResponse, first: TestResponse) -> None:
    """The same answer byte for byte, marked as a replay."""
    assert replay.status_code == first.status_code
    assert replay.get_data() == first.get_data()
    for name in REPLAYED_HEADERS:
        assert replay.headers[name] == first.headers[name], name
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first.headers


# --- replay ----------------------------------------------------------------------------


def test_retry_with_same_key_and_body_replays_the_first_answer(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    first = post(client, alice)
    assert first.status_code == 201
    for _ in range(2):
        assert_replay_of(post(client, alice), first)
    assert task_count(app) == 1
    assert records(app) == [(KEY, 201)]
    # the replayed Location names the one task that exists
    assert client.get(first.headers["Location"], headers=alice).get_json() == first.get_json()


def test_same_json_spelled_differently_is_the_same_request(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    first = post(client, alice)
    respelled = json.dumps(dict(reversed(list(BODY.items()))), indent=2)
    replay = client.post(
        TASKS,
        data=respelled,
        content_type="application/json",
        headers={**alice, "Idempotency-Key": KEY},
    )
    assert_replay_of(replay, first)
    assert task_count(app) == 1


def test_requests_without_a_key_are_not_deduplicated(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    for _ in range(2):
        response = post(client, alice, key=None)
        assert response.status_code == 201
        assert "Idempotency-Replayed" not in response.headers
    assert task_count(app) == 2
    assert records(app) == []


def test_same_key_with_another_body_is_422(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    assert post(client, alice).status_code == 201
    response = post(client, alice, {**BODY, "title": "Pay more rent"})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == 422
    assert "Idempotency-Key" in body["detail"]
    # a validation problem like any other 422 (the spec's ValidationProblem), naming the key
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("header", "Idempotency-Key")]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Idempotency-Replayed" not in response.headers
    assert task_count(app) == 1
    assert records(app) == [(KEY, 201)]


def test_keys_are_scoped_per_user(app: TasksAPI, client: FlaskClient, auth: AuthHeaders) -> None:
    alice, bob = auth("alice"), auth("bob")
    first = post(client, alice)
    second = post(client, bob)
    assert first.status_code == second.status_code == 201
    assert "Idempotency-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]
    assert second.get_json()["owner_id"] != first.get_json()["owner_id"]
    assert task_count(app, "alice") == task_count(app, "bob") == 1
    # a different body under bob's key is not a conflict with alice's
    assert post(client, bob, {"title": "Other"}, key="bob-only").status_code == 201


@pytest.mark.parametrize("key", ["", "k" * 256, "two words", "caf\u00e9"])
def test_key_outside_1_to_255_visible_ascii_characters_is_422(
    app: TasksAPI, client: FlaskClient, alice: Headers, key: str
) -> None:
    body = assert_problem(post(client, alice, key=key), 422)
    assert {"location": "header", "field": "Idempotency-Key"} in [
        {k: e[k] for k in ("location", "field")} for e in body["errors"]
    ]
    assert task_count(app) == 0
    assert records(app) == []


def test_key_of_255_characters_is_accepted(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    first = post(client, alice, key="k" * 255)
    assert first.status_code == 201
    assert_replay_of(post(client, alice, key="k" * 255), first)
    assert task_count(app) == 1


# --- failures are not kept -------------------------------------------------------------


def test_invalid_first_attempt_does_not_use_up_the_key(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    assert_problem(post(client, alice, {"title": ""}), 422)
    retry = post(client, alice)
    assert retry.status_code == 201
    assert "Idempotency-Replayed" not in retry.headers
    assert task_count(app) == 1


@pytest.fixture
def fail_once(monkeypatch: pytest.MonkeyPatch) -> Callable[[Exception], None]:
    """`fail_once(error)`: the next create_task raises `error`; later ones work."""

    def arm(error: Exception) -> None:
        real = tasks.create_task
        pending = [error]

        def flaky(*args: Any, **kwargs: Any) -> Task:
            if pending:
                raise pending.pop()
            return real(*args, **kwargs)

        monkeypatch.setattr(tasks, "create_task", flaky)

    return arm


@pytest.mark.parametrize(
    ("error", "status"),
    [(ConflictError("Try again."), 409), (RuntimeError("database went away"), 500)],
)
def test_failed_first_attempt_is_not_stored_and_a_retry_runs_afresh(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    fail_once: Callable[[Exception], None],
    error: Exception,
    status: int,
) -> None:
    fail_once(error)
    failed = post(client, alice)
    assert_problem(failed, status)
    assert records(app) == []
    retry = post(client, alice)
    assert retry.status_code == 201
    assert "Idempotency-Replayed" not in retry.headers
    assert task_count(app) == 1
    assert records(app) == [(KEY, 201)]


# --- a retry while the first request runs ----------------------------------------------


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first create_task waits (inside its request) until released; later calls do not
    wait. Returns (entered, release)."""
    entered, release = threading.Event(), threading.Event()
    real = tasks.create_task

    def slow(*args: Any, **kwargs: Any) -> Task:
        if not entered.is_set():
            entered.set()
            assert release.wait(timeout=10), "never released"
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "create_task", slow)
    yield entered, release
    release.set()  # never leave a thread waiting, whatever failed


def test_retry_while_the_first_request_runs_is_409(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    held: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = held
    first: list[TestResponse] = []
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            first.append(post(app.test_client(), alice))  # a client per thread
        except BaseException as error:  # re-raised below, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert entered.wait(timeout=10), "the first request never reached create_task"
        body = assert_problem(post(client, alice), 409)
        assert "Idempotency-Key" in body["detail"]
        assert records(app) == [(KEY, None)]
    finally:
        release.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert first[0].status_code == 201
    assert task_count(app) == 1
    assert_replay_of(post(client, alice), first[0])


# --- expiry and the purge command ------------------------------------------------------


@pytest.mark.parametrize("how", ["a day later", "ttl 0"])
def test_expired_key_creates_a_new_task(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    how: str,
) -> None:
    if how == "ttl 0":
        monkeypatch.setitem(app.config, "IDEMPOTENCY_TTL_SECONDS", 0)
    first = post(client, alice)
    if how == "a day later":
        clock.advance(hours=24, seconds=1)
    again = post(client, alice)
    assert again.status_code == 201
    assert "Idempotency-Replayed" not in again.headers
    assert again.get_json()["id"] != first.get_json()["id"]
    assert task_count(app) == 2
    assert records(app) == [(KEY, 201)]


def test_a_key_still_replays_just_before_its_ttl(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    first = post(client, alice)
    clock.advance(hours=23, minutes=59)
    assert_replay_of(post(client, alice), first)
    assert task_count(app) == 1


def test_records_are_kept_for_the_configured_ttl(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    assert app.config["IDEMPOTENCY_TTL_SECONDS"] == 24 * 3600
    clock.advance(days=3)  # the record's times come from the services' clock
    before = clock.now()
    post(client, alice)
    with app.app_context():
        expires = db.session.scalar(select(IdempotencyRecord.expires_at))
    assert expires is not None
    assert timedelta(hours=24) <= expires - before <= timedelta(hours=24, seconds=5)


def test_purge_expired_deletes_expired_records_and_revocations(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    make_user: Callable[..., User],
    clock: Clock,
) -> None:
    owner = make_user("carol")
    post(client, alice, key="old")
    now = clock.now()
    with app.app_context():
        for jti, expires_at in (("gone", now + timedelta(hours=1)), ("kept", now + timedelta(3))):
            db.session.add(
                RevokedToken(jti=jti, token_type="family", user_id=owner.id, expires_at=expires_at)
            )
        db.session.commit()
    clock.advance(hours=25)  # past the "old" key's 24 h and the "gone" revocation
    post(client, alice, key="live")
    result = app.test_cli_runner().invoke(args=["purge-expired"])
    assert result.exit_code == 0, result.output
    assert "purged 1 idempotency records, 1 revocations" in result.output
    assert records(app) == [("live", 201)]
    with app.app_context():
        assert list(db.session.scalars(select(RevokedToken.jti))) == ["kept"]
    # a second run finds nothing left to purge
    assert "purged 0 idempotency records, 0 revocations" in (
        app.test_cli_runner().invoke(args=["purge-expired"]).output
    )


# --- the spec --------------------------------------------------------------------------


def test_spec_documents_the_idempotency_key(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    operation = spec["paths"][TASKS]["post"]
    assert operation["operationId"] == "createTask"
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert parameter["in"] == "header"
    assert parameter.get("required", False) is False
    assert parameter["schema"]["maxLength"] == 255
    assert parameter["schema"]["minLength"] == 1
    for status in ("409", "422"):
        assert "application/problem+json" in operation["responses"][status]["content"]


def test_every_operation_taking_the_key_documents_what_it_adds(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    taking = {
        operation["operationId"]: operation
        for item in spec["paths"].values()
        for operation in item.values()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert set(taking) == {"createTask", "uploadAttachment", "createReport"}
    for operation in taking.values():
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert successes
        for status in successes:
            assert "Idempotency-Replayed" in responses[status]["headers"]
        for status in ("409", "422"):
            assert "Idempotency-Key" in responses[status]["description"]
    header = spec["components"]["headers"]["Idempotency-Replayed"]
    assert header["schema"]["enum"] == ["true"]
