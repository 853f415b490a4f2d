"""Liveness and readiness probes."""

from __future__ import annotations

from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.conftest import make_app


def test_live_touches_nothing(client: FlaskClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {}}


def test_ready_checks_the_database(client: FlaskClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": {"status": "ok"}}}


def test_ready_is_503_problem_when_the_database_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
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
