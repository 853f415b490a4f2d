"""The revocation store with Redis: what is written where, what a check costs, and what
happens when Redis is unreachable or has lost its data.

The `app` fixture already runs every auth test with the Redis store (the `redis` tier);
these tests need two apps on one database, or a Redis that fails, so they build their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask_jwt_extended import create_access_token
from redis import Redis
from sqlalchemy import func, select

from api.extensions import db
from api.models import RevokedToken, User
from api.openapi import TasksAPI
from api.services import tokens
from api.services.passwords import hash_password
from tests.support.apps import UNREACHABLE_REDIS, clear_redis, dispose, make_app, redis_config
from tests.support.auth import (
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    assert_token_refused,
    bearer,
    claims,
    login,
)
from tests.support.clock import Clock
from tests.support.db import sql_statements

Apps = Callable[..., TasksAPI]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def make_store_app(database: str) -> Iterator[Apps]:
    """Apps on one shared database, each with the Redis settings given."""
    made: list[TasksAPI] = []

    def factory(**config: Any) -> TasksAPI:
        app = make_app(database, **config)
        with app.app_context():
            db.create_all()
        made.append(app)
        return app

    yield factory
    for app in made:
        if app.config["REDIS_URL"] != UNREACHABLE_REDIS["REDIS_URL"]:
            clear_redis(app)
        dispose(app)


@pytest.fixture
def redis_app(make_store_app: Apps, redis_url: str) -> TasksAPI:
    return make_store_app(**redis_config(redis_url))


def redis_of(app: TasksAPI) -> Redis:
    client: Redis = app.extensions["redis"]
    return client


def stored(app: TasksAPI, key: str) -> tuple[str | None, int]:
    """The Redis value of a blocklist key and its time to live in ms."""
    client = redis_of(app)
    name = app.config["REVOCATION_KEY_PREFIX"] + f"entry:{key}"
    return client.get(name), client.pttl(name)  # type: ignore[return-value]


def add_user(app: TasksAPI, username: str = "alice") -> int:
    with app.app_context():
        user = User(
            username=username,
            email=f"{username}@example.com",
            password_hash=hash_password(PASSWORD),
            # Older than the tokens the tests backdate (a token issued before its account
            # was created is refused).
            created_at=datetime.now(UTC) - timedelta(days=1),
        )
        db.session.add(user)
        db.session.commit()
        return user.id


# --- writing ---------------------------------------------------------------------------


def test_logout_writes_the_family_to_redis_until_its_last_token_expires(
    redis_app: TasksAPI,
) -> None:
    user_id = add_user(redis_app)
    client = redis_app.test_client()
    pair = login(client, "alice")
    family = claims(pair["refresh_token"])["fam"]
    with redis_app.app_context():  # an access token of the family, issued an hour earlier
        issued = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
        older = create_access_token(
            str(user_id), additional_claims={"fam": family, "gen": 0, "iat": issued}
        )
    assert client.post(LOGOUT, headers=bearer(older)).status_code == 204
    assert_token_refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))

    value, ttl_ms = stored(redis_app, family)
    assert value is not None
    assert value.startswith("family ")
    # The entry outlives the family's newest token, not just the one that logged out.
    last_expiry = datetime.fromtimestamp(claims(pair["refresh_token"])["exp"], UTC)
    assert datetime.now(UTC) + timedelta(milliseconds=ttl_ms) >= last_expiry
    with redis_app.app_context():  # the database keeps it too: it is the truth
        row = db.session.get(RevokedToken, family)
        assert row is not None
        assert (row.token_type, row.user_id) == ("family", user_id)
        assert row.expires_at >= last_expiry


def test_rotation_writes_the_refresh_token_to_redis_until_it_expires(
    redis_app: TasksAPI,
) -> None:
    add_user(redis_app)
    client = redis_app.test_client()
    old = login(client, "alice")
    assert client.post(REFRESH, headers=bearer(old["refresh_token"])).status_code == 200

    old_claims = claims(old["refresh_token"])
    value, ttl_ms = stored(redis_app, old_claims["jti"])
    assert value is not None
    assert value.startswith("refresh ")
    left = datetime.fromtimestamp(old_claims["exp"], UTC) - datetime.now(UTC)
    assert abs(timedelta(milliseconds=ttl_ms) - left) < timedelta(seconds=5)


def test_a_revocation_rolled_back_never_reaches_redis(redis_app: TasksAPI) -> None:
    add_user(redis_app)
    expires = datetime.now(UTC) + timedelta(hours=1)
    with redis_app.app_context():
        tokens.revoke("never-committed", tokens.Revocation.FAMILY, 1, expires)
        db.session.rollback()
        tokens.revoke("committed", tokens.Revocation.FAMILY, 1, expires)
        db.session.commit()
    assert stored(redis_app, "never-committed")[0] is None
    assert stored(redis_app, "committed")[0] is not None


def test_an_entry_already_expired_is_not_written_to_redis(redis_app: TasksAPI) -> None:
    add_user(redis_app)
    with redis_app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        tokens.revoke("expired-family", tokens.Revocation.FAMILY, 1, past)
        db.session.commit()
    assert stored(redis_app, "expired-family") == (None, -2)


# --- checking --------------------------------------------------------------------------


def _statements_of_one_request(app: TasksAPI) -> list[str]:
    add_user(app)
    client = app.test_client()
    headers = bearer(login(client, "alice")["access_token"])
    assert client.get(ME, headers=headers).status_code == 200  # warm: Redis caught up
    with sql_statements(app) as seen:
        assert client.get(ME, headers=headers).status_code == 200
    return seen


def test_with_redis_an_authenticated_request_queries_only_the_user(redis_app: TasksAPI) -> None:
    seen = _statements_of_one_request(redis_app)
    assert len(seen) == 1
    assert "FROM users" in seen[0]
    assert "revoked_tokens" not in seen[0]


def test_without_redis_the_user_and_the_blocklist_are_one_query(make_store_app: Apps) -> None:
    # The counterpart of the test above: the blocklist rides along with the user.
    seen = _statements_of_one_request(make_store_app())
    assert len(seen) == 1
    assert "FROM users LEFT OUTER JOIN revoked_tokens" in seen[0]


def test_revoked_tokens_are_refused_while_redis_is_unreachable(
    make_store_app: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_store_app(**UNREACHABLE_REDIS)
    add_user(app)
    client = app.test_client()
    session, other = login(client, "alice"), login(client, "alice")
    with caplog.at_level(logging.WARNING, logger="api.outage"):
        assert client.post(LOGOUT, headers=bearer(session["access_token"])).status_code == 204

    assert_token_refused(client.get(ME, headers=bearer(session["access_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(session["refresh_token"])))
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    logged = [r for r in caplog.records if r.name == "api.outage"]
    assert len(logged) == 1  # once, with its traceback, not once per request
    assert "the database answers meanwhile" in logged[0].getMessage()
    assert logged[0].exc_info is not None


def test_tokens_revoked_with_redis_up_stay_refused_when_it_goes_down(
    make_store_app: Apps, redis_url: str
) -> None:
    up = make_store_app(**redis_config(redis_url))
    down = make_store_app(**UNREACHABLE_REDIS)
    add_user(up)
    pair = login(up.test_client(), "alice")
    assert up.test_client().post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    assert_token_refused(down.test_client().get(ME, headers=bearer(pair["access_token"])))


def test_a_redis_that_lost_its_data_is_refilled_from_the_database(
    redis_app: TasksAPI,
) -> None:
    add_user(redis_app)
    client = redis_app.test_client()
    pair = login(client, "alice")
    assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    family = claims(pair["access_token"])["fam"]
    clear_redis(redis_app)  # a restart without persistence

    with sql_statements(redis_app) as seen:
        assert_token_refused(client.get(ME, headers=bearer(pair["access_token"])))
    assert any("FROM revoked_tokens" in statement for statement in seen)  # asked the truth
    assert stored(redis_app, family)[0] is not None  # and refilled Redis
    assert redis_of(redis_app).get(redis_app.config["REVOCATION_KEY_PREFIX"] + "synced")


def test_a_revocation_redis_missed_reaches_it_at_the_next_catch_up(
    make_store_app: Apps, redis_url: str, clock: Clock
) -> None:
    # A worker whose Redis write failed (here: one that cannot reach Redis) while Redis
    # kept its data: the other workers learn of the revocation within a sync interval.
    up = make_store_app(**redis_config(redis_url))
    blind = make_store_app(**UNREACHABLE_REDIS)
    add_user(up)
    pair = login(up.test_client(), "alice")
    headers = bearer(pair["access_token"])
    assert up.test_client().get(ME, headers=headers).status_code == 200  # Redis in sync
    assert blind.test_client().post(LOGOUT, headers=headers).status_code == 204
    # The documented window: until the catch-up, Redis does not know.
    assert up.test_client().get(ME, headers=headers).status_code == 200

    clock.advance(seconds=up.config["REVOCATION_SYNC_SECONDS"] + 1)
    assert_token_refused(up.test_client().get(ME, headers=headers))
    assert stored(up, claims(pair["access_token"])["fam"])[0] is not None


def test_while_another_worker_catches_up_checks_ask_the_database(redis_app: TasksAPI) -> None:
    add_user(redis_app)
    client = redis_app.test_client()
    pair = login(client, "alice")
    assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    clear_redis(redis_app)
    prefix = redis_app.config["REVOCATION_KEY_PREFIX"]
    redis_of(redis_app).set(prefix + "sync-lock", "1", ex=30)

    assert_token_refused(client.get(ME, headers=bearer(pair["access_token"])))
    assert redis_of(redis_app).get(prefix + "synced") is None  # not this one's job


def test_token_keys_cover_the_token_its_family_and_its_generation() -> None:
    keys = tokens.token_keys({"jti": "j", "fam": "f", "sub": "7", "gen": 3})
    assert keys == ["j", "f", "user:7:3"]
    # Tokens minted before families and generations existed.
    assert tokens.token_keys({"jti": "j", "sub": "7"}) == ["j", "user:7:0"]
    assert tokens.token_keys({"jti": "j"}) == ["j"]


def test_the_database_keeps_one_row_per_revocation(redis_app: TasksAPI) -> None:
    add_user(redis_app)
    with redis_app.app_context():
        expires = datetime.now(UTC) + timedelta(hours=1)
        for _ in range(2):
            tokens.revoke("twice", tokens.Revocation.FAMILY, 1, expires)
            db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(RevokedToken)) == 1
