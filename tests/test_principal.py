"""One principal per request: the work identity costs, refused credentials charged to
their IP, the login limit keyed on the credential the handler checks, forged tokens."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.extensions import db
from api.limits import app_limiter
from api.models import MAX_ID, User
from api.openapi import TasksAPI
from tests.support.apps import make_app
from tests.support.auth import PASSWORD, bearer, login
from tests.support.db import sql_statements

TASKS = "/api/v1/tasks"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROBLEM = "application/problem+json"

MakeUser = Callable[..., User]


def client_at(app: TasksAPI, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def assert_refused(response: TestResponse) -> None:
    """A 401 problem with a Bearer challenge."""
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- the work per request --------------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every JWT decode (PyJWT's, which every decoder ends in) during the test."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


IDENTITY_TABLES = ("users", "revoked_tokens", "api_keys")


def identity_queries(statements: list[str]) -> list[str]:
    return [
        s for s in statements if any(f"FROM {t}" in s or f"JOIN {t}" in s for t in IDENTITY_TABLES)
    ]


@pytest.mark.parametrize("operation", ["listTasks", "getTask"])
def test_one_decode_and_at_most_one_identity_query_per_request(
    app: TasksAPI,
    client: FlaskClient,
    auth: Callable[..., dict[str, str]],
    decodes: list[str],
    operation: str,
) -> None:
    alice = auth()
    created = client.post(TASKS, json={"title": "Mine", "tags": ["a", "b"]}, headers=alice)
    assert created.status_code == 201
    path = TASKS if operation == "listTasks" else f"{TASKS}/{created.get_json()['id']}"
    decodes.clear()
    with sql_statements(app) as seen:
        response = client.get(path, headers=alice)
    assert response.status_code == 200
    assert decodes == [alice["Authorization"].removeprefix("Bearer ")]
    assert len(identity_queries(seen)) <= 1, seen


def test_an_api_key_is_looked_up_once_and_no_token_is_decoded(
    app: TasksAPI, client: FlaskClient, auth: Callable[..., dict[str, str]], decodes: list[str]
) -> None:
    created = client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=auth()
    )
    key = {"X-API-Key": created.get_json()["secret"]}
    client.get(TASKS, headers=key)  # its first use records `last_used_at`
    decodes.clear()
    with sql_statements(app) as seen:
        assert client.get(TASKS, headers=key).status_code == 200
    assert decodes == []
    assert len(identity_queries(seen)) == 1, seen


# --- refused credentials are charged to their IP ---------------------------------------


def test_a_revoked_tokens_requests_never_touch_its_users_bucket(
    app: TasksAPI, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATE_LIMIT_FREE", "3 per minute")
    monkeypatch.setitem(app.config, "RATE_LIMIT_ANONYMOUS", "50 per minute")
    make_user("alice")
    thief = client_at(app, "198.51.100.66")
    stolen = login(thief, "alice")
    assert thief.post(LOGOUT, headers=bearer(stolen["access_token"])).status_code == 204
    for _ in range(5):  # more than the user's whole budget
        refused = thief.get(TASKS, headers=bearer(stolen["access_token"]))
        assert_refused(refused)
        assert refused.headers["X-RateLimit-Limit"] == "50"  # the IP's budget
        assert_refused(thief.post(REFRESH, headers=bearer(stolen["refresh_token"])))
    owner = client_at(app, "198.51.100.7")
    fresh = bearer(login(owner, "alice")["access_token"])
    response = owner.get(TASKS, headers=fresh)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "3"
    # 3 - the logout (alice's own request) - this one: the refused ten were not hers
    assert response.headers["X-RateLimit-Remaining"] == "1"


def test_a_token_for_another_operation_is_charged_to_the_ip(
    app: TasksAPI, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh token is not a credential of listTasks: it names no bucket there."""
    monkeypatch.setitem(app.config, "RATE_LIMIT_FREE", "2 per minute")
    monkeypatch.setitem(app.config, "RATE_LIMIT_ANONYMOUS", "40 per minute")
    make_user("alice")
    client = client_at(app, "198.51.100.8")
    pair = login(client, "alice")
    for _ in range(3):
        refused = client.get(TASKS, headers=bearer(pair["refresh_token"]))
        assert_refused(refused)
        assert refused.headers["X-RateLimit-Limit"] == "40"
    response = client.get(TASKS, headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "1"


# --- the login limit counts the account the handler checks ------------------------------


def test_a_decoy_authorization_scheme_does_not_escape_the_account_limit(
    app: TasksAPI, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN_ACCOUNT", "3 per minute")
    make_user("alice")
    decoys = [
        'Digest username="decoy-1", realm="x", nonce="n", uri="/", response="r"',
        'Digest username="decoy-2"',
        "Bearer not-a-token",
    ]
    for number, decoy in enumerate(decoys):
        response = client_at(app, f"192.0.2.{30 + number}").post(
            LOGIN, json={"login": "alice", "password": "wrong"}, headers={"Authorization": decoy}
        )
        assert response.status_code == 401
    # the right password, with yet another decoy, from yet another IP: still locked
    locked = client_at(app, "192.0.2.40").post(
        LOGIN, json={"login": "alice", "password": PASSWORD}, headers={"Authorization": decoys[0]}
    )
    assert locked.status_code == 429
    assert locked.mimetype == PROBLEM
    assert "access_token" not in locked.get_json()


def test_basic_credentials_count_against_the_account_they_name(
    app: TasksAPI, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN_ACCOUNT", "2 per minute")
    make_user("alice")

    def basic(password: str) -> dict[str, str]:
        encoded = base64.b64encode(f"alice:{password}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}

    # A JSON body naming another account does not divert Basic failures from alice.
    for number in range(2):
        response = client_at(app, f"192.0.2.{50 + number}").post(
            LOGIN, json={"login": "nobody", "password": "x"}, headers=basic("wrong")
        )
        assert response.status_code == 401
    assert client_at(app, "192.0.2.60").post(LOGIN, headers=basic(PASSWORD)).status_code == 429


# --- forged and out-of-range tokens ----------------------------------------------------


def claims(user_id: Any, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base = {
        "sub": str(user_id),
        "type": "access",
        "jti": str(uuid.uuid4()),
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(app: TasksAPI, payload: dict[str, Any]) -> dict[str, str]:
    return bearer(jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256"))


FORGED = {
    "no-exp": {"exp": None},
    "no-jti": {"jti": None},
    "no-type": {"type": None},
    "unknown-type": {"type": "id"},
    "no-sub": {"sub": None},
}


@pytest.mark.parametrize("changes", FORGED.values(), ids=FORGED.keys())
def test_tokens_signed_with_the_key_but_missing_claims_are_401(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, changes: dict[str, Any]
) -> None:
    user = make_user("alice")
    assert client.get(TASKS, headers=signed(app, claims(user.id))).status_code == 200
    assert_refused(client.get(TASKS, headers=signed(app, claims(user.id, **changes))))


OUT_OF_RANGE = [str(MAX_ID + 1), str(2**63), "9" * 40, "0", "-1", " 1", "1.0", "\u0661"]


@pytest.mark.parametrize("sub", OUT_OF_RANGE)
def test_a_sub_that_is_not_a_possible_user_id_is_401_and_the_session_lives_on(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, sub: str
) -> None:
    user = make_user("alice")
    for path, kind in ((TASKS, "access"), (REFRESH, "refresh")):
        forged = signed(app, claims(sub, type=kind))
        response = (
            client.post(path, headers=forged)
            if kind == "refresh"
            else client.get(path, headers=forged)
        )
        assert_refused(response)
    # the same database session serves the next request
    response = client.get(TASKS, headers=signed(app, claims(user.id)))
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(User, user.id) is not None


# --- each app has its own limiter -------------------------------------------------------


@pytest.fixture
def second_app(app: TasksAPI) -> Iterator[TasksAPI]:
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"], RATE_LIMIT_ANONYMOUS="1 per minute")
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_every_app_counts_with_a_limiter_of_its_own(
    app: TasksAPI, second_app: TasksAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATE_LIMIT_ANONYMOUS", "1 per minute")
    assert app_limiter(app) is not app_limiter(second_app)
    for target in (app, second_app):  # one request each: neither spends the other's
        assert client_at(target, "203.0.113.77").get(TASKS).status_code == 401
    for target in (app, second_app):
        assert client_at(target, "203.0.113.77").get(TASKS).status_code == 429


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_authorization_scheme_is_case_insensitive(
    client: FlaskClient, auth: Callable[..., dict[str, str]], scheme: str
) -> None:
    """RFC 9110 §11.1: the scheme name is case-insensitive; the principal resolver and the
    limiter read the credential the same way, whatever its spelling."""
    token = auth("alice")["Authorization"].split(" ", 1)[1]
    response = client.get("/api/v1/users/me", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["username"] == "alice"
    assert response.headers["X-RateLimit-Limit"] == "120"  # the free tier's, not anonymous 60
