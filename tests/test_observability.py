"""Logs, metrics and probes: one JSON line per request, /metrics behind a switch and a
token, /health/live that touches nothing, /health/ready that names what is down, and
no debug mode in production."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from api import create_app
from api.config import ConfigError
from api.extensions import db
from api.openapi import TasksAPI
from tests.support.apps import (
    UNREACHABLE_REDIS_URL,
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    make_app,
    sqlite_url,
)
from tests.support.auth import bearer, login

Build = Callable[..., TasksAPI]
METRICS_TOKEN = "metrics-token-for-the-tests"
TASK_ROUTE = "/api/v1/tasks/<int:task_id>"
# What every request line carries (besides duration_ms).
LOGGED = ("request_id", "method", "route", "status", "user_id", "client_ip")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's shell may run gunicorn's multiprocess mode; these tests are one process.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with isolated_process_state():
        yield


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    """`build(**config)`: an app with JSON logs on a fresh SQLite file; disposed after."""
    built: list[TasksAPI] = []

    def factory(**config: Any) -> TasksAPI:
        directory = tmp_path / f"app{len(built)}"
        directory.mkdir()
        application = app_with_schema(sqlite_url(directory), LOG_FORMAT="json", **config)
        built.append(application)
        return application

    yield factory
    for application in built:
        dispose(application)


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "api.access"]


def app_log_handler() -> logging.Handler:
    """The handler `create_app` installed on the root logger (it adds the request id)."""
    return next(h for h in logging.getLogger().handlers if h.get_name() == "tasks-api")


Series = tuple[str, tuple[tuple[str, str], ...]]


def series(name: str, **labels: str) -> Series:
    return name, tuple(sorted(labels.items()))


def samples(metrics: str) -> dict[Series, float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        series(sample.name, **sample.labels): float(sample.value)
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }


def scrape(client: FlaskClient, **headers: str) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_data(as_text=True)


# --- request logs ----------------------------------------------------------------------


def test_each_request_writes_one_access_line(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.access")
    application = build()
    user_id = add_user(application, "alice")
    client = application.test_client()
    alice = bearer(login(client, "alice")["access_token"])
    task_id = client.post("/api/v1/tasks", json={"title": "Logged"}, headers=alice).get_json()["id"]
    caplog.clear()

    response = client.get(f"/api/v1/tasks/{task_id}", headers=alice)

    assert response.status_code == 200
    [record] = access_records(caplog)
    # Readable on its own in text logs: method, path, status, duration (the request id
    # is in the line's format).
    assert re.fullmatch(rf"GET /api/v1/tasks/{task_id} 200 \d+\.\d ms", record.getMessage())
    fields = vars(record)
    assert {name: fields[name] for name in LOGGED} == {
        "request_id": response.headers["X-Request-ID"],
        "method": "GET",
        "route": TASK_ROUTE,
        "status": 200,
        "user_id": user_id,
        "client_ip": "127.0.0.1",
    }
    assert isinstance(fields["duration_ms"], float)
    assert fields["duration_ms"] >= 0
    # Who called, by kind of credential.
    made = client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["tasks:read"]}, headers=alice
    )
    callers = (
        (alice, "user"),
        ({"X-API-Key": made.get_json()["secret"]}, "api_key"),
        ({}, "anonymous"),
    )
    caplog.clear()
    for headers, _ in callers:
        client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert [vars(r)["principal"] for r in access_records(caplog)] == [kind for _, kind in callers]


# (Liveness probes are answered before Flask, unlogged: see api.http.LivenessProbe.)
@pytest.mark.parametrize(
    ("path", "route", "status"),
    [
        ("/health/ready", "/health/ready", 200),
        ("/api/v1/tasks/7", TASK_ROUTE, 401),
        ("/no/such/page", "<unmatched>", 404),
    ],
)
def test_anonymous_and_failed_requests_are_logged_by_route(
    build: Build,
    caplog: pytest.LogCaptureFixture,
    path: str,
    route: str,
    status: int,
) -> None:
    caplog.set_level(logging.INFO, logger="api.access")
    client = build().test_client()

    response = client.get(path)

    assert response.status_code == status
    [record] = access_records(caplog)
    fields = vars(record)
    assert (fields["route"], fields["status"], fields["user_id"]) == (route, status, None)
    assert fields["request_id"] == response.headers["X-Request-ID"]


def test_access_lines_are_json_objects_on_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Built here, while capfd holds stderr, so the app's handler writes into the capture.
    application = app_with_schema(sqlite_url(tmp_path), LOG_FORMAT="json")
    try:
        client = application.test_client()
        capfd.readouterr()
        first = client.get("/health/ready", headers={"X-Request-ID": "req-json-1"})
        second = client.get("/api/v1/tasks/7")
        lines = capfd.readouterr().err.splitlines()
    finally:
        dispose(application)

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [record for record in records if record["logger"] == "api.access"]
    assert [record["request_id"] for record in access] == [
        "req-json-1",
        second.headers["X-Request-ID"],
    ]
    assert first.headers["X-Request-ID"] == "req-json-1"
    line = access[0]
    assert line["level"] == "INFO"
    assert re.fullmatch(r"GET /health/ready 200 \d+\.\d ms", line["message"])
    assert line["path"] == "/health/ready"
    assert isinstance(line["duration_ms"], float)
    assert "time" in line
    assert (line["method"], line["route"], line["status"]) == ("GET", "/health/ready", 200)
    assert line["user_id"] is None
    assert line["client_ip"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float)
    assert (access[1]["route"], access[1]["status"]) == (TASK_ROUTE, 401)


def test_a_log_line_inside_a_request_carries_its_request_id(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.access")
    application = build()

    def explode() -> str:
        raise RuntimeError("boom")

    application.add_url_rule("/explode", "explode", explode)
    client = application.test_client()

    response = client.get("/explode", headers={"X-Request-ID": "trace-500"})

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.headers["X-Request-ID"] == "trace-500"
    assert response.get_json()["request_id"] == "trace-500"
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert vars(error)["request_id"] == "trace-500"
    formatted = json.loads(app_log_handler().format(error))
    assert formatted["request_id"] == "trace-500"
    assert formatted["level"] == "ERROR"
    assert "RuntimeError: boom" in formatted["exc_info"]
    [access] = access_records(caplog)
    assert (vars(access)["request_id"], vars(access)["status"]) == ("trace-500", 500)


@pytest.mark.parametrize(("hops", "client_ip"), [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_client_ip_trusts_forwarded_for_only_behind_configured_proxies(
    build: Build, caplog: pytest.LogCaptureFixture, hops: int, client_ip: str
) -> None:
    caplog.set_level(logging.INFO, logger="api.access")
    client = build(TRUSTED_PROXY_HOPS=hops).test_client()

    client.get("/health/ready", headers={"X-Forwarded-For": "203.0.113.9"})

    [record] = access_records(caplog)
    assert vars(record)["client_ip"] == client_ip


# --- metrics ---------------------------------------------------------------------------


def test_metrics_are_off_by_default(build: Build) -> None:
    response = build().test_client().get("/metrics")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_metrics_count_requests_by_route_and_status(build: Build) -> None:
    client = build(METRICS_ENABLED=True).test_client()
    ready = series("tasks_api_requests_total", method="GET", route="/health/ready", status="200")
    task = series("tasks_api_requests_total", method="GET", route=TASK_ROUTE, status="401")
    live_seconds = series(
        "tasks_api_request_duration_seconds_count", method="GET", route="/health/ready"
    )
    before = samples(scrape(client))

    for _ in range(2):
        assert client.get("/health/ready").status_code == 200
    assert client.get("/api/v1/tasks/12345").status_code == 401
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    after = samples(response.get_data(as_text=True))
    assert after[ready] - before.get(ready, 0) == 2
    assert after[task] - before.get(task, 0) == 1
    assert after[live_seconds] - before.get(live_seconds, 0) == 2
    # Labels carry the URL rule, never the raw path (ids would explode cardinality).
    routes = {dict(labels).get("route") for _, labels in after}
    assert "/api/v1/tasks/12345" not in routes


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer "}],
    ids=["no-token", "wrong-token", "empty-token"],
)
def test_metrics_token_is_required_when_set(build: Build, headers: dict[str, str]) -> None:
    client = build(METRICS_ENABLED=True, METRICS_TOKEN=METRICS_TOKEN).test_client()

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 401
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "tasks_api_requests_total" not in response.get_data(as_text=True)
    assert "tasks_api_requests_total" in scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")


def test_metrics_401_challenges_for_a_bearer_token(build: Build) -> None:
    # RFC 9110 §15.5.2: a 401 must carry WWW-Authenticate.
    client = build(METRICS_ENABLED=True, METRICS_TOKEN=METRICS_TOKEN).test_client()
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_probes_and_metrics_are_never_rate_limited(build: Build) -> None:
    client = build(METRICS_ENABLED=True, RATE_LIMIT_ANONYMOUS="2 per minute").test_client()

    for path in ("/metrics", "/health/live", "/health/ready"):
        statuses = [client.get(path).status_code for _ in range(5)]
        assert statuses == [200] * 5, path
    # The limit itself is live: the API's third anonymous request is refused.
    assert [client.get("/api/v1/tasks").status_code for _ in range(3)] == [401, 401, 429]


# --- probes ----------------------------------------------------------------------------


def test_live_touches_no_dependency() -> None:
    # Nothing listens on port 1: both the database and Redis are "down".
    application = make_app(
        "postgresql+psycopg://nobody@127.0.0.1:1/nothing", REDIS_URL=UNREACHABLE_REDIS_URL
    )
    connects: list[object] = []
    try:
        with application.app_context():
            event.listen(db.engine, "do_connect", lambda *args: connects.append(args))
        client = application.test_client()

        live = client.get("/health/live")
        live_connects = len(connects)
        ready = client.get("/health/ready")
    finally:
        dispose(application)

    assert live.status_code == 200
    assert live.get_json() == {"status": "ok", "checks": {}}
    assert live_connects == 0
    assert ready.status_code == 503
    checks = ready.get_json()["checks"]
    assert checks["database"]["status"] == "fail"
    assert checks["redis"]["status"] == "fail"
    assert connects, "readiness should have tried the database"


def test_ready_is_200_degraded_when_redis_is_unreachable(build: Build) -> None:
    # The app serves around Redis (limits per process, uncached reads): a load balancer
    # must keep the instance.
    response = build(REDIS_URL=UNREACHABLE_REDIS_URL).test_client().get("/health/ready")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"status": "fail", "detail": "ConnectionError"}
    assert body["checks"]["database"] == {"status": "ok"}


# --- production ------------------------------------------------------------------------


@pytest.fixture
def production_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("DEBUG", "FLASK_DEBUG", "REDIS_URL", "LOG_FORMAT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 40)
    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("DATABASE_URL", sqlite_url(tmp_path))


@pytest.mark.usefixtures("production_environment")
def test_production_runs_without_debug_even_if_flask_debug_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    application = create_app()
    try:
        assert application.config["ENV_NAME"] == "production"
        assert application.debug is False
        assert application.config["DEBUG"] is False
    finally:
        dispose(application)


@pytest.mark.usefixtures("production_environment")
def test_production_refuses_debug_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    with pytest.raises(ConfigError, match="DEBUG"):
        create_app()
