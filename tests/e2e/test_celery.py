"""Tier `celery`: real `flask worker` processes on the real Redis broker.

A report runs end to end on a worker; a worker killed with SIGKILL mid-job leaves its
message unacknowledged, the broker redelivers it to a new worker, which takes the job over
once its heartbeat is stale, and the job completes exactly once (attempts and a side
effect prove it). Each test uses a queue and broker key prefix of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

import tests.support.job_kinds  # noqa: F401 - the worker imports them too (JOBS_IMPORTS)
from api.jobs import executor
from api.jobs.queue import enqueue
from api.openapi import TasksAPI
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.db import user_id
from tests.support.jobs import wait_for
from tests.support.processes import celery_worker, start_celery_worker
from tests.support.reports import direct_counts, make_tasks

DEADLINE = 30.0


@dataclass
class Setup:
    app: TasksAPI
    settings: dict[str, str]
    log: Path


@pytest.fixture
def celery_setup(celery_broker_url: str, tmp_path: Path) -> Iterator[Setup]:
    """An app on the celery backend and the settings its workers share with it: one SQLite
    file, the broker, and a queue and key prefix no other run uses."""
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
        "JOBS_IMPORTS": "tests.support.job_kinds",
        "LOG_LEVEL": "INFO",
    }
    typed = {
        "CELERY_VISIBILITY_TIMEOUT": 2,
        "JOB_STALE_SECONDS": 1.5,
        "JOB_HEARTBEAT_SECONDS": 0.2,
    }
    with isolated_process_state():
        application = app_with_schema(
            settings["DATABASE_URL"],
            **{k: v for k, v in settings.items() if k not in typed and k != "DATABASE_URL"},
            **typed,
        )
        try:
            yield Setup(application, settings, tmp_path / "worker.log")
        finally:
            application.extensions["celery"].close()
            broker = Redis.from_url(celery_broker_url)
            keys = list(broker.scan_iter(match=f"{settings['CELERY_KEY_PREFIX']}*"))
            if keys:
                broker.delete(*keys)
            broker.close()
            dispose(application)


def test_a_report_runs_end_to_end_on_a_worker(celery_setup: Setup) -> None:
    app = celery_setup.app
    client = app.test_client()
    add_user(app, "alice")
    headers = bearer(login(client, "alice")["access_token"])
    make_tasks(client, headers)
    with celery_worker(celery_setup.log, **celery_setup.settings):
        response = client.post("/api/v1/reports", json={"kind": "summary"}, headers=headers)
        assert response.status_code == 202
        job_id = response.get_json()["id"]
        deadline = time.monotonic() + DEADLINE
        while (job := client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json())[
            "status"
        ] != "succeeded":
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, celery_setup.log.read_text()[-3000:]
            time.sleep(0.05)
    summary = client.get(f"/api/v1/jobs/{job_id}/result", headers=headers).get_json()
    expected = direct_counts(app, user_id(app, "alice"))
    assert summary["total"] == expected["total"] == 6
    assert summary["by_tag"] == expected["by_tag"]
    assert summary["overdue"] == expected["overdue"]
    # The worker logged the job under the id of the request that queued it.
    log = celery_setup.log.read_text()
    assert f"[{response.headers['X-Request-ID']}] job {job_id} (report) succeeded" in log


def test_a_job_whose_worker_is_killed_completes_exactly_once(
    celery_setup: Setup, tmp_path: Path
) -> None:
    app, settings, log = celery_setup.app, celery_setup.settings, celery_setup.log
    marker = tmp_path / "completions"
    first = start_celery_worker(log, **settings)
    try:
        with app.app_context():
            job_id = enqueue("test.slow", {"seconds": 2.5, "marker": str(marker)}).id
        running = wait_for(app, job_id, "running")
        assert running.attempts == 1
        time.sleep(0.3)  # well into the job
    finally:
        first.kill()
    assert not marker.exists()  # killed before the end

    with celery_worker(log, **settings):
        done = wait_for(app, job_id, "succeeded")
        assert done.attempts == 2
        # A duplicate delivery of the finished job changes nothing: the claim refuses it.
        # (One worker thread, so it is handled before the job queued after it.)
        with app.app_context():
            executor().submit(job_id)
            later = enqueue("test.slow", {"seconds": 0, "marker": str(marker)}).id
        wait_for(app, later, "succeeded")
    lines = marker.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [str(job_id), str(later)]
    assert wait_for(app, job_id, "succeeded").attempts == 2
