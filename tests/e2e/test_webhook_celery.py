"""Tier `celery`: webhook deliveries on real `flask worker` processes (Redis broker).

A worker killed with SIGKILL while the receiver is still answering its request leaves the
delivery job running with a heartbeat that goes stale; the broker redelivers the message,
a new worker takes the job over, and the receiver gets the delivery again with the same
`webhook-id` (at least once), verified with `standardwebhooks`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from api.extensions import db
from api.models import Job
from api.openapi import TasksAPI
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.processes import celery_worker, start_celery_worker
from tests.support.task_session import settled
from tests.support.webhook_receiver import webhook_receiver

DEADLINE = 30.0


@pytest.fixture
def celery_app(celery_broker_url: str, tmp_path: Path) -> Iterator[tuple[TasksAPI, dict[str, str]]]:
    """An app on the celery backend and the settings its workers share with it."""
    run = uuid.uuid4().hex[:10]
    settings = {
        "DATABASE_URL": sqlite_url(tmp_path),
        "JOBS_BACKEND": "celery",
        "CELERY_BROKER_URL": celery_broker_url,
        "CELERY_QUEUE": f"tasks-api-test-{run}",
        "CELERY_KEY_PREFIX": f"tasks-api-test-{run}:",
        # Redelivered within seconds of a crash; a silent job is an orphan after 1.5 s.
        "CELERY_VISIBILITY_TIMEOUT": "2",
        "JOB_STALE_SECONDS": "1.5",
        "JOB_HEARTBEAT_SECONDS": "0.2",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on loopback
        "LOG_LEVEL": "INFO",
    }
    with isolated_process_state():
        app = app_with_schema(
            settings["DATABASE_URL"],
            JOBS_BACKEND="celery",
            CELERY_BROKER_URL=celery_broker_url,
            CELERY_QUEUE=settings["CELERY_QUEUE"],
            CELERY_KEY_PREFIX=settings["CELERY_KEY_PREFIX"],
            CELERY_VISIBILITY_TIMEOUT=2,
            JOB_STALE_SECONDS=1.5,
            JOB_HEARTBEAT_SECONDS=0.2,
            WEBHOOK_ALLOW_PRIVATE_TARGETS=True,
        )
        try:
            yield app, settings
        finally:
            app.extensions["celery"].close()
            broker = Redis.from_url(celery_broker_url)
            keys = list(broker.scan_iter(match=f"{settings['CELERY_KEY_PREFIX']}*"))
            if keys:
                broker.delete(*keys)
            broker.close()
            dispose(app)


def test_a_delivery_whose_worker_is_killed_is_taken_over(
    celery_app: tuple[TasksAPI, dict[str, str]], tmp_path: Path
) -> None:
    app, settings = celery_app
    log = tmp_path / "worker.log"
    add_user(app, "alice")
    client = app.test_client()
    headers = bearer(login(client, "alice")["access_token"])
    with webhook_receiver() as receiver:
        hook = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["task.created"]},
            headers=headers,
        ).get_json()
        receiver.secrets = [hook["secret"]]
        receiver.hold = threading.Event()  # the first request waits: the worker is mid-send
        receiver.statuses = [500]  # and when it is let go, its answer reaches no one
        first = start_celery_worker(log, **settings)
        try:
            task = settled(client.post("/api/v1/tasks", json={"title": "Hi"}, headers=headers))
            assert receiver.requests.acquire(timeout=DEADLINE), log.read_text()[-3000:]
        finally:
            first.kill()
        receiver.hold.set()
        assert receiver.received == []

        deliveries = f"/api/v1/webhooks/{hook['id']}/deliveries"
        with celery_worker(log, **settings):
            deadline = time.monotonic() + DEADLINE
            while (state := client.get(deliveries, headers=headers).get_json()["data"][0])[
                "status"
            ] != "delivered":
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
    [delivered] = receiver.received
    assert delivered.payload["data"] == task.get_json()
    assert receiver.attempts == [delivered.message_id] * 2  # at least once, same id
    assert receiver.rejected == []
    assert state["attempts"] == 1  # the killed attempt recorded nothing
    assert state["message_id"] == delivered.message_id
    with app.app_context():
        job = db.session.scalars(db.select(Job).where(Job.kind == "webhook.deliver")).one()
        assert job.attempts == 2  # the killed run's claim, and the one that took it over
