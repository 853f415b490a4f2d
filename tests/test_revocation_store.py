"""The Redis revocation store over time: the first revocation's time stands (the refresh
grace window counts from it), Redis is refilled however often it loses its data, and a
Redis outage is logged once a minute, not once per request.

Each test builds its own app: one on a real Redis (`TEST_REDIS_URL`), or one whose Redis
does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.extensions import db
from api.models import RevokedToken
from api.openapi import TasksAPI
from api.outage import outage
from api.services import tokens
from tests.support.apps import (
    UNREACHABLE_REDIS,
    add_user,
    app_with_schema,
    clear_redis,
    dispose,
    isolated_process_state,
    redis_config,
    sqlite_url,
)
from tests.support.auth import Headers, assert_token_refused, bearer, login
from tests.support.clock import Clock

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
Build = Callable[..., TasksAPI]


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    """`build(**config)`: an app on a fresh SQLite database with alice in it."""
    made: list[TasksAPI] = []

    def factory(**config: Any) -> TasksAPI:
        directory = tmp_path / f"app{len(made)}"
        directory.mkdir()
        application = app_with_schema(sqlite_url(directory), **config)
        add_user(application, "alice")
        made.append(application)
        return application

    with isolated_process_state():
        yield factory
        for application in made:
            if application.config["REDIS_URL"] != UNREACHABLE_REDIS["REDIS_URL"]:
                clear_redis(application)
            dispose(application)


def test_the_grace_window_counts_from_the_first_rotation(
    build: Build, redis_url: str, clock: Clock
) -> None:
    app = build(**redis_config(redis_url), REFRESH_REUSE_GRACE_SECONDS=10)
    client = app.test_client()
    old = login(client, "alice")["refresh_token"]
    # Two tabs refresh with the same token, 8 s apart: both within the grace window.
    assert client.post(REFRESH, headers=bearer(old)).status_code == 200
    clock.advance(seconds=8)
    assert client.post(REFRESH, headers=bearer(old)).status_code == 200
    # 12 s after the first rotation (4 s after the second) the window has closed.
    clock.advance(seconds=4)
    assert_token_refused(client.post(REFRESH, headers=bearer(old)))


def test_redis_is_refilled_each_time_it_loses_its_data(build: Build, redis_url: str) -> None:
    app = build(**redis_config(redis_url))
    client = app.test_client()
    pair = login(client, "alice")
    assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    prefix = app.config["REVOCATION_KEY_PREFIX"]
    redis = app.extensions["redis"]
    for _ in range(2):  # two restarts without persistence, well within the lock's 30 s
        for key in redis.scan_iter(match=prefix + "*"):
            redis.delete(key)
        assert_token_refused(client.get(ME, headers=bearer(pair["access_token"])))
        assert redis.get(prefix + "synced") is not None
        assert redis.get(prefix + "sync-lock") is None  # released for the next catch-up


def outage_lines(caplog: pytest.LogCaptureFixture, client: FlaskClient, headers: Headers) -> int:
    """How many lines one request logs about the revocation store being down."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="api.outage"):
        assert client.get(ME, headers=headers).status_code == 200  # the database answers
    return sum(r.getMessage().startswith(tokens._OUTAGE) for r in caplog.records)


def test_an_unreachable_redis_is_logged_once_then_reminded_once_a_minute(
    build: Build, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(**UNREACHABLE_REDIS)
    client = app.test_client()
    headers = bearer(login(client, "alice")["access_token"])
    with app.app_context():
        state = outage(tokens._OUTAGE)
    now = [1000.0]  # the outage's own clock, moved rather than waited for
    monkeypatch.setattr(state, "_now", lambda: now[0])
    state.recovered()  # whatever the login logged: start from "up"
    assert outage_lines(caplog, client, headers) == 1  # down: once, with its traceback
    now[0] += 59
    assert outage_lines(caplog, client, headers) == 0
    now[0] += 1.5
    assert outage_lines(caplog, client, headers) == 1  # a one-line reminder
    assert outage_lines(caplog, client, headers) == 0  # and then quiet for a minute again


def test_a_revocation_redis_cannot_take_is_committed_and_logged(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    app = build(**UNREACHABLE_REDIS)
    with app.app_context(), caplog.at_level(logging.WARNING, logger="api.outage"):
        outage(tokens._OUTAGE).recovered()
        expires = datetime.now(UTC) + timedelta(hours=1)
        tokens.revoke("family-1", tokens.Revocation.FAMILY, 1, expires)
        db.session.commit()  # Redis is written after the commit, and fails: no exception
        assert db.session.get(RevokedToken, "family-1") is not None
    assert [r.getMessage().startswith(tokens._OUTAGE) for r in caplog.records] == [True]


def test_only_present_string_claims_become_blocklist_keys() -> None:
    assert tokens.token_keys({"jti": "j", "fam": "", "sub": "7", "gen": 2}) == ["j", "user:7:2"]
    assert tokens.token_keys({"jti": 42, "fam": None}) == []
