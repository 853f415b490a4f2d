"""Liveness and readiness probes."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.apps import UNREACHABLE_REDIS, app_with_schema, make_app

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier


def test_live_touches_nothing(client: FlaskClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {}}


def test_ready_checks_the_database_and_redis_when_configured(
    app: TasksAPI, client: FlaskClient
) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    checks = {"database": {"status": "ok"}}
    if app.config["REDIS_URL"]:
        checks["redis"] = {"status": "ok"}
    # The inline executor (tests) runs jobs in the enqueuing process: no heartbeat to wait for.
    checks["jobs"] = {"status": "ok", "oldest_queued_seconds": 0.0}
    assert response.get_json() == {"status": "ok", "checks": checks}


def test_ready_is_200_degraded_naming_redis_when_redis_is_down(tmp_path: Path) -> None:
    app = app_with_schema(f"sqlite:///{tmp_path / 'tasks.db'}", **UNREACHABLE_REDIS)
    response = app.test_client().get("/health/ready")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "status": "degraded",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "fail", "detail": "ConnectionError"},
            "jobs": {"status": "ok", "oldest_queued_seconds": 0.0},
        },
    }


def test_ready_is_503_problem_when_the_database_is_down(tmp_path: Path) -> None:
    # A SQLite URL in a directory that does not exist cannot be opened.
    app: TasksAPI = make_app(f"sqlite:///{tmp_path}/missing/dir/tasks.db")
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 503
    assert body["checks"]["database"]["status"] == "fail"
    assert "database" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
