"""Accounts: your own profile and password; admins listing, changing and deleting users."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule

from api.extensions import db
from api.models import Role, Task, Tier, User
from api.openapi import TasksAPI
from tests.support.auth import (
    PASSWORD,
    REFRESH,
    AuthHeaders,
    assert_token_pair,
    assert_token_refused,
    bearer,
    login,
    stored_user,
)
from tests.support.db import count
from tests.support.problems import assert_problem

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier

ME = "/api/v1/users/me"
PASSWORD_URL = "/api/v1/users/me/password"
USERS = "/api/v1/users"
TASKS = "/api/v1/tasks"
USER_FIELDS = {"id", "username", "email", "role", "tier", "is_active", "created_at", "updated_at"}
USER_FIELDS |= {"notify_on_task_created"}
NEW_PASSWORD = "a brand new password"

MakeUser = Callable[..., User]
Json = dict[str, Any]


def url(user: User | int) -> str:
    return f"{USERS}/{user if isinstance(user, int) else user.id}"


# --- your own account ------------------------------------------------------------------


def test_change_own_username(app: TasksAPI, client: FlaskClient, auth: AuthHeaders) -> None:
    response = client.patch(ME, json={"username": "Alicia"}, headers=auth("alice"))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "alicia"
    assert stored_user(app, "alicia") is not None
    assert stored_user(app, "alice") is None
    login(client, "alicia")


def test_change_own_email_needs_the_current_password(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    missing = assert_problem(
        client.patch(ME, json={"email": "new@example.com"}, headers=headers), 422
    )
    assert ("json", "current_password") in {(e["location"], e["field"]) for e in missing["errors"]}

    wrong = {"email": "new@example.com", "current_password": "not it"}
    assert_problem(client.patch(ME, json=wrong, headers=headers), 403)
    user = stored_user(app, "alice")
    assert user is not None
    assert user.email == "alice@example.com"

    right = {"email": "New@Example.com", "current_password": PASSWORD}
    response = client.patch(ME, json=right, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["email"] == "new@example.com"
    user = stored_user(app, "alice")
    assert user is not None
    assert user.email == "new@example.com"


@pytest.mark.parametrize(
    "change",
    [
        {"username": "BOB"},
        {"email": "Bob@Example.com", "current_password": PASSWORD},
    ],
    ids=["username", "email"],
)
def test_taking_a_used_name_is_409(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, make_user: MakeUser, change: Json
) -> None:
    make_user("bob")
    assert_problem(client.patch(ME, json=change, headers=auth("alice")), 409)
    user = stored_user(app, "alice")
    assert user is not None
    assert user.email == "alice@example.com"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "admin"}, "role"),
        ({"tier": "pro"}, "tier"),
        ({"is_active": False}, "is_active"),
        ({"password_hash": "x"}, "password_hash"),
        ({"id": 9}, "id"),
        ({"username": "a b"}, "username"),
        ({"email": "nope"}, "email"),
        ({}, ""),
        ({"current_password": PASSWORD}, ""),
    ],
    ids=["role", "tier", "is_active", "password_hash", "id", "bad-username", "bad-email", "empty",
         "only-password"],
)  # fmt: skip
def test_own_account_changes_are_limited(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, body: Json, field: str
) -> None:
    problem = assert_problem(client.patch(ME, json=body, headers=auth("alice")), 422)
    assert ("json", field) in {(e["location"], e["field"]) for e in problem["errors"]}
    user = stored_user(app, "alice")
    assert user is not None
    assert (user.role, user.tier, user.is_active) == ("user", "free", True)


def test_changing_the_password_revokes_every_token_and_returns_a_new_pair(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    laptop, phone = login(client, "alice"), login(client, "alice")

    response = client.put(
        PASSWORD_URL,
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=bearer(laptop["access_token"]),
    )
    fresh = assert_token_pair(app, response, user.id)

    for old in (laptop, phone):
        assert_token_refused(client.get(ME, headers=bearer(old["access_token"])))
        assert_token_refused(client.post(REFRESH, headers=bearer(old["refresh_token"])))
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(fresh["refresh_token"])).status_code == 200
    assert (
        client.post("/api/v1/auth/login", json={"login": "alice", "password": PASSWORD}).status_code
        == 401
    )
    login(client, "alice", NEW_PASSWORD)
    stored = stored_user(app, "alice")
    assert stored is not None
    assert stored.token_generation == 1


@pytest.mark.parametrize("token", ["fresh", "refreshed"])
def test_every_token_needs_the_current_password(
    client: FlaskClient, make_user: MakeUser, token: str
) -> None:
    """OWASP ASVS V2.1.6: a fresh token straight from `login` is no substitute either."""
    make_user("alice")
    pair = login(client, "alice")
    if token == "refreshed":
        pair = client.post(REFRESH, headers=bearer(pair["refresh_token"])).get_json()
    headers = bearer(pair["access_token"])

    body = assert_problem(
        client.put(PASSWORD_URL, json={"password": NEW_PASSWORD}, headers=headers), 422
    )
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("json", "current_password")]
    wrong = {"password": NEW_PASSWORD, "current_password": "not it"}
    assert_problem(client.put(PASSWORD_URL, json=wrong, headers=headers), 403)
    assert client.get(ME, headers=headers).status_code == 200  # nothing changed

    right = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert client.put(PASSWORD_URL, json=right, headers=headers).status_code == 200
    login(client, "alice", NEW_PASSWORD)


@pytest.mark.parametrize(
    "body",
    [{"password": "short"}, {"password": "p" * 129}, {}, {"password": 12345678}],
    ids=["short", "long", "missing", "int"],
)
def test_a_bad_new_password_is_422(client: FlaskClient, auth: AuthHeaders, body: Json) -> None:
    headers = auth("alice")
    assert_problem(client.put(PASSWORD_URL, json=body, headers=headers), 422)
    login(client, "alice")


def test_api_keys_survive_a_password_change(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    key = client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=headers
    ).get_json()
    body = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert client.put(PASSWORD_URL, json=body, headers=headers).status_code == 200
    assert client.get(TASKS, headers={"X-API-Key": key["secret"]}).status_code == 200


# --- admin: list and get ---------------------------------------------------------------


def test_admin_lists_users_paginated(
    client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    for name in ("bob", "carol", "dave"):
        make_user(name)
    response = client.get(f"{USERS}?per_page=2", headers=admin)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in response.headers["Link"]
    body = response.get_json()
    assert [u["username"] for u in body["data"]] == ["root", "bob"]
    assert all(set(u) == USER_FIELDS for u in body["data"])
    assert body["pagination"] == {
        "page": 1, "per_page": 2, "total": 4, "pages": 2,
        "next": "/api/v1/users?per_page=2&page=2", "prev": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role=admin", ["root"]),
        ("role=user", ["bob", "carol", "dave"]),
        ("tier=pro", ["carol"]),
        ("is_active=false", ["dave"]),
        ("is_active=true&role=user", ["bob", "carol"]),
        ("q=CAR", ["carol"]),
        ("q=example.org", ["bob"]),
        ("q=%25", []),
    ],
)
def test_admin_filters_users(
    client: FlaskClient, admin: dict[str, str], make_user: MakeUser, query: str, expected: list[str]
) -> None:
    make_user("bob", email="bob@example.org")
    make_user("carol", tier=Tier.PRO.value)
    make_user("dave", is_active=False)
    response = client.get(f"{USERS}?{query}", headers=admin)
    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()["data"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("role=root", "role"), ("tier=gold", "tier"), ("is_active=maybe", "is_active"),
     ("per_page=0", "per_page"), ("sort=id", "sort"), ("q=", "q")],
)  # fmt: skip
def test_admin_list_refuses_bad_parameters(
    client: FlaskClient, admin: dict[str, str], query: str, field: str
) -> None:
    problem = assert_problem(client.get(f"{USERS}?{query}", headers=admin), 422)
    assert ("query", field) in {(e["location"], e["field"]) for e in problem["errors"]}


def test_admin_gets_a_user(client: FlaskClient, admin: dict[str, str], make_user: MakeUser) -> None:
    bob = make_user("bob")
    response = client.get(url(bob), headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert (body["id"], body["username"]) == (bob.id, "bob")


@pytest.mark.parametrize("user_id", [999, 2**31, 2**63])
def test_a_missing_user_is_404(client: FlaskClient, admin: dict[str, str], user_id: int) -> None:
    for method in ("get", "patch", "delete"):
        body = {"tier": "pro"} if method == "patch" else None
        assert_problem(
            client.open(url(user_id), method=method.upper(), json=body, headers=admin), 404
        )


# --- admin: change ---------------------------------------------------------------------


def test_admin_changes_role_tier_and_activation(
    app: TasksAPI, client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    bob = make_user("bob")
    response = client.patch(url(bob), json={"role": "admin", "tier": "pro"}, headers=admin)
    assert response.status_code == 200
    assert (response.get_json()["role"], response.get_json()["tier"]) == ("admin", "pro")
    stored = stored_user(app, "bob")
    assert stored is not None
    assert (stored.role, stored.tier, stored.is_active) == ("admin", "pro", True)


def test_deactivating_a_user_ends_their_sessions_for_good(
    app: TasksAPI, client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    bob = make_user("bob")
    session = login(client, "bob")
    assert client.patch(url(bob), json={"is_active": False}, headers=admin).status_code == 200
    assert_token_refused(client.get(ME, headers=bearer(session["access_token"])))
    assert_problem(
        client.post("/api/v1/auth/login", json={"login": "bob", "password": PASSWORD}), 401
    )

    assert client.patch(url(bob), json={"is_active": True}, headers=admin).status_code == 200
    assert_token_refused(client.get(ME, headers=bearer(session["access_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(session["refresh_token"])))
    assert client.get(ME, headers=bearer(login(client, "bob")["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_active": 0}, "is_active"),
        ({"is_active": "false"}, "is_active"),
        ({"role": "root"}, "role"),
        ({"tier": "gold"}, "tier"),
        ({"username": "robert"}, "username"),
        ({"email": "b@example.com"}, "email"),
        ({"password": NEW_PASSWORD}, "password"),
        ({}, ""),
    ],
    ids=["is_active-int", "is_active-string", "role", "tier", "username", "email", "password",
         "empty"],
)  # fmt: skip
def test_admin_changes_are_validated(
    app: TasksAPI,
    client: FlaskClient,
    admin: dict[str, str],
    make_user: MakeUser,
    body: Json,
    field: str,
) -> None:
    bob = make_user("bob")
    problem = assert_problem(client.patch(url(bob), json=body, headers=admin), 422)
    assert ("json", field) in {(e["location"], e["field"]) for e in problem["errors"]}
    stored = stored_user(app, "bob")
    assert stored is not None
    assert (stored.username, stored.role, stored.tier, stored.is_active) == (
        "bob",
        "user",
        "free",
        True,
    )


# --- admin: delete ---------------------------------------------------------------------


def test_deleting_a_user_deletes_their_tasks_and_ends_their_sessions(
    app: TasksAPI, client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    bob = make_user("bob")
    session = bearer(login(client, "bob")["access_token"])
    client.post(TASKS, json={"title": "bob's", "tags": ["x"]}, headers=session)
    client.post(TASKS, json={"title": "root's"}, headers=admin)

    response = client.delete(url(bob), headers=admin)
    assert response.status_code == 204
    assert response.data == b""
    assert stored_user(app, "bob") is None
    with app.app_context():
        assert [t.title for t in db.session.scalars(select(Task))] == ["root's"]
    assert_token_refused(client.get(ME, headers=session))


# --- the last admin --------------------------------------------------------------------

LAST_ADMIN_CHANGES = {
    "demote": ("patch", {"role": "user"}),
    "deactivate": ("patch", {"is_active": False}),
    "delete": ("delete", None),
}


@pytest.mark.parametrize(("method", "body"), LAST_ADMIN_CHANGES.values(), ids=LAST_ADMIN_CHANGES)
def test_the_last_active_admin_stays(
    app: TasksAPI,
    client: FlaskClient,
    admin: dict[str, str],
    make_user: MakeUser,
    method: str,
    body: Json | None,
) -> None:
    make_user("former", role=Role.ADMIN.value, is_active=False)  # inactive: does not count
    root = stored_user(app, "root")
    assert root is not None
    problem = assert_problem(
        client.open(url(root), method=method.upper(), json=body, headers=admin), 409
    )
    assert "last active admin" in problem["detail"]
    stored = stored_user(app, "root")
    assert stored is not None
    assert (stored.role, stored.is_active) == ("admin", True)
    assert client.get(ME, headers=admin).status_code == 200


@pytest.mark.parametrize(("method", "body"), LAST_ADMIN_CHANGES.values(), ids=LAST_ADMIN_CHANGES)
def test_an_admin_can_go_while_another_stays(
    app: TasksAPI,
    client: FlaskClient,
    admin: dict[str, str],
    make_user: MakeUser,
    method: str,
    body: Json | None,
) -> None:
    other = make_user("other", role=Role.ADMIN.value)
    assert client.open(url(other), method=method.upper(), json=body, headers=admin).status_code in (
        200,
        204,
    )
    root = stored_user(app, "root")
    assert root is not None
    # Now root is the last one.
    assert_problem(client.open(url(root), method=method.upper(), json=body, headers=admin), 409)


def test_an_admin_can_delete_themselves_when_another_admin_stays(
    app: TasksAPI, client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    make_user("other", role=Role.ADMIN.value)
    root = stored_user(app, "root")
    assert root is not None
    assert client.delete(url(root), headers=admin).status_code == 204
    assert_token_refused(client.get(ME, headers=admin))
    assert count(app, User) == 1


# --- who may call the admin operations -------------------------------------------------


def admin_operations(app: TasksAPI) -> list[tuple[str, str]]:
    """(method, example URL) of every operation that requires the admin role, read from
    the URL map: a new admin route is checked without touching this test."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        extensions = getattr(view, "_spec", {}).get("extensions") or {}
        if extensions.get("x-required-role") == Role.ADMIN.value:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, _example(rule)))
    return found


def _example(rule: Rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)


def test_admin_operations_are_found(app: TasksAPI) -> None:
    found = set(admin_operations(app))
    assert {("GET", USERS), ("GET", url(1)), ("PATCH", url(1)), ("DELETE", url(1))} <= found


def test_a_user_gets_403_from_every_admin_operation(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, make_user: MakeUser
) -> None:
    headers = auth("alice")
    make_user("bob")  # id 2: a real target, so a 403 cannot be a 404 in disguise
    for method, path in admin_operations(app):
        target = path.replace(f"{USERS}/1", f"{USERS}/2")
        response = client.open(target, method=method, json={"tier": "pro"}, headers=headers)
        body = assert_problem(response, 403)
        assert "admin" in body["detail"], (method, path)
    bob = stored_user(app, "bob")
    assert bob is not None
    assert bob.tier == "free"


def test_an_admin_key_needs_the_user_scopes(
    client: FlaskClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    bob = make_user("bob")
    key = client.post(
        "/api/v1/api-keys", json={"name": "reader", "scopes": ["users:read"]}, headers=admin
    ).get_json()
    headers = {"X-API-Key": key["secret"]}
    assert client.get(USERS, headers=headers).status_code == 200
    assert client.get(url(bob), headers=headers).status_code == 200
    body = assert_problem(client.patch(url(bob), json={"tier": "pro"}, headers=headers), 403)
    assert "`users:write`" in body["detail"]
    assert_problem(client.delete(url(bob), headers=headers), 403)
