"""A dependency that stays down is logged once (with its traceback), reminded at most
every OUTAGE_REMINDER_SECONDS, and logged once more when it recovers: counted in lines,
for the jobs poller with its database down and for requests with Redis down."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from api.outage import Outage
from tests.support.apps import add_user, app_with_schema, dispose, isolated_process_state, make_app
from tests.support.apps import sqlite_url as sqlite_file_url
from tests.support.auth import bearer, login
from tests.support.processes import RedisServer, free_port, wait_until


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_process_state():
        yield


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_logs_once_then_reminds_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    logger = logging.getLogger("tests.outage")
    outage = Outage("the thing", reminder_seconds=60, logger=logger, now=ticks)
    caplog.set_level(logging.INFO, logger="tests.outage")

    outage.recovered()  # up all along: nothing to say
    # Ten minutes of failures, one every half second: 1200 failures.
    for _ in range(1200):
        try:
            raise RedisConnectionError("refused")
        except RedisConnectionError as error:
            outage.failed(error)
        ticks.now += 0.5
    outage.recovered()
    outage.recovered()

    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "the thing is down: refused"
    assert caplog.records[0].exc_info is not None  # the traceback, once
    reminders = lines[1:-1]
    assert len(reminders) == 9  # at 60, 120, ... 540 s: at most one a minute
    assert reminders[0] == "the thing still down after 60 s (121 failures): refused"
    assert all(record.exc_info is None for record in caplog.records[1:])
    assert lines[-1] == "the thing recovered after 600 s (1200 failures)"
    assert not outage.down


def test_the_poller_with_its_database_down_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A PostgreSQL that is not running: each poll fails at once.
    app = make_app(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tasks",
        JOBS_BACKEND="thread",
        JOBS_POLL_SECONDS=0.01,
    )
    executor = app.extensions["jobs"]
    caplog.set_level(logging.INFO)
    polls: list[float] = []
    original = executor.heartbeat.beat_if_due

    def counted() -> None:
        polls.append(time.monotonic())
        original()

    executor.heartbeat.beat_if_due = counted
    try:
        executor.start()
        wait_until(lambda: len(polls) >= 50, 20, "50 polls")
    finally:
        executor.shutdown()
        dispose(app)

    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Was: a traceback per poll (about 63 lines/s per worker while idle).
    assert [r.getMessage().split(":")[0] for r in errors] == ["jobs poller"]
    assert errors[0].getMessage().startswith("jobs poller: the jobs table is down: ")
    assert errors[0].exc_info is not None
    assert sum(record.exc_info is not None for record in caplog.records) == 1


def test_requests_with_redis_down_log_each_dependency_once(
    tmp_path: Path, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Limits, cache and blocklist all in Redis; then Redis dies.
    app = app_with_schema(
        sqlite_file_url(tmp_path), REDIS_URL=private_redis.url, REDIS_SOCKET_TIMEOUT=0.2
    )
    try:
        add_user(app, "alice")
        client = app.test_client()
        alice = bearer(login(client, "alice")["access_token"])
        assert client.get("/api/v1/tasks", headers=alice).status_code == 200
        private_redis.kill()
        caplog.clear()
        caplog.set_level(logging.INFO)

        statuses = [client.get("/api/v1/tasks", headers=alice).status_code for _ in range(20)]
        statuses.append(client.get("/health/ready").status_code)
    finally:
        dispose(app)

    assert statuses == [200] * 21
    logged = [r for r in caplog.records if r.name != "api.access"]
    # Was: about 100 lines per request. Now one per dependency, each with its traceback.
    assert sorted(r.getMessage().split(" is down")[0] for r in logged) == [
        "rate-limit storage (limits held per process meanwhile)",
        "readiness: redis",
        "response cache",
        "revocation store (Redis; the database answers meanwhile)",
    ]
    assert all(r.exc_info is not None for r in logged)
    assert not [r for r in caplog.records if "storage unreachable" in r.getMessage()]


def test_a_failing_limit_with_memory_storage_is_not_called_storage_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Flask-Limiter called any error while evaluating a limit "storage unreachable -
    # falling back to in-memory storage", even with the storage in memory. Here the
    # login limit's key (the account named) needs the database, which is down.
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/tasks.db")
    try:
        caplog.set_level(logging.INFO)
        response = app.test_client().post(
            "/api/v1/auth/login", json={"login": "alice", "password": "x" * 12}
        )
    finally:
        dispose(app)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "unreachable" in m or "rate-limit storage" in m]
    assert any(m.startswith("unhandled error") for m in messages)  # what really failed
