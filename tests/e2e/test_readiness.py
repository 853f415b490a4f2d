"""Readiness that tells the truth: 503 only when the app cannot serve (the database),
200 `degraded` when it serves around a failure (Redis, the broker, no worker consuming
jobs), on real servers: a private redis-server killed and restarted, a PostgreSQL port
nothing listens on, a Celery broker with no worker, RabbitMQ (tier `rabbitmq`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

import tests.support.job_kinds  # noqa: F401 - the worker imports them too (JOBS_IMPORTS)
from api.jobs.queue import enqueue
from api.jobs.workers import beat
from api.openapi import TasksAPI
from tests.support.apps import add_user, app_with_schema, dispose, isolated_process_state, make_app
from tests.support.apps import sqlite_url as sqlite_file_url
from tests.support.auth import bearer, login
from tests.support.clock import Clock
from tests.support.processes import RedisServer, celery_worker, free_port

DEADLINE = 30.0


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_process_state():
        yield


@pytest.fixture
def built(tmp_path: Path) -> Iterator[list[TasksAPI]]:
    """Apps a test builds (on a SQLite file of its own); disposed of afterwards."""
    apps: list[TasksAPI] = []
    yield apps
    for application in apps:
        celery = application.extensions.get("celery")
        if celery is not None:
            celery.close()
        dispose(application)


def build(built: list[TasksAPI], tmp_path: Path, **config: Any) -> TasksAPI:
    application = app_with_schema(sqlite_file_url(tmp_path), **config)
    built.append(application)
    return application


def ready(application: TasksAPI) -> tuple[int, dict[str, Any]]:
    response = application.test_client().get("/health/ready")
    return response.status_code, response.get_json()


# --- Redis -----------------------------------------------------------------------------


def test_redis_stopped_is_200_degraded_and_the_api_serves_on(
    built: list[TasksAPI],
    tmp_path: Path,
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything Redis can hold is in Redis: limits, the cache, the token blocklist.
    app = build(built, tmp_path, REDIS_URL=private_redis.url, REDIS_SOCKET_TIMEOUT=0.2)
    add_user(app, "alice")
    client = app.test_client()
    alice = bearer(login(client, "alice")["access_token"])
    status, body = ready(app)
    assert (status, body["status"], body["checks"]["redis"]) == (200, "ok", {"status": "ok"})

    private_redis.kill()
    caplog.set_level(logging.INFO, logger="api.outage")
    status, body = ready(app)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"status": "fail", "detail": "ConnectionError"}
    assert body["checks"]["database"] == {"status": "ok"}
    # And the instance really does serve: what the load balancer keeps it for.
    assert client.get("/api/v1/tasks", headers=alice).status_code == 200

    private_redis.start()
    status, body = ready(app)
    assert (status, body["status"], body["checks"]["redis"]) == (200, "ok", {"status": "ok"})
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert any(message.startswith("readiness: redis recovered") for message in recovered)


# --- PostgreSQL ------------------------------------------------------------------------


def test_postgresql_stopped_is_503(built: list[TasksAPI]) -> None:
    # A PostgreSQL that is not running: connections to its port are refused.
    app = make_app(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tasks")
    built.append(app)
    response = app.test_client().get("/health/ready")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["checks"]["database"] == {"status": "fail", "detail": "OperationalError"}
    assert body["checks"]["jobs"]["status"] == "fail"
    assert body["detail"].startswith("Not ready: database")
    # Liveness stays dumb: the process is alive, whatever its dependencies.
    assert app.test_client().get("/health/live").status_code == 200


# --- Jobs: no worker -------------------------------------------------------------------


def test_no_worker_makes_jobs_degraded_after_the_stall_window(
    built: list[TasksAPI], tmp_path: Path, private_redis: RedisServer, clock: Clock
) -> None:
    app = build(
        built,
        tmp_path,
        JOBS_BACKEND="celery",
        CELERY_BROKER_URL=private_redis.url,
        JOBS_STALL_SECONDS=60.0,
        METRICS_ENABLED=True,
    )
    # No worker has ever started: nothing would run a job.
    status, body = ready(app)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["broker"] == {"status": "ok"}
    assert body["checks"]["jobs"] == {
        "status": "degraded",
        "detail": "no worker has sent a heartbeat",
        "oldest_queued_seconds": 0.0,
        "last_heartbeat_seconds": None,
    }

    # A worker beats (what a Celery worker's heartbeat thread writes), a job is queued.
    with app.app_context():
        beat("worker-1")
        enqueue("test.fail", {})
    status, body = ready(app)
    assert (status, body["status"], body["checks"]["jobs"]["status"]) == (200, "ok", "ok")
    assert body["checks"]["jobs"]["last_heartbeat_seconds"] < 5

    # The worker dies; the job waits. Within the window: still ok.
    clock.advance(seconds=59)
    assert ready(app)[1]["checks"]["jobs"]["status"] == "ok"
    clock.advance(seconds=2)
    status, body = ready(app)
    assert status == 200
    assert body["status"] == "degraded"
    jobs = body["checks"]["jobs"]
    assert jobs["status"] == "degraded"
    assert 61 <= jobs["oldest_queued_seconds"] < 70
    assert 61 <= jobs["last_heartbeat_seconds"] < 70
    assert jobs["detail"] == (
        f"a queued job has waited {jobs['oldest_queued_seconds']:.0f} s; "
        f"no worker heartbeat for {jobs['last_heartbeat_seconds']:.0f} s"
    )
    # The same in the metrics, for alerting.
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert "tasks_api_jobs_degraded 1.0" in metrics
    assert "tasks_api_jobs_oldest_queued_seconds 6" in metrics

    # A worker comes back: heartbeat fresh; the job still waits, so still degraded.
    with app.app_context():
        beat("worker-2")
    jobs = ready(app)[1]["checks"]["jobs"]
    assert jobs["detail"].startswith("a queued job has waited")
    assert jobs["last_heartbeat_seconds"] < 5


def test_the_thread_executor_beats_for_its_process(built: list[TasksAPI], tmp_path: Path) -> None:
    app = build(built, tmp_path, JOBS_BACKEND="thread", JOBS_POLL_SECONDS=0.05)
    try:
        status, body = ready(app)  # the first request starts the pool, and its heartbeat
        assert (status, body["status"]) == (200, "ok")
        assert body["checks"]["jobs"]["last_heartbeat_seconds"] < 5
    finally:
        app.extensions["jobs"].shutdown()


# --- Brokers ---------------------------------------------------------------------------


def test_an_unreachable_redis_broker_is_200_degraded(built: list[TasksAPI], tmp_path: Path) -> None:
    app = build(
        built,
        tmp_path,
        JOBS_BACKEND="celery",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    status, body = ready(app)
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["broker"]["status"] == "fail"


def test_an_amqp_broker_is_checked_by_kombu(
    built: list[TasksAPI], tmp_path: Path, amqp_url: str
) -> None:
    app = build(built, tmp_path, JOBS_BACKEND="celery", CELERY_BROKER_URL=amqp_url)
    status, body = ready(app)
    assert status == 200  # was a 500: a Redis client was handed the amqp:// URL
    assert body["checks"]["broker"] == {"status": "ok"}


def test_an_unreachable_amqp_broker_is_200_degraded(built: list[TasksAPI], tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    app = build(built, tmp_path, JOBS_BACKEND="celery", CELERY_BROKER_URL=url)
    started = time.monotonic()
    status, body = ready(app)
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["broker"]["status"] == "fail"
    assert time.monotonic() - started < 5  # bounded: no retry loop


@pytest.fixture
def amqp_queue(amqp_url: str) -> Iterator[str]:
    """A queue name of this test's own, deleted from RabbitMQ afterwards."""
    name = f"tasks-api-test-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(amqp_url, connect_timeout=2) as connection:
        connection.default_channel.queue_delete(name)


def test_a_worker_on_rabbitmq_runs_a_job_and_readiness_sees_it(
    built: list[TasksAPI], tmp_path: Path, amqp_url: str, amqp_queue: str
) -> None:
    settings = {
        "DATABASE_URL": sqlite_file_url(tmp_path),
        "JOBS_BACKEND": "celery",
        "CELERY_BROKER_URL": amqp_url,
        "CELERY_QUEUE": amqp_queue,
        "JOB_HEARTBEAT_SECONDS": "0.2",
        "JOBS_IMPORTS": "tests.support.job_kinds",
    }
    app = build(built, tmp_path, **{k: v for k, v in settings.items() if k != "DATABASE_URL"})
    add_user(app, "alice")
    client = app.test_client()
    alice = bearer(login(client, "alice")["access_token"])
    assert ready(app)[1]["checks"]["jobs"]["detail"] == "no worker has sent a heartbeat"

    with celery_worker(tmp_path / "worker.log", **settings):
        response = client.post("/api/v1/reports", json={"kind": "summary"}, headers=alice)
        assert response.status_code == 202
        job_url = response.headers["Location"]
        deadline = time.monotonic() + DEADLINE
        while (job := client.get(job_url, headers=alice).get_json())["status"] != "succeeded":
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.05)
        status, body = ready(app)
    assert (status, body["status"]) == (200, "ok")
    assert body["checks"]["broker"] == {"status": "ok"}
    assert body["checks"]["jobs"]["last_heartbeat_seconds"] < 5
