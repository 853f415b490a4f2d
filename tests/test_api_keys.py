"""API keys: issue, list, get, delete; authenticate with one; scopes; the secret's secrecy."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import ApiKey, Role, Task, User
from api.openapi import TasksAPI
from tests.support.auth import AuthHeaders
from tests.support.clock import Clock
from tests.support.db import count
from tests.support.problems import assert_problem

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier

KEYS = "/api/v1/api-keys"
TASKS = "/api/v1/tasks"
ME = "/api/v1/users/me"
KEY_FIELDS = {"id", "name", "prefix", "scopes", "expires_at", "created_at", "last_used_at"}

Json = dict[str, Any]


def create_key(
    client: FlaskClient, headers: dict[str, str], scopes: list[str], **fields: Any
) -> Json:
    fields.setdefault("name", "integration")
    response = client.post(KEYS, json={"scopes": scopes, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: Json = response.get_json()
    return body


def key_headers(key: Json) -> dict[str, str]:
    return {"X-API-Key": key["secret"]}


@pytest.fixture
def issue(client: FlaskClient, auth: AuthHeaders) -> Callable[..., Json]:
    """`issue("tasks:read", user="bob")`: a new key of that user with those scopes."""

    def make(*scopes: str, user: str = "alice", role: str = Role.USER.value, **fields: Any) -> Json:
        return create_key(client, auth(user, role), list(scopes), **fields)

    return make


def assert_key_refused(response: TestResponse, detail: str) -> None:
    body = assert_problem(response, 401)
    assert detail in body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("ApiKey")


# --- create ----------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_its_hash(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    response = client.post(
        KEYS, json={"name": "CI", "scopes": ["tasks:write", "tasks:read"]}, headers=headers
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == KEY_FIELDS | {"secret"}
    secret = body["secret"]
    assert secret.startswith("tk_")
    assert len(secret) >= 40
    assert body["prefix"] == secret[:11]
    assert body["scopes"] == ["tasks:read", "tasks:write"]  # canonical order
    assert body["name"] == "CI"
    assert body["expires_at"] is None
    assert body["last_used_at"] is None

    with app.app_context():
        key = db.session.scalars(select(ApiKey)).one()
        assert key.id == body["id"]
        assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        stored = [str(getattr(key, column.key)) for column in ApiKey.__table__.columns]
        assert not any(secret in value for value in stored)
        owner = db.session.get(User, key.user_id)
        assert owner is not None
        assert owner.username == "alice"

    shown = client.get(response.headers["Location"], headers=headers)
    assert shown.status_code == 200
    assert shown.get_json() == {k: v for k, v in body.items() if k != "secret"}


def test_a_key_can_expire(client: FlaskClient, issue: Callable[..., Json]) -> None:
    key = issue("tasks:read", expires_at="2999-01-01T00:00:00+02:00")
    assert key["expires_at"] == "2998-12-31T22:00:00+00:00"


def test_a_user_cannot_grant_scopes_beyond_their_role(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    body = {"name": "too much", "scopes": ["tasks:read", "users:read", "users:write"]}
    problem = assert_problem(client.post(KEYS, json=body, headers=auth("alice")), 403)
    assert "users:read, users:write" in problem["detail"]
    assert count(app, ApiKey) == 0


def test_an_admin_can_grant_user_scopes(issue: Callable[..., Json]) -> None:
    key = issue("users:read", "users:write", user="root", role=Role.ADMIN.value)
    assert key["scopes"] == ["users:read", "users:write"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["tasks:delete"]}, "scopes.0"),
        ({"scopes": ["tasks:read", "tasks:read"]}, "scopes"),
        ({"scopes": "tasks:read"}, "scopes"),
        ({"scopes": None}, "scopes"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": 5}, "name"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00" + "0" * 60 + "Z"}, "expires_at"),
        ({"secret": "tk_mine"}, "secret"),
        ({"user_id": 2}, "user_id"),
        ({"last_used_at": None}, "last_used_at"),
    ],
    ids=[
        "no-scopes",
        "unknown-scope",
        "repeated-scope",
        "scopes-string",
        "scopes-null",
        "empty-name",
        "blank-name",
        "long-name",
        "name-int",
        "expired",
        "naive-expiry",
        "expiry-over-64-characters",
        "secret",
        "user_id",
        "last_used_at",
    ],
)
def test_create_rejects_invalid_input(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, changes: Json, field: str
) -> None:
    body = {"name": "key", "scopes": ["tasks:read"], **changes}
    problem = assert_problem(client.post(KEYS, json=body, headers=auth()), 422)
    assert ("json", field) in {(e["location"], e["field"]) for e in problem["errors"]}
    assert count(app, ApiKey) == 0


# --- list, get, delete -----------------------------------------------------------------


def test_list_shows_own_keys_paginated_without_secrets(
    client: FlaskClient, auth: AuthHeaders, issue: Callable[..., Json]
) -> None:
    mine = [issue("tasks:read", name=f"key {n}") for n in range(3)]
    issue("tasks:read", user="bob")

    response = client.get(f"{KEYS}?per_page=2", headers=auth("alice"))
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in response.headers["Link"]
    body = response.get_json()
    assert [key["id"] for key in body["data"]] == [mine[0]["id"], mine[1]["id"]]
    assert all(set(key) == KEY_FIELDS for key in body["data"])
    assert body["pagination"]["total"] == 3

    second = client.get(f"{KEYS}?per_page=2&page=2", headers=auth("alice")).get_json()
    assert [key["name"] for key in second["data"]] == ["key 2"]


def test_delete_revokes_the_key_at_once(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, issue: Callable[..., Json]
) -> None:
    key = issue("tasks:read")
    assert client.get(TASKS, headers=key_headers(key)).status_code == 200

    response = client.delete(f"{KEYS}/{key['id']}", headers=auth("alice"))
    assert response.status_code == 204
    assert response.data == b""
    assert count(app, ApiKey) == 0
    assert_key_refused(client.get(TASKS, headers=key_headers(key)), "unknown or was deleted")
    assert_problem(client.delete(f"{KEYS}/{key['id']}", headers=auth("alice")), 404)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_users_key_is_404(
    app: TasksAPI,
    client: FlaskClient,
    auth: AuthHeaders,
    issue: Callable[..., Json],
    method: str,
) -> None:
    bobs = issue("tasks:read", user="bob")
    response = client.open(f"{KEYS}/{bobs['id']}", method=method.upper(), headers=auth("alice"))
    body = assert_problem(response, 404)
    assert body["detail"] == f"API key {bobs['id']} does not exist."
    assert count(app, ApiKey) == 1
    assert client.get(TASKS, headers=key_headers(bobs)).status_code == 200


@pytest.mark.parametrize("key_id", [999, 2**31, 2**63])
def test_a_missing_key_is_404(client: FlaskClient, auth: AuthHeaders, key_id: int) -> None:
    assert_problem(client.get(f"{KEYS}/{key_id}", headers=auth()), 404)


# --- authenticating with a key ---------------------------------------------------------


def test_a_read_key_lists_but_cannot_create(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, issue: Callable[..., Json]
) -> None:
    client.post(TASKS, json={"title": "mine"}, headers=auth("alice"))
    key = issue("tasks:read")

    listed = client.get(TASKS, headers=key_headers(key))
    assert listed.status_code == 200
    assert listed.headers["Cache-Control"] == "private, no-cache"  # not for shared caches
    assert [task["title"] for task in listed.get_json()["data"]] == ["mine"]
    assert client.get("/api/v1/tags", headers=key_headers(key)).status_code == 200

    response = client.post(TASKS, json={"title": "x"}, headers=key_headers(key))
    body = assert_problem(response, 403)
    assert "`tasks:write`" in body["detail"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("ApiKey")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="tasks:write"' in challenge
    assert count(app, Task) == 1


def test_a_write_key_cannot_read(client: FlaskClient, issue: Callable[..., Json]) -> None:
    key = issue("tasks:write")
    assert client.post(TASKS, json={"title": "x"}, headers=key_headers(key)).status_code == 201
    body = assert_problem(client.get(TASKS, headers=key_headers(key)), 403)
    assert "`tasks:read`" in body["detail"]


def test_a_key_acts_as_its_owner(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, issue: Callable[..., Json]
) -> None:
    client.post(TASKS, json={"title": "bob's"}, headers=auth("bob"))
    key = issue("tasks:read", "tasks:write")
    created = client.post(TASKS, json={"title": "via key"}, headers=key_headers(key))
    assert created.status_code == 201
    me = client.get(ME, headers=key_headers(key))
    assert me.status_code == 200
    assert me.get_json()["username"] == "alice"
    assert created.get_json()["owner_id"] == me.get_json()["id"]
    titles = [t["title"] for t in client.get(TASKS, headers=key_headers(key)).get_json()["data"]]
    assert titles == ["via key"]


def test_a_bearer_token_holds_every_scope_of_its_role(
    client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    assert client.post(TASKS, json={"title": "x"}, headers=headers).status_code == 201
    assert client.get(TASKS, headers=headers).status_code == 200


def test_an_expired_key_is_401(
    client: FlaskClient, issue: Callable[..., Json], clock: Clock
) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    key = issue("tasks:read", expires_at=expires.isoformat())
    assert client.get(TASKS, headers=key_headers(key)).status_code == 200
    clock.advance(hours=1)
    assert_key_refused(client.get(TASKS, headers=key_headers(key)), "expired")


@pytest.mark.parametrize(
    "secret", ["tk_not-a-real-key", "", "x" * 500], ids=["unknown", "empty", "long"]
)
def test_an_unknown_key_is_401(client: FlaskClient, auth: AuthHeaders, secret: str) -> None:
    auth("alice")
    response = client.get(TASKS, headers={"X-API-Key": secret})
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"]
    assert "access_token" not in body


def test_the_key_of_a_deactivated_user_is_401(
    app: TasksAPI, client: FlaskClient, issue: Callable[..., Json]
) -> None:
    key = issue("tasks:read")
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    assert_key_refused(client.get(TASKS, headers=key_headers(key)), "inactive")


def test_a_demoted_admins_key_loses_the_user_scopes(
    app: TasksAPI, client: FlaskClient, issue: Callable[..., Json]
) -> None:
    key = issue("users:read", "tasks:read", user="root", role=Role.ADMIN.value)
    assert client.get("/api/v1/users", headers=key_headers(key)).status_code == 200
    with app.app_context():
        db.session.execute(update(User).values(role=Role.USER.value))
        db.session.commit()
    assert_problem(client.get("/api/v1/users", headers=key_headers(key)), 403)
    assert client.get(TASKS, headers=key_headers(key)).status_code == 200


SESSION_ONLY = [
    ("post", KEYS, {"name": "more", "scopes": ["tasks:read"]}),
    ("get", KEYS, None),
    ("get", f"{KEYS}/1", None),
    ("delete", f"{KEYS}/1", None),
    ("patch", ME, {"username": "mallory"}),
    ("put", f"{ME}/password", {"password": "new password 123"}),
    ("post", "/api/v1/auth/logout", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ONLY, ids=lambda v: str(v))
def test_a_key_cannot_manage_credentials(
    app: TasksAPI,
    client: FlaskClient,
    issue: Callable[..., Json],
    method: str,
    path: str,
    body: Json | None,
) -> None:
    # A leaked key must not mint more keys, delete keys, or take over the account.
    key = issue("tasks:read", "tasks:write", "reports:write")
    response = client.open(path, method=method.upper(), json=body, headers=key_headers(key))
    problem = assert_problem(response, 401)
    assert problem["detail"] == "A bearer token is required."
    assert count(app, ApiKey) == 1


def test_a_request_without_credentials_is_told_both_ways(client: FlaskClient) -> None:
    body = assert_problem(client.get(TASKS), 401)
    assert "X-API-Key" in body["detail"]


def test_last_used_at_is_recorded_at_most_once_a_minute(
    app: TasksAPI, client: FlaskClient, issue: Callable[..., Json], clock: Clock
) -> None:
    key = issue("tasks:read")

    def last_used() -> datetime | None:
        with app.app_context():
            return db.session.get(ApiKey, key["id"]).last_used_at  # type: ignore[union-attr]

    assert client.get(TASKS, headers=key_headers(key)).status_code == 200
    first = last_used()
    assert first is not None
    clock.advance(seconds=30)
    assert client.get(TASKS, headers=key_headers(key)).status_code == 200
    assert last_used() == first
    clock.advance(seconds=31)
    assert client.get(TASKS, headers=key_headers(key)).status_code == 200
    later = last_used()
    assert later is not None
    assert later - first >= timedelta(seconds=60)


def test_the_secret_never_appears_again(
    client: FlaskClient, auth: AuthHeaders, caplog: pytest.LogCaptureFixture
) -> None:
    headers = auth("alice")
    with caplog.at_level(logging.DEBUG):
        created = client.post(KEYS, json={"name": "k", "scopes": ["tasks:read"]}, headers=headers)
        secret = created.get_json()["secret"]
        later = [
            client.get(KEYS, headers=headers),
            client.get(created.headers["Location"], headers=headers),
            client.get(TASKS, headers={"X-API-Key": secret}),
            client.post(TASKS, json={"title": "x"}, headers={"X-API-Key": secret}),
            client.get(ME, headers={"X-API-Key": secret}),
            client.delete(created.headers["Location"], headers=headers),
            client.get(TASKS, headers={"X-API-Key": secret}),
        ]
    assert [r.status_code for r in later] == [200, 200, 200, 403, 200, 204, 401]
    for response in later:
        assert secret not in response.get_data(as_text=True)
        assert all(secret not in value for _, value in response.headers.items())
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret[3:] not in str(record.__dict__)
