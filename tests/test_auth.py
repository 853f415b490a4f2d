"""Register, log in, use, refresh and revoke tokens; the account CLI commands."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from apiflask import HTTPError
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import delete, func, select, update

from api.cli import DEMO_TASKS, DEMO_USER
from api.extensions import db
from api.models import MAX_ID, RevokedToken, Role, Task, User
from api.openapi import TasksAPI
from api.services.auth import login_failed
from tests.support.auth import (
    LOGIN,
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    REGISTER,
    assert_token_pair,
    assert_token_refused,
    bearer,
    claims,
    login,
    stored_user,
)
from tests.support.clock import Clock
from tests.support.db import count
from tests.support.problems import assert_problem

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier


MakeUser = Callable[..., User]


def new_account(**changes: Any) -> dict[str, Any]:
    """A valid registration body, with `changes` applied (None removes a field)."""
    body: dict[str, Any] = {
        "username": "alice",
        "email": "alice@example.com",
        "password": PASSWORD,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def revocations(app: TasksAPI) -> dict[str, tuple[str, int]]:
    """jti -> (token type, user id) of every revoked token."""
    with app.app_context():
        rows = db.session.scalars(select(RevokedToken)).all()
        return {row.jti: (row.token_type, row.user_id) for row in rows}


# --- register --------------------------------------------------------------------------


def test_register_creates_a_user(app: TasksAPI, client: FlaskClient) -> None:
    payload = new_account(username="Alice", email="Alice@Example.COM")
    response = client.post(REGISTER, json=payload)

    assert response.status_code == 201
    body = response.get_json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["role"] == Role.USER.value
    assert body["is_active"] is True
    assert "password" not in body
    assert "password_hash" not in body

    user = stored_user(app, "alice")
    assert user is not None
    assert user.id == body["id"]
    assert user.email == "alice@example.com"
    assert user.role == Role.USER.value
    assert count(app, User) == 1

    # The Location is the new account, as its owner sees it.
    tokens = login(client, "alice")
    own = client.get(response.headers["Location"], headers=bearer(tokens["access_token"]))
    assert own.status_code == 200
    assert own.get_json()["id"] == body["id"]


def test_password_is_stored_as_argon2id(app: TasksAPI, client: FlaskClient) -> None:
    assert client.post(REGISTER, json=new_account()).status_code == 201
    user = stored_user(app, "alice")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, PASSWORD)


@pytest.mark.parametrize(
    "password",
    ["Wq7#zL!x", ("correct horse battery " * 6)[:128]],
    ids=["8-chars", "128-chars"],
)
def test_register_accepts_password_length_bounds(
    app: TasksAPI, client: FlaskClient, password: str
) -> None:
    assert client.post(REGISTER, json=new_account(password=password)).status_code == 201
    assert count(app, User) == 1
    login(client, "alice", password)


@pytest.mark.parametrize(
    "taken",
    [
        {"username": "ALICE", "email": "other@example.com"},
        {"username": "Alice", "email": "other@example.com"},
        {"username": "other", "email": "ALICE@EXAMPLE.COM"},
        {"username": "other", "email": "alice@example.com"},
    ],
    ids=["username-upper", "username-mixed", "email-upper", "email-same"],
)
def test_register_taken_username_or_email_is_409(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, taken: dict[str, str]
) -> None:
    make_user("alice")
    assert_problem(client.post(REGISTER, json=new_account(**taken)), 409)
    assert count(app, User) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "alice@"}, "email"),
        ({"password": "p" * 7}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"username": "al ice"}, "username"),
        ({"username": "al!ce"}, "username"),
        ({"username": "ab"}, "username"),
        ({"username": "_alice"}, "username"),
        ({"username": 5}, "username"),
        ({"password": 12345678}, "password"),
        ({"email": ["alice@example.com"]}, "email"),
        ({"username": None}, "username"),
        ({"role": "admin"}, "role"),
        ({"is_active": False}, "is_active"),
        ({"tier": "pro"}, "tier"),
        ({"id": 1}, "id"),
        ({"password_hash": "$argon2id$x"}, "password_hash"),
    ],
    ids=[
        "bad-email",
        "email-no-domain",
        "short-password",
        "long-password",
        "username-space",
        "username-bang",
        "username-short",
        "username-leading-underscore",
        "username-int",
        "password-int",
        "email-list",
        "username-missing",
        "role",
        "is_active",
        "tier",
        "id",
        "password_hash",
    ],
)
def test_register_rejects_invalid_input(
    app: TasksAPI, client: FlaskClient, changes: dict[str, Any], field: str
) -> None:
    body = assert_problem(client.post(REGISTER, json=new_account(**changes)), 422)
    assert ("json", field) in {(e["location"], e["field"]) for e in body["errors"]}
    assert count(app, User) == 0


# --- login -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "ALICE", "alice@example.com", "Alice@Example.COM"])
def test_login_with_username_or_email(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, name: str
) -> None:
    user = make_user("alice")
    response = client.post(LOGIN, json={"login": name, "password": PASSWORD})
    tokens = assert_token_pair(app, response, user.id)
    me = client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id


@pytest.mark.parametrize("name", ["alice", "ALICE@example.com"])
def test_login_with_http_basic(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, name: str
) -> None:
    user = make_user("alice")
    tokens = assert_token_pair(app, client.post(LOGIN, auth=(name, PASSWORD)), user.id)
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200


def test_login_tokens_have_unique_ids(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    first, second = login(client, "alice"), login(client, "alice")
    jtis = {claims(t[k])["jti"] for t in (first, second) for k in ("access_token", "refresh_token")}
    assert len(jtis) == 4


@pytest.mark.parametrize("transport", ["json", "basic"])
def test_login_failures_are_indistinguishable(
    client: FlaskClient, make_user: MakeUser, transport: str
) -> None:
    make_user("alice")
    make_user("bob", is_active=False)
    attempts = [("alice", "wrong password"), ("nobody", PASSWORD), ("bob", PASSWORD)]

    details = set()
    for name, password in attempts:
        if transport == "json":
            response = client.post(LOGIN, json={"login": name, "password": password})
        else:
            response = client.post(LOGIN, auth=(name, password))
        body = assert_problem(response, 401)
        assert "access_token" not in body
        if transport == "basic":
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        details.add(body["detail"])
    assert len(details) == 1


@pytest.fixture
def failed_logins() -> Iterator[list[dict[str, Any]]]:
    """What `login_failed` receivers are told, one dict per failure."""
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **details: Any) -> None:
        seen.append(details)

    with login_failed.connected_to(receiver):
        yield seen


def test_every_login_failure_is_announced_for_rate_limits(
    client: FlaskClient, make_user: MakeUser, failed_logins: list[dict[str, Any]]
) -> None:
    alice = make_user("alice")
    bob = make_user("bob", is_active=False)
    client.post(LOGIN, json={"login": "Alice", "password": "wrong password"})
    client.post(LOGIN, json={"login": "nobody", "password": PASSWORD})
    client.post(LOGIN, auth=("bob", PASSWORD), environ_base={"REMOTE_ADDR": "192.0.2.7"})
    login(client, "alice")  # a success is not announced

    assert failed_logins == [
        {"login": "alice", "user_id": alice.id, "remote_addr": "127.0.0.1", "names": ("alice",)},
        {"login": "nobody", "user_id": None, "remote_addr": "127.0.0.1", "names": ("nobody",)},
        {"login": "bob", "user_id": bob.id, "remote_addr": "192.0.2.7", "names": ("bob",)},
    ]


def test_a_wrong_current_password_is_announced_too(
    client: FlaskClient, make_user: MakeUser, failed_logins: list[dict[str, Any]]
) -> None:
    alice = make_user("alice")
    headers = bearer(login(client, "alice")["access_token"])
    body = {"password": "new password 123", "current_password": "guess"}
    assert client.put(f"{ME}/password", json=body, headers=headers).status_code == 403
    # Both names of the account pay for it (the caller holds its token: nothing to hide).
    names = ("alice", "alice@example.com")
    assert failed_logins == [
        {"login": "alice", "user_id": alice.id, "remote_addr": "127.0.0.1", "names": names}
    ]


def test_a_receiver_can_stop_a_login(
    client: FlaskClient, make_user: MakeUser, failed_logins: list[dict[str, Any]]
) -> None:
    # How a rate limit refuses: raise from the receiver; the client gets that error.
    def too_many(sender: Any, **details: Any) -> None:
        raise HTTPError(429, "Too many failed logins.", headers={"Retry-After": "60"})

    make_user("alice")
    with login_failed.connected_to(too_many):
        response = client.post(LOGIN, json={"login": "alice", "password": "wrong"})
    body = assert_problem(response, 429)
    assert body["detail"] == "Too many failed logins."
    assert response.headers["Retry-After"] == "60"


def test_tokens_carry_their_family_and_generation(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    pair = login(client, "alice")
    access, refresh = claims(pair["access_token"]), claims(pair["refresh_token"])
    assert access["fam"] == refresh["fam"]
    assert access["gen"] == refresh["gen"] == 0
    assert access["fresh"] is True
    rotated = client.post(REFRESH, headers=bearer(pair["refresh_token"])).get_json()
    assert claims(rotated["access_token"])["fam"] == access["fam"]
    assert claims(rotated["access_token"])["fresh"] is False


def test_login_without_any_credentials_is_401_with_a_basic_challenge(
    client: FlaskClient,
) -> None:
    # The body is optional (HTTP Basic instead), so leaving both out is not a 422.
    response = client.post(LOGIN)
    problem = assert_problem(response, 401)
    assert "HTTP Basic" in problem["detail"]
    assert response.headers["WWW-Authenticate"] == 'Basic realm="tasks-api"'


def test_login_with_an_empty_body_is_422(client: FlaskClient) -> None:
    problem = assert_problem(client.post(LOGIN, json={}), 422)
    fields = {(e["location"], e["field"]) for e in problem["errors"]}
    assert fields == {("json", "login"), ("json", "password")}


@pytest.mark.parametrize(
    ("request_body", "status"),
    [
        ({"data": "login=alice", "content_type": "text/plain"}, 415),
        ({"data": '{"login": "alice",', "content_type": "application/json"}, 400),
    ],
    ids=["text-plain", "malformed-json"],
)
def test_login_rejects_a_body_that_is_not_json(
    client: FlaskClient, make_user: MakeUser, request_body: dict[str, str], status: int
) -> None:
    make_user("alice")
    assert_problem(client.post(LOGIN, **request_body), status)


# --- protected operations --------------------------------------------------------------


def test_me_returns_own_account(
    client: FlaskClient, auth: Callable[..., dict[str, str]], make_user: MakeUser
) -> None:
    make_user("bob")
    response = client.get(ME, headers=auth("alice"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "alice"
    assert "password_hash" not in body


def token_claims(user_id: Any, kind: str = "access") -> dict[str, Any]:
    """Claims shaped like the server's tokens."""
    now = datetime.now(UTC)
    return {
        "sub": str(user_id),
        "type": kind,
        "jti": str(uuid.uuid4()),
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
    }


def test_a_hand_made_token_with_the_server_key_works(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    # The baseline for the forged tokens below: only the thing they change breaks them.
    user = make_user("alice")
    token = jwt.encode(token_claims(user.id), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert client.get(ME, headers=bearer(token)).status_code == 200


def test_the_largest_user_id_signs_in(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    """A `sub` of ten digits up to MAX_ID names a user (past it, none: see BAD_TOKENS)."""
    user = make_user("alice")
    with app.app_context():
        db.session.execute(update(User).where(User.id == user.id).values(id=MAX_ID))
        db.session.commit()
    token = jwt.encode(token_claims(MAX_ID), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["id"] == MAX_ID


@pytest.mark.parametrize(("name", "password"), [("", PASSWORD), ("yy", "")])
def test_a_basic_header_missing_a_part_names_no_account(
    client: FlaskClient, make_user: MakeUser, name: str, password: str
) -> None:
    """An empty name or password is itself, never a stand-in (such as the name `XX`, which
    is the account `xx`, or the password `XX` of the account `yy`)."""
    make_user("xx")  # logins are matched in lower case
    make_user("yy", password="XX")
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    response = client.post(LOGIN, headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 401
    assert "access_token" not in (response.get_json() or {})


def test_a_deleted_users_token_is_refused_for_its_user_not_as_revoked(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    headers = _deleted_user(app, client, make_user("alice"))
    body = assert_token_refused(client.get(ME, headers=headers))
    assert body["detail"] == "The token's user does not exist or is inactive."


def test_a_preflight_reads_no_credential(client: FlaskClient) -> None:
    """OPTIONS (a CORS preflight carries none of its own) answers the methods, whatever
    credential comes along."""
    for headers in (bearer("not-a-jwt"), {"X-API-Key": "not-a-key"}, {}):
        response = client.options(ME, headers=headers)
        assert response.status_code == 200
        assert set(response.headers["Allow"].split(", ")) == {"GET", "PATCH", "OPTIONS", "HEAD"}
        assert "WWW-Authenticate" not in response.headers


TokenMaker = Callable[[TasksAPI, FlaskClient, User], dict[str, str]]


def _no_header(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    return {}


def _garbage(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    return bearer("not-a-jwt")


def _basic_scheme(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def _alg_none(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    return bearer(jwt.encode(token_claims(user.id), key=None, algorithm="none"))


def _wrong_key(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    key = "not-the-server-key-" + "z" * 32
    return bearer(jwt.encode(token_claims(user.id), key, algorithm="HS256"))


def _expired(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    with app.app_context():
        return bearer(create_access_token(str(user.id), expires_delta=timedelta(seconds=-10)))


def _refresh_token(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    return bearer(login(client, user.username)["refresh_token"])


def _integer_sub(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    forged = token_claims(user.id) | {"sub": user.id}
    return bearer(jwt.encode(forged, app.config["JWT_SECRET_KEY"], algorithm="HS256"))


def _padded_sub(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    """The user's id with leading zeros, longer than any id can be written."""
    forged = token_claims(user.id) | {"sub": str(user.id).zfill(11)}
    return bearer(jwt.encode(forged, app.config["JWT_SECRET_KEY"], algorithm="HS256"))


def _deleted_user(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    headers = bearer(login(client, user.username)["access_token"])
    with app.app_context():
        db.session.execute(delete(User).where(User.id == user.id))
        db.session.commit()
    return headers


def _deactivated_user(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    headers = bearer(login(client, user.username)["access_token"])
    with app.app_context():
        db.session.execute(update(User).where(User.id == user.id).values(is_active=False))
        db.session.commit()
    return headers


def _logged_out(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    headers = bearer(login(client, user.username)["access_token"])
    assert client.post(LOGOUT, headers=headers).status_code == 204
    return headers


BAD_TOKENS: dict[str, TokenMaker] = {
    "no-header": _no_header,
    "garbage": _garbage,
    "basic-scheme": _basic_scheme,
    "alg-none": _alg_none,
    "wrong-key": _wrong_key,
    "expired": _expired,
    "refresh-as-access": _refresh_token,
    "integer-sub": _integer_sub,
    "padded-sub": _padded_sub,
    "deleted-user": _deleted_user,
    "deactivated-user": _deactivated_user,
    "logged-out": _logged_out,
}


@pytest.mark.parametrize("make_headers", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_is_401_problem(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, make_headers: TokenMaker
) -> None:
    headers = make_headers(app, client, make_user("alice"))
    assert_token_refused(client.get(ME, headers=headers))


# --- refresh ---------------------------------------------------------------------------


def test_refresh_rotates_the_pair(app: TasksAPI, client: FlaskClient, make_user: MakeUser) -> None:
    user = make_user("alice")
    old = login(client, "alice")

    response = client.post(REFRESH, headers=bearer(old["refresh_token"]))
    new = assert_token_pair(app, response, user.id)
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    assert client.get(ME, headers=bearer(new["access_token"])).status_code == 200

    old_jti = claims(old["refresh_token"])["jti"]
    assert revocations(app) == {old_jti: ("refresh", user.id)}

    assert_token_refused(client.post(REFRESH, headers=bearer(old["refresh_token"])))


def test_refreshed_token_can_be_refreshed_again(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    tokens = login(client, "alice")
    for _ in range(2):
        response = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
        tokens = assert_token_pair(app, response, user.id)
    assert len(revocations(app)) == 2


def test_reusing_a_rotated_refresh_token_revokes_its_family(
    client: FlaskClient, make_user: MakeUser
) -> None:
    # DESIGN.md: "reusing a dead one revokes the whole token family" (a stolen refresh
    # token used by the thief and by the owner: neither keeps a live session).
    make_user("alice")
    old = login(client, "alice")
    new = client.post(REFRESH, headers=bearer(old["refresh_token"])).get_json()
    assert client.get(ME, headers=bearer(new["access_token"])).status_code == 200
    assert_token_refused(client.post(REFRESH, headers=bearer(old["refresh_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(new["refresh_token"])))
    assert_token_refused(client.get(ME, headers=bearer(new["access_token"])))


def test_refresh_twice_inside_the_grace_window_both_succeed(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two tabs refresh with the same token at once: neither is logged out.
    monkeypatch.setitem(app.config, "REFRESH_REUSE_GRACE_SECONDS", 60)
    make_user("alice")
    old = login(client, "alice")
    first = client.post(REFRESH, headers=bearer(old["refresh_token"]))
    second = client.post(REFRESH, headers=bearer(old["refresh_token"]))
    assert first.status_code == second.status_code == 200
    for pair in (first.get_json(), second.get_json()):
        assert (
            client.get("/api/v1/users/me", headers=bearer(pair["access_token"])).status_code == 200
        )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RevokedToken)) == 1


def test_reuse_after_the_grace_window_revokes_the_family(
    app: TasksAPI,
    client: FlaskClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    monkeypatch.setitem(app.config, "REFRESH_REUSE_GRACE_SECONDS", 60)
    make_user("alice")
    old = login(client, "alice")
    new = client.post(REFRESH, headers=bearer(old["refresh_token"])).get_json()
    clock.advance(minutes=2)  # the rotation happened two minutes ago
    assert_token_refused(client.post(REFRESH, headers=bearer(old["refresh_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(new["refresh_token"])))
    assert_token_refused(client.get("/api/v1/users/me", headers=bearer(new["access_token"])))


def _refresh_wrong_key(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    key = "not-the-server-key-" + "z" * 32
    return bearer(jwt.encode(token_claims(user.id, "refresh"), key, algorithm="HS256"))


def _refresh_expired(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    with app.app_context():
        return bearer(create_refresh_token(str(user.id), expires_delta=timedelta(seconds=-10)))


def _refresh_deactivated(app: TasksAPI, client: FlaskClient, user: User) -> dict[str, str]:
    headers = bearer(login(client, user.username)["refresh_token"])
    with app.app_context():
        db.session.execute(update(User).where(User.id == user.id).values(is_active=False))
        db.session.commit()
    return headers


BAD_REFRESH_TOKENS: dict[str, TokenMaker] = {
    "no-header": _no_header,
    "garbage": _garbage,
    "wrong-key": _refresh_wrong_key,
    "expired": _refresh_expired,
    "deactivated-user": _refresh_deactivated,
}


@pytest.mark.parametrize("make_headers", BAD_REFRESH_TOKENS.values(), ids=BAD_REFRESH_TOKENS.keys())
def test_refresh_refuses_bad_tokens(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, make_headers: TokenMaker
) -> None:
    headers = make_headers(app, client, make_user("alice"))
    assert_token_refused(client.post(REFRESH, headers=headers))
    assert revocations(app) == {}


def test_refresh_with_an_access_token_is_401(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    tokens = login(client, "alice")
    assert_token_refused(client.post(REFRESH, headers=bearer(tokens["access_token"])))
    assert revocations(app) == {}
    # The refresh token of that pair was not spent by the failed attempt.
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 200


# --- logout ----------------------------------------------------------------------------


def test_logout_revokes_the_access_and_refresh_token(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    tokens = login(client, "alice")
    access = bearer(tokens["access_token"])
    family = claims(tokens["access_token"])["fam"]
    assert claims(tokens["refresh_token"])["fam"] == family

    response = client.post(LOGOUT, headers=access)
    assert response.status_code == 204
    assert response.data == b""

    # One row ends the login session: both tokens belong to the revoked family.
    assert revocations(app) == {family: ("family", user.id)}
    assert_token_refused(client.get(ME, headers=access))
    assert_token_refused(client.post(REFRESH, headers=bearer(tokens["refresh_token"])))
    assert_token_refused(client.post(LOGOUT, headers=access))


def test_logout_leaves_other_sessions_alone(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    laptop, phone = login(client, "alice"), login(client, "alice")
    assert client.post(LOGOUT, headers=bearer(laptop["access_token"])).status_code == 204
    assert client.get(ME, headers=bearer(phone["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(phone["refresh_token"])).status_code == 200


def test_logout_with_a_refresh_token_is_401(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    tokens = login(client, "alice")
    assert_token_refused(client.post(LOGOUT, headers=bearer(tokens["refresh_token"])))
    assert revocations(app) == {}


# --- CLI -------------------------------------------------------------------------------


def create_admin(app: TasksAPI, username: str, email: str, password: str) -> Any:
    args = ["create-admin", "--username", username, "--email", email, "--password", password]
    return app.test_cli_runner().invoke(args=args)


def test_create_admin(app: TasksAPI, client: FlaskClient) -> None:
    result = create_admin(app, "Root", "Root@Example.com", "root-passphrase-42")
    assert result.exit_code == 0, result.output
    assert "created admin root" in result.output

    admin = stored_user(app, "root")
    assert admin is not None
    assert admin.role == Role.ADMIN.value
    assert admin.email == "root@example.com"
    assert admin.password_hash.startswith("$argon2id$")
    login(client, "root", "root-passphrase-42")


@pytest.mark.parametrize(
    ("username", "email"),
    [("root", "new@example.com"), ("newroot", "ROOT@example.com")],
    ids=["username", "email"],
)
def test_create_admin_refuses_a_taken_account(
    app: TasksAPI, make_user: MakeUser, username: str, email: str
) -> None:
    make_user("root")
    result = create_admin(app, username, email, "root-passphrase-42")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a clean error, not a crash
    assert "already registered" in result.output
    assert count(app, User) == 1


@pytest.mark.parametrize(
    ("username", "email", "password", "field"),
    [
        ("root", "not-an-email", "root-passphrase-42", "email"),
        ("root", "root@example.com", "short", "password"),
        ("r o", "root@example.com", "root-passphrase-42", "username"),
    ],
    ids=["email", "password", "username"],
)
def test_create_admin_refuses_invalid_input(
    app: TasksAPI, username: str, email: str, password: str, field: str
) -> None:
    result = create_admin(app, username, email, password)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert field in result.output
    assert count(app, User) == 0


def test_seed_demo_is_idempotent(app: TasksAPI, client: FlaskClient) -> None:
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
        assert count(app, User) == 1
        assert count(app, Task) == len(DEMO_TASKS)

    demo = stored_user(app, DEMO_USER["username"])
    assert demo is not None
    assert demo.role == Role.USER.value
    with app.app_context():
        owners = set(db.session.scalars(select(Task.owner_id)))
        assert owners == {demo.id}
        assert db.session.scalar(select(func.count()).select_from(Task)) == len(DEMO_TASKS)
    login(client, DEMO_USER["username"], DEMO_USER["password"])
