"""Regression tests for the findings of a hostile black-box probe (issue #10, "hardening").

One section per finding, numbered as in the issue; each test fails on the code the probe
broke. (Finding 10, forged tokens, belongs to the principal work and its tests.) The
property-based sweep over every operation lives in tests/test_never_5xx.py.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, decode_token
from flask_migrate import upgrade
from itsdangerous import URLSafeSerializer
from limits.storage import MemoryStorage, Storage, storage_from_string
from sqlalchemy import event, select, text, update
from werkzeug.test import TestResponse

from api import create_app
from api.config import ConfigError
from api.errors import UNEXPECTED_ERROR
from api.extensions import db
from api.models import ApiKey, PasswordResetToken, Task, User
from api.openapi import TasksAPI
from api.services import tasks as task_service
from api.services import throttle
from api.services.secret_tokens import digest
from schemas.common import DATETIME_BOUNDS
from tests.support.apps import UNREACHABLE_REDIS_URL, dispose, isolated_process_state, make_app
from tests.support.auth import PASSWORD, bearer, login

Json = dict[str, Any]
Headers = dict[str, str]
MakeUser = Callable[..., User]
Auth = Callable[..., Headers]

API = "/api/v1"
ME = f"{API}/users/me"
PASSWORD_URL = f"{ME}/password"
LOGIN = f"{API}/auth/login"
REGISTER = f"{API}/auth/register"
CONFIRM = f"{API}/auth/password-reset/confirm"
TASKS = f"{API}/tasks"
KEYS = f"{API}/api-keys"
NEW_PASSWORD = "a brand new passphrase"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

pytestmark = pytest.mark.redis_tier


def assert_problem(response: TestResponse, status: int) -> Json:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: Json = response.get_json()
    assert body["status"] == status
    return body


def fields_of(body: Json) -> set[tuple[str, str]]:
    return {(error["location"], error["field"]) for error in body["errors"]}


def user_row(app: TasksAPI, username: str) -> User | None:
    with app.app_context():
        return db.session.scalar(select(User).where(User.username == username))


@pytest.fixture
def ladder(app: TasksAPI, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Set `RATE_LIMIT_LOGIN_ACCOUNT` (read at each check) for this test."""

    def set_ladder(value: str) -> None:
        monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN_ACCOUNT", value)

    return set_ladder


# --- 1. the current password, always ---------------------------------------------------


def test_a_fresh_token_cannot_change_the_password_alone(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])  # fresh: straight from login
    body = assert_problem(
        client.put(PASSWORD_URL, json={"password": NEW_PASSWORD}, headers=headers), 422
    )
    assert fields_of(body) == {("json", "current_password")}
    stored = user_row(app, "alice")
    assert stored is not None
    assert stored.password_hash == user.password_hash


def test_the_pair_after_a_change_is_not_fresh_and_cannot_move_the_email(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])
    change = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    response = client.put(PASSWORD_URL, json=change, headers=headers)
    assert response.status_code == 200
    pair = response.get_json()
    with app.app_context():
        assert decode_token(pair["access_token"])["fresh"] is False
    after = bearer(pair["access_token"])
    body = assert_problem(
        client.patch(ME, json={"email": "mallory@example.com"}, headers=after), 422
    )
    assert fields_of(body) == {("json", "current_password")}
    wrong = {"email": "mallory@example.com", "current_password": PASSWORD}  # the old one
    assert_problem(client.patch(ME, json=wrong, headers=after), 403)
    right = {"email": "alice2@example.com", "current_password": NEW_PASSWORD}
    assert client.patch(ME, json=right, headers=after).get_json()["email"] == "alice2@example.com"


def test_the_spec_requires_current_password(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    change = spec["components"]["schemas"]["PasswordChangeIn"]
    assert set(change["required"]) == {"password", "current_password"}


# --- 2 and 5. guesses throttled per name, progressively, without enumeration -----------


def test_wrong_current_passwords_use_up_the_login_budget(
    client: FlaskClient, make_user: MakeUser, ladder: Callable[[str], None]
) -> None:
    ladder("3 per minute")
    make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])
    guess = {"password": NEW_PASSWORD, "current_password": "a wrong guess"}
    for _ in range(3):
        assert_problem(client.put(PASSWORD_URL, json=guess, headers=headers), 403)
    throttled = assert_problem(client.put(PASSWORD_URL, json=guess, headers=headers), 429)
    assert "retry after" in throttled["detail"]
    right = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    response = client.put(PASSWORD_URL, json=right, headers=headers)
    assert_problem(response, 429)  # even the right answer waits
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # the same budget as login's, under both names of the account
    for name in ("alice", "alice@example.com"):
        response = client.post(LOGIN, json={"login": name, "password": PASSWORD})
        assert_problem(response, 429)


def test_failed_logins_use_up_the_current_password_budget(
    client: FlaskClient, make_user: MakeUser, ladder: Callable[[str], None]
) -> None:
    ladder("2 per minute")
    make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])
    for _ in range(2):
        client.post(LOGIN, json={"login": "alice", "password": "not it"})
    right = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert_problem(client.put(PASSWORD_URL, json=right, headers=headers), 429)


def test_the_429_is_the_same_for_an_account_and_for_no_account(
    client: FlaskClient, make_user: MakeUser, ladder: Callable[[str], None]
) -> None:
    ladder("3 per minute")
    make_user("frank")
    answers = {}
    for name in ("frank", "nobody"):
        for _ in range(3):
            assert_problem(client.post(LOGIN, json={"login": name, "password": "guess"}), 401)
        answers[name] = assert_problem(
            client.post(LOGIN, json={"login": name, "password": "guess"}), 429
        )
    assert answers["frank"]["detail"] == answers["nobody"]["detail"]
    # The account's email is a name of its own: it does not give away that it is frank's.
    for name in ("frank@example.com", "nobody@example.com"):
        assert_problem(client.post(LOGIN, json={"login": name, "password": "guess"}), 401)


def test_delays_grow_with_failures_instead_of_a_hard_lock(
    client: FlaskClient, make_user: MakeUser, ladder: Callable[[str], None]
) -> None:
    ladder("2 per 1 second; 3 per hour")
    make_user("alice")

    def fail() -> TestResponse:
        return client.post(LOGIN, json={"login": "alice", "password": "guess"})

    for _ in range(2):
        assert fail().status_code == 401
    short = fail()
    assert_problem(short, 429)
    assert int(short.headers["Retry-After"]) <= 1  # the first rung: a second
    time.sleep(1.1)
    assert fail().status_code == 401  # the wait is over: not locked
    long = fail()
    assert_problem(long, 429)
    assert 60 < int(long.headers["Retry-After"]) <= 3600  # the next rung waits longer


# --- 3. weak passwords -----------------------------------------------------------------

WEAK = ["password", "12345678", " " * 8, "qwertyuiop", "aliceliddell"]


@pytest.mark.parametrize("weak", WEAK, ids=["common", "digits", "spaces", "keyboard", "own-name"])
def test_register_refuses_a_weak_password_saying_why(
    app: TasksAPI, client: FlaskClient, weak: str
) -> None:
    body = {"username": "aliceliddell", "email": "alice@example.com", "password": weak}
    problem = assert_problem(client.post(REGISTER, json=body), 422)
    [error] = problem["errors"]
    assert (error["location"], error["field"]) == ("json", "password")
    assert error["message"].startswith("This password is too weak.")
    assert len(error["message"]) > len("This password is too weak. ")
    assert user_row(app, "aliceliddell") is None


def test_a_password_change_refuses_a_weak_password(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])
    body = {"password": "password1", "current_password": PASSWORD}
    problem = assert_problem(client.put(PASSWORD_URL, json=body, headers=headers), 422)
    assert fields_of(problem) == {("json", "password")}
    stored = user_row(app, "alice")
    assert stored is not None
    assert (stored.password_hash, stored.token_generation) == (user.password_hash, 0)


def test_a_reset_refuses_a_weak_password_and_keeps_the_token(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    token = "reset-token-" + "x" * 40
    with app.app_context():
        expires = datetime.now(UTC) + timedelta(minutes=5)
        db.session.add(
            PasswordResetToken(user_id=user.id, token_hash=digest(token), expires_at=expires)
        )
        db.session.commit()
    weak = assert_problem(client.post(CONFIRM, json={"token": token, "password": "12345678"}), 422)
    assert fields_of(weak) == {("json", "password")}
    response = client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 204  # the token was not used up by the refusal
    login(client, "alice", NEW_PASSWORD)


# --- 4. ids are never reused; tokens older than their account are refused -------------


def test_a_deleted_users_token_never_answers_for_the_next_account(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, auth: Auth
) -> None:
    admin = auth("root", role="admin")
    alice = make_user("alice")
    old = bearer(login(client, "alice")["access_token"])
    assert client.delete(f"{API}/users/{alice.id}", headers=admin).status_code == 204
    body = {"username": "bob", "email": "bob@example.com", "password": NEW_PASSWORD}
    bob = client.post(REGISTER, json=body).get_json()
    assert bob["id"] > alice.id  # AUTOINCREMENT (SQLite) and sequences (PostgreSQL)
    assert_problem(client.get(ME, headers=old), 401)


def test_a_token_issued_before_its_account_was_created_is_refused(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    with app.app_context():
        token = create_access_token(str(user.id), additional_claims={"fam": "f", "gen": 0})
        later = datetime.now(UTC) + timedelta(hours=1)  # the account came after the token
        db.session.execute(update(User).where(User.id == user.id).values(created_at=later))
        db.session.commit()
    assert_problem(client.get(ME, headers=bearer(token)), 401)


def test_migration_0008_makes_sqlite_keep_deleted_ids(tmp_path: Path) -> None:
    with isolated_process_state():
        application = make_app(f"sqlite:///{tmp_path / 'migrated.db'}")
        try:
            with application.app_context():
                upgrade(directory=str(MIGRATIONS))
                ddl = db.session.scalar(
                    text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'")
                )
                assert ddl is not None
                assert "AUTOINCREMENT" in ddl
                for name in ("ann", "ben"):
                    db.session.add(User(username=name, email=f"{name}@x.org", password_hash="x"))
                db.session.commit()
                ben = db.session.scalar(select(User).where(User.username == "ben"))
                assert ben is not None
                ben_id = ben.id
                db.session.delete(ben)
                db.session.commit()
                cat = User(username="cat", email="cat@x.org", password_hash="x")
                db.session.add(cat)
                db.session.commit()
                assert cat.id == ben_id + 1
        finally:
            dispose(application)


# --- 6. deactivation ends API keys for good --------------------------------------------


def test_reactivation_does_not_bring_api_keys_back(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, auth: Auth
) -> None:
    admin = auth("root", role="admin")
    alice = auth("alice")
    secret = client.post(KEYS, json={"name": "ci", "scopes": ["tasks:read"]}, headers=alice)
    key = {"X-API-Key": secret.get_json()["secret"]}
    assert client.get(TASKS, headers=key).status_code == 200
    alice_id = client.get(ME, headers=alice).get_json()["id"]
    for active in (False, True):
        patch = client.patch(f"{API}/users/{alice_id}", json={"is_active": active}, headers=admin)
        assert patch.status_code == 200
    assert_problem(client.get(TASKS, headers=key), 401)
    with app.app_context():
        assert db.session.scalars(select(ApiKey).where(ApiKey.user_id == alice_id)).all() == []


# --- 7. hostile JSON -------------------------------------------------------------------

HOSTILE_BODIES = {
    "deep": "[" * 10_000 + "]" * 10_000,
    "deep-object": '{"a":' * 100 + "1" + "}" * 100,
    "huge-integer": '{"title": ' + "9" * 5000 + "}",
    "lone-surrogate": '{"title": "\\ud800", "login": "\\udfff", "password": "\\ud800"}',
    "raw-surrogate": b'{"title": "\xed\xa0\x80"}',
    "nan": '{"title": NaN}',
}


def json_operations(spec: Json) -> Iterator[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body, ids filled in as 1."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                yield method, re.sub(r"\{[a-z_]+_id\}", "1", path)


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_json_is_a_400_on_every_operation(
    client: FlaskClient, auth: Auth, name: str
) -> None:
    headers = auth("root", role="admin")
    operations = list(json_operations(client.get("/openapi.json").get_json()))
    assert {("post", LOGIN), ("post", REGISTER)} <= set(operations)
    for method, path in operations:
        response = client.open(
            path,
            method=method.upper(),
            data=HOSTILE_BODIES[name],
            headers={**headers, "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 400)
        assert problem["detail"].startswith("The request body is not valid JSON"), (path, problem)


# --- 8. date-times that overflow in UTC ------------------------------------------------

OVERFLOWING = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"]
EDGES = ["0001-01-02T00:00:00Z", "9999-12-30T23:59:59Z"]


@pytest.mark.parametrize("value", OVERFLOWING)
def test_date_times_past_the_bounds_are_422_naming_the_field(
    client: FlaskClient, auth: Auth, value: str
) -> None:
    headers = auth("alice")
    report = {"kind": "summary", "format": "json", "filters": {"due_after": value}}
    key = {"name": "k", "scopes": ["tasks:read"], "expires_at": value}
    cases = [
        (client.post(TASKS, json={"title": "t", "due_date": value}, headers=headers), "json",
         "due_date"),
        (client.get(TASKS, query_string={"due_before": value}, headers=headers), "query",
         "due_before"),
        (client.get(TASKS, query_string={"due_after": value}, headers=headers), "query",
         "due_after"),
        (client.post(f"{API}/reports", json=report, headers=headers), "json", "filters.due_after"),
        (client.post(KEYS, json=key, headers=headers), "json", "expires_at"),
    ]  # fmt: skip
    for response, location, field in cases:
        problem = assert_problem(response, 422)
        assert (location, field) in fields_of(problem), problem
        assert DATETIME_BOUNDS in {error["message"] for error in problem["errors"]}


@pytest.mark.parametrize("value", EDGES)
def test_report_jobs_run_at_the_bounds(client: FlaskClient, auth: Auth, value: str) -> None:
    headers = auth("alice")
    created = client.post(TASKS, json={"title": "edge", "due_date": value}, headers=headers)
    assert created.status_code == 201
    for kind in ("summary", "export"):
        filters = {"due_before": value, "due_after": value, "overdue": True}
        body = {"kind": kind, "format": "csv" if kind == "export" else "json", "filters": filters}
        response = client.post(f"{API}/reports", json=body, headers=headers)
        assert response.status_code == 202
        response.close()  # the inline executor runs the job now
        job = client.get(response.headers["Location"], headers=headers).get_json()
        assert (job["status"], job["error"]) == ("succeeded", None)


def test_the_spec_states_the_bounds(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert DATETIME_BOUNDS in schemas["TaskIn"]["properties"]["due_date"]["description"]
    assert DATETIME_BOUNDS in schemas["ApiKeyIn"]["properties"]["expires_at"]["description"]


# --- 9. hand-made cursors --------------------------------------------------------------


def forged(app: TasksAPI, payload: Any) -> str:
    """A cursor signed with the server's own secret (as if it had leaked): the type checks
    still hold."""
    with app.app_context():
        serializer = URLSafeSerializer(app.config["SECRET_KEY"], salt="tasks-cursor")
        return str(serializer.dumps(payload))


def unsigned(payload: str) -> str:
    import base64

    return base64.urlsafe_b64encode(payload.encode()).decode()


@pytest.mark.parametrize(
    "make",
    [
        lambda app: unsigned('["-created_at,id",["2026-01-01T00:00:00+00:00",1]]'),
        lambda app: forged(app, ["-created_at,id", [1, "x"]]),
        lambda app: forged(app, ["-created_at,id", ["2026-01-01T00:00:00", 1]]),
        lambda app: forged(app, ["-created_at,id", ["2026-01-01T00:00:00+00:00"]]),
        lambda app: forged(app, ["-created_at,id", ["2026-01-01T00:00:00+00:00", "1\x00"]]),
        lambda app: forged(app, ["-created_at,id", ["2026-01-01T00:00:00+00:00", True]]),
        lambda app: forged(app, ["-created_at,id", {"a": 1}]),
        lambda app: forged(app, ["-created_at,id", [20260101, 1]]),
        lambda app: forged(app, "not a list"),
        lambda app: "A" * 1000,
        lambda app: "..",
    ],
    ids=["unsigned", "wrong-types", "naive", "short", "nul", "bool", "dict", "int-time",
         "string", "junk", "dots"],
)  # fmt: skip
def test_a_hand_made_cursor_is_422_naming_after(
    app: TasksAPI, client: FlaskClient, auth: Auth, make: Callable[[TasksAPI], str]
) -> None:
    headers = auth("alice")
    response = client.get(TASKS, query_string={"after": make(app)}, headers=headers)
    assert fields_of(assert_problem(response, 422)) == {("query", "after")}


def test_a_cursor_value_with_a_nul_is_refused(
    app: TasksAPI, client: FlaskClient, auth: Auth
) -> None:
    """PostgreSQL cannot compare a string holding NUL (a 500); SQLite would list nothing."""
    headers = auth("alice")
    cursor = forged(app, ["title,id", ["a\x00", 1]])
    response = client.get(TASKS, query_string={"sort": "title", "after": cursor}, headers=headers)
    assert fields_of(assert_problem(response, 422)) == {("query", "after")}


def test_no_cursor_follows_a_sort_by_due_date(
    app: TasksAPI, client: FlaskClient, auth: Auth
) -> None:
    """Undated tasks make due_date no key to continue from: even a cursor signed for that
    sort is refused (it is never minted)."""
    headers = auth("alice")
    cursor = forged(app, ["due_date,id", [None, 1]])
    response = client.get(
        TASKS, query_string={"sort": "due_date", "after": cursor}, headers=headers
    )
    body = assert_problem(response, 422)
    assert fields_of(body) == {("query", "after")}
    assert [e["message"] for e in body["errors"]] == [
        "A cursor cannot follow a sort by due_date; use page."
    ]


def test_a_cursor_is_bound_to_its_sort(client: FlaskClient, auth: Auth) -> None:
    headers = auth("alice")
    for title in ("a", "b", "c"):
        client.post(TASKS, json={"title": title}, headers=headers)
    page = client.get(TASKS, query_string={"sort": "title", "per_page": 1}, headers=headers)
    cursor = page.get_json()["pagination"]["next_cursor"]
    same = client.get(
        TASKS, query_string={"sort": "title", "per_page": 1, "after": cursor}, headers=headers
    )
    assert [task["title"] for task in same.get_json()["data"]] == ["b"]
    other = client.get(
        TASKS, query_string={"sort": "-created_at", "after": cursor}, headers=headers
    )
    assert fields_of(assert_problem(other, 422)) == {("query", "after")}  # fmt: skip


# --- 11. unexpected errors -------------------------------------------------------------


def test_an_unexpected_error_rolls_back_and_says_nothing_internal(
    app: TasksAPI, client: FlaskClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = auth("alice")
    task_id = client.post(TASKS, json={"title": "before"}, headers=headers).get_json()["id"]
    seen: list[str | None] = []

    def half_done(task: Task, changes: Json, now: datetime) -> None:
        task.title = "half-done"
        db.session.flush()  # written, not committed
        raise RuntimeError("internal detail: a stack frame's secret")

    def title_now(response: Any) -> Any:
        # After the error handler, before teardown: the session must not see the write.
        seen.append(db.session.scalar(select(Task.title).where(Task.id == task_id)))
        return response

    monkeypatch.setattr(task_service, "_apply", half_done)
    app.after_request_funcs.setdefault(None, []).insert(0, title_now)  # runs last
    try:
        response = client.patch(f"{TASKS}/{task_id}", json={"title": "x"}, headers=headers)
    finally:
        app.after_request_funcs[None].remove(title_now)
    problem = assert_problem(response, 500)
    assert problem["detail"] == UNEXPECTED_ERROR
    assert "secret" not in response.get_data(as_text=True)
    assert seen == ["before"]  # the handler rolled the half-done write back
    with app.app_context():
        assert db.session.scalar(select(Task.title).where(Task.id == task_id)) == "before"


def test_a_failing_hook_still_gets_a_problem_and_an_access_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with isolated_process_state():
        # As in production: Flask answers 500 instead of re-raising (the testing default).
        application = make_app(f"sqlite:///{tmp_path / 'hook.db'}", PROPAGATE_EXCEPTIONS=False)

        def broken(response: Any) -> Any:
            raise RuntimeError("a hook failed")

        application.after_request(broken)  # registered last: runs before the access log
        try:
            with caplog.at_level("INFO", logger="api.access"):
                response = application.test_client().get("/api/v1/nowhere")
            assert response.status_code == 500
            assert "Server got itself in trouble" not in response.get_data(as_text=True)
            assert response.get_json()["detail"] == UNEXPECTED_ERROR
            lines = [r for r in caplog.records if r.name == "api.access"]
            assert [(r.path, r.status) for r in lines] == [("/api/v1/nowhere", 500)]  # type: ignore[attr-defined]
        finally:
            dispose(application)


# --- 12 and 15. production refuses unsafe exposure -------------------------------------

SECRET = "s" * 40


def production(**config: Any) -> Json:
    base = {"APP_ENV": "production", "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET + "j"}
    return {**base, "SQLALCHEMY_DATABASE_URI": "sqlite://", **config}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("APP_ENV", "MAIL_BACKEND", "METRICS_ENABLED", "METRICS_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_an_unchosen_mail_backend() -> None:
    with pytest.raises(ConfigError, match="MAIL_BACKEND"):
        create_app(production())


@pytest.mark.usefixtures("clean_environment")
def test_production_takes_the_console_backend_when_asked_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "console")
    with isolated_process_state():
        application = create_app(production())
        assert application.config["MAIL_BACKEND"] == "console"
        dispose(application)


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_public_metrics() -> None:
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app(production(MAIL_BACKEND="smtp", METRICS_ENABLED=True))
    with isolated_process_state():
        application = create_app(
            production(MAIL_BACKEND="smtp", METRICS_ENABLED=True, METRICS_TOKEN="t" * 32)
        )
        dispose(application)


# --- 14. admin operations need an admin scope ------------------------------------------


def test_an_admins_read_only_key_cannot_clear_the_cache(client: FlaskClient, auth: Auth) -> None:
    admin = auth("root", role="admin")

    def key(*scopes: str) -> Headers:
        made = client.post(KEYS, json={"name": "k", "scopes": list(scopes)}, headers=admin)
        return {"X-API-Key": made.get_json()["secret"]}

    for scopes in (["tasks:read"], ["users:read", "users:write"]):
        refused = client.delete(f"{API}/admin/cache", headers=key(*scopes))
        assert "admin:write" in assert_problem(refused, 403)["detail"]
    assert client.delete(f"{API}/admin/cache", headers=key("admin:write")).status_code == 204
    spec = client.get("/openapi.json").get_json()
    clear = spec["paths"]["/api/v1/admin/cache"]["delete"]
    assert clear["x-required-scopes"] == ["admin:write"]
    assert {"ApiKeyAuth": ["admin:write", "admin"]} in clear["security"]


# --- 16. a change without If-Match is never a 412 --------------------------------------


@pytest.fixture
def concurrent_changes(app: TasksAPI) -> Iterator[Callable[[int, int], None]]:
    """`race(task_id, n)`: the next `n` flushes each find the task changed by someone else
    just before (another connection bumps its version): a lost race, every time."""
    pending: list[int] = []

    def before_flush(session: Any, context: Any, instances: Any) -> None:
        if pending and pending[0] > 0:
            pending[0] -= 1
            with db.engine.begin() as other:
                other.execute(
                    update(Task)
                    .where(Task.id == pending[1])
                    .values(version=Task.version + 1, description="someone else")
                )

    def race(task_id: int, times: int) -> None:
        pending[:] = [times, task_id]

    event.listen(db.session, "before_flush", before_flush)
    yield race
    event.remove(db.session, "before_flush", before_flush)


def create(client: FlaskClient, headers: Headers) -> TestResponse:
    response = client.post(TASKS, json={"title": "shared"}, headers=headers)
    assert response.status_code == 201
    return response


def test_a_lost_race_without_if_match_is_applied_again(
    client: FlaskClient, auth: Auth, concurrent_changes: Callable[[int, int], None]
) -> None:
    headers = auth("alice")
    task_id = create(client, headers).get_json()["id"]
    concurrent_changes(task_id, 1)
    response = client.patch(f"{TASKS}/{task_id}", json={"title": "mine"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    task = response.get_json()
    # both changes hold: the other writer's description, then this title
    assert (task["title"], task["description"], task["version"]) == ("mine", "someone else", 3)


def test_a_lost_race_with_if_match_is_still_412(
    client: FlaskClient, auth: Auth, concurrent_changes: Callable[[int, int], None]
) -> None:
    headers = auth("alice")
    created = create(client, headers)
    task_id = created.get_json()["id"]
    concurrent_changes(task_id, 1)
    etag = {"If-Match": created.headers["ETag"]}
    response = client.patch(
        f"{TASKS}/{task_id}", json={"title": "mine"}, headers={**headers, **etag}
    )
    assert_problem(response, 412)


def test_races_lost_again_and_again_are_409(
    client: FlaskClient, auth: Auth, concurrent_changes: Callable[[int, int], None]
) -> None:
    headers = auth("alice")
    task_id = create(client, headers).get_json()["id"]
    concurrent_changes(task_id, task_service.BLIND_WRITE_ATTEMPTS)
    assert_problem(client.patch(f"{TASKS}/{task_id}", json={"title": "x"}, headers=headers), 409)
    concurrent_changes(task_id, task_service.BLIND_WRITE_ATTEMPTS)
    assert_problem(client.delete(f"{TASKS}/{task_id}", headers=headers), 409)


@pytest.mark.parametrize("round_", range(3))
def test_two_blind_patches_at_once_both_succeed(
    app: TasksAPI, client: FlaskClient, auth: Auth, round_: int
) -> None:
    headers = auth("alice")
    task_id = create(client, headers).get_json()["id"]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def patch(title: str) -> None:
        own = app.test_client()  # test clients are not thread-safe: one per thread
        try:
            barrier.wait(timeout=10)
            statuses.append(
                own.patch(f"{TASKS}/{task_id}", json={"title": title}, headers=headers).status_code
            )
        except BaseException as error:  # re-raised below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=patch, args=(title,)) for title in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(statuses) == [200, 200]
    with app.app_context():
        task = db.session.get(Task, task_id)
        assert task is not None
        assert (task.version, task.title in ("left", "right")) == (3, True)


# --- found by the never-5xx suite ------------------------------------------------------


@pytest.mark.parametrize("if_match", ["*", '"nope"', 'W/"1.1"'])
def test_a_get_ignores_if_match_instead_of_a_bare_412(
    client: FlaskClient, auth: Auth, if_match: str
) -> None:
    """If-Match is declared on writes only; Werkzeug used to answer a GET carrying one with
    a 412 holding the JSON body (not a problem, not in the spec)."""
    headers = auth("alice")
    task_id = create(client, headers).get_json()["id"]
    for url in (TASKS, f"{TASKS}/{task_id}", ME):
        response = client.get(url, headers={**headers, "If-Match": if_match})
        assert response.status_code == 200, (url, response.status_code)


def test_the_contract_hooks_know_the_date_time_bounds() -> None:
    import contract.hooks

    assert DATETIME_BOUNDS.startswith(contract.hooks.DATETIME_BOUNDS_START)


# --- the guess throttle's storage ------------------------------------------------------


@pytest.fixture
def redis_storage(redis_url: str) -> Iterator[Callable[[], Storage]]:
    """`make()`: a new client (a worker of its own) on the test Redis, under a key prefix
    of this test's own, whose keys are deleted after it."""
    prefix = f"tasks-api-test-{uuid.uuid4().hex[:12]}"
    made: list[Storage] = []

    def make() -> Storage:
        made.append(storage_from_string(redis_url, key_prefix=prefix))
        return made[-1]

    yield make
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_guesses_count_across_workers_sharing_redis(
    client: FlaskClient,
    make_user: MakeUser,
    ladder: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    redis_storage: Callable[[], Storage],
) -> None:
    ladder("3 per minute")
    make_user("alice")
    first, second = redis_storage(), redis_storage()
    monkeypatch.setattr(throttle, "_shared_storage", lambda: first)
    for _ in range(3):
        assert_problem(client.post(LOGIN, json={"login": "alice", "password": "guess"}), 401)
    monkeypatch.setattr(throttle, "_shared_storage", lambda: second)  # another worker
    assert_problem(client.post(LOGIN, json={"login": "alice", "password": PASSWORD}), 429)


def test_an_unreachable_store_still_throttles_in_memory(
    client: FlaskClient,
    make_user: MakeUser,
    ladder: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ladder("3 per minute")
    make_user("alice")
    down = storage_from_string(UNREACHABLE_REDIS_URL, socket_connect_timeout=0.2)
    monkeypatch.setattr(throttle, "_shared_storage", lambda: down)
    monkeypatch.setattr(throttle, "_fallback", MemoryStorage())
    for _ in range(3):
        assert_problem(client.post(LOGIN, json={"login": "alice", "password": "guess"}), 401)
    assert_problem(client.post(LOGIN, json={"login": "alice", "password": PASSWORD}), 429)
