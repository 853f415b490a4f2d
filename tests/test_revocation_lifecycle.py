"""A revocation outlives the tokens it revokes: logout and a password change stay in force
through `flask purge-expired` until those tokens expire on their own, and not beyond.

The purge deletes revocations whose `expires_at` has passed. Were a revocation to expire
before its tokens, the purge would bring a logged-out session back to life.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.models import RevokedToken, User
from api.openapi import TasksAPI
from api.services import tokens
from tests.support.auth import PASSWORD, assert_token_refused, bearer, login

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
PASSWORD_CHANGE = "/api/v1/users/me/password"
# Time between issuing a token and reading the clock in a test: the revocation's expiry is
# compared to the token's own with this much slack.
SLACK = timedelta(seconds=30)


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def expiry(token: str) -> datetime:
    return datetime.fromtimestamp(claims(token)["exp"], UTC)


def revocation_expiry(app: TasksAPI, key: str, kind: str) -> datetime:
    """When the revocation under `key` expires; it must be of `kind` (the stored kinds are
    a persistent format: rows written by one release are read by the next)."""
    with app.app_context():
        row = db.session.get(RevokedToken, key)
        assert row is not None, f"no revocation {key!r}"
        assert row.token_type == kind
        expires_at = row.expires_at
    return expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)


def purge(app: TasksAPI) -> str:
    result = app.test_cli_runner().invoke(args=["purge-expired"])
    assert result.exit_code == 0, result.output
    output: str = result.output
    return output


def test_a_logged_out_session_stays_refused_after_the_purge(
    app: TasksAPI, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    make_user("alice")
    session, other = login(client, "alice"), login(client, "alice")
    assert client.post(LOGOUT, headers=bearer(session["access_token"])).status_code == 204

    assert "0 revocations" in purge(app)

    assert_token_refused(client.get(ME, headers=bearer(session["access_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(session["refresh_token"])))
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    # The family's revocation ends when its newest token would have (so a purge after
    # that forgets it), never before.
    family = claims(session["refresh_token"])["fam"]
    last = expiry(session["refresh_token"])
    assert last <= revocation_expiry(app, family, "family") <= last + SLACK


def test_tokens_from_before_a_password_change_stay_refused_after_the_purge(
    app: TasksAPI, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user("alice")
    old = login(client, "alice")
    changed = client.put(
        PASSWORD_CHANGE,
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=bearer(old["access_token"]),
    )
    assert changed.status_code == 200, changed.get_json()
    new = changed.get_json()

    assert "0 revocations" in purge(app)

    assert_token_refused(client.get(ME, headers=bearer(old["access_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(old["refresh_token"])))
    assert client.get(ME, headers=bearer(new["access_token"])).status_code == 200
    generation = claims(old["refresh_token"])["gen"]
    last = expiry(old["refresh_token"])
    key = f"user:{user.id}:{generation}"
    assert last <= revocation_expiry(app, key, "user") <= last + SLACK


def test_a_rotated_refresh_token_is_revoked_until_it_expires(
    app: TasksAPI, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    make_user("alice")
    old = login(client, "alice")
    assert client.post(REFRESH, headers=bearer(old["refresh_token"])).status_code == 200

    assert "0 revocations" in purge(app)

    jti = claims(old["refresh_token"])["jti"]
    assert revocation_expiry(app, jti, "refresh") == expiry(old["refresh_token"])


def test_the_purge_commits_its_deletions(app: TasksAPI, make_user: Callable[..., User]) -> None:
    owner = make_user("alice")
    now = datetime.now(UTC)
    with app.app_context():
        for jti, expires_at in (("gone", now - timedelta(minutes=1)), ("kept", now + SLACK)):
            tokens.revoke(jti, tokens.Revocation.FAMILY, owner.id, expires_at)
        db.session.commit()
        assert tokens.purge_expired() == 1
        db.session.rollback()  # nothing left pending: the purge stands on its own
        assert list(db.session.scalars(select(RevokedToken.jti))) == ["kept"]
