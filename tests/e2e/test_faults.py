"""Degradation under real faults: Redis killed and restarted, PostgreSQL restarted.

The Redis and PostgreSQL servers here are private ones the tests start on free ports
(and always stop): the shared servers other test runs use are never touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.openapi import TasksAPI
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.processes import (
    RedisServer,
    postgres_bindir,
    postgres_cluster,
)
from tests.support.tiers import tier_missing


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_process_state():
        yield


@pytest.fixture
def postgres_binaries() -> Path:
    bindir = postgres_bindir()
    if bindir is None:
        tier_missing("postgresql", "no /usr/lib/postgresql/<version>/bin with initdb and pg_ctl")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            tier_missing("postgresql", "no `postgres` user to run initdb as (root cannot)")
        if shutil.which("runuser") is None:
            tier_missing("postgresql", "runuser is not installed")
    return bindir


def titles(response: TestResponse) -> list[str]:
    return [task["title"] for task in response.get_json()["data"]]


@pytest.fixture
def redis_app(tmp_path: Path, private_redis: RedisServer) -> Iterator[TasksAPI]:
    """An app whose limits and cache live in the private Redis; the user `alice`."""
    application = app_with_schema(
        sqlite_url(tmp_path), REDIS_URL=private_redis.url, RATE_LIMIT_ANONYMOUS="3 per minute"
    )
    add_user(application, "alice")
    yield application
    dispose(application)


class RecordingClient:
    """A test client that keeps every response, to check afterwards that none was a 5xx."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.responses: list[TestResponse] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.open(path, method=method, **kwargs)
        self.responses.append(response)
        return response


def test_redis_crash_keeps_the_api_working(redis_app: TasksAPI, private_redis: RedisServer) -> None:
    call = RecordingClient(redis_app.test_client())
    alice = bearer(login(call.client, "alice")["access_token"])
    leaving = bearer(login(call.client, "alice")["access_token"])
    before = call("POST", "/api/v1/tasks", json={"title": "Before"}, headers=alice)
    warm = [call("GET", "/api/v1/tasks", headers=alice) for _ in range(2)]
    with private_redis.client() as direct:
        stored = [key.decode() for key in direct.keys("*")]
    assert before.status_code == 201
    assert [reply.headers["X-Cache"] for reply in warm] == ["miss", "hit"]
    assert any("response:" in key for key in stored), stored  # the cache is in Redis
    assert any("LIMITER" in key for key in stored), stored  # so are the counters

    private_redis.kill()

    # Reads work, uncached, and see every write.
    reads = [call("GET", "/api/v1/tasks", headers=alice) for _ in range(2)]
    during = call("POST", "/api/v1/tasks", json={"title": "During"}, headers=alice)
    listed = call("GET", "/api/v1/tasks?sort=id", headers=alice)
    assert [reply.status_code for reply in reads] == [200, 200]
    assert [reply.headers["X-Cache"] for reply in reads] == ["miss", "miss"]
    assert titles(reads[-1]) == ["Before"]
    assert during.status_code == 201
    assert titles(listed) == ["Before", "During"]

    # Revocation holds.
    assert call("POST", "/api/v1/auth/logout", headers=leaving).status_code == 204
    assert call("GET", "/api/v1/users/me", headers=leaving).status_code == 401

    # Limits hold in this process (in-memory fallback): never unlimited. The revoked
    # token's request above was the IP's (a refused credential names no user): 1 of 3.
    anonymous = [call("GET", "/api/v1/tasks") for _ in range(3)]
    assert [reply.status_code for reply in anonymous] == [401, 401, 429]
    assert anonymous[-1].mimetype == "application/problem+json"
    assert int(anonymous[-1].headers["Retry-After"]) > 0

    assert [r.request.path for r in call.responses if r.status_code >= 500] == []


def test_redis_down_is_degraded_until_it_is_back(
    redis_app: TasksAPI, private_redis: RedisServer
) -> None:
    client = redis_app.test_client()
    assert client.get("/health/ready").get_json()["status"] == "ok"

    private_redis.kill()
    down = client.get("/health/ready")
    private_redis.start()  # same port
    back = client.get("/health/ready")

    # Served around (tests/test_readiness.py): 200, degraded, the failing check named.
    assert down.status_code == 200
    assert down.get_json()["status"] == "degraded"
    checks = down.get_json()["checks"]
    assert checks["redis"]["status"] == "fail"
    assert checks["database"] == {"status": "ok"}
    assert back.status_code == 200
    assert back.get_json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "ok"},
            "jobs": {"status": "ok", "oldest_queued_seconds": 0.0},
        },
    }


def test_postgresql_restart_next_request_succeeds(postgres_binaries: Path) -> None:
    with postgres_cluster(postgres_binaries) as cluster:
        application = app_with_schema(cluster.url)
        try:
            add_user(application, "alice")
            client = application.test_client()
            alice = bearer(login(client, "alice")["access_token"])
            created = client.post("/api/v1/tasks", json={"title": "Before"}, headers=alice)
            assert created.status_code == 201
            task_id = created.get_json()["id"]

            cluster.restart()

            # Every pooled connection died with the server; the next request still works.
            again = client.get(f"/api/v1/tasks/{task_id}", headers=alice)
            assert again.status_code == 200, again.get_json()
            assert again.get_json()["title"] == "Before"
            after = client.post("/api/v1/tasks", json={"title": "After"}, headers=alice)
            assert after.status_code == 201, after.get_json()
            assert client.get("/health/ready").status_code == 200
        finally:
            dispose(application)
