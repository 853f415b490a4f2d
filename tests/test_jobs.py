"""The job machinery: the claim, the thread executor for real (submit, poll, retries,
failures, orphans), the inline executor's retries, metrics and the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

import tests.support.job_kinds  # noqa: F401 - registers the test.* job kinds
from api.extensions import db
from api.jobs import KINDS, executor
from api.jobs.executors import ThreadExecutor
from api.jobs.queue import enqueue
from api.jobs.runner import INTERNAL_ERROR, UNAVAILABLE_ERROR, run_job
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
from tests.support.jobs import DEADLINE, wait_for
from tests.support.reports import direct_counts, make_tasks


def queue(app: TasksAPI, kind: str, **params: Any) -> int:
    with app.app_context():
        return enqueue(kind, params).id


@pytest.fixture
def threaded(tmp_path: Path) -> Iterator[TasksAPI]:
    """An app with the thread executor (fast polling and heartbeats), stopped afterwards."""
    with isolated_process_state():
        application = app_with_schema(
            sqlite_url(tmp_path),
            JOBS_BACKEND="thread",
            JOBS_POLL_SECONDS=0.05,
            JOB_HEARTBEAT_SECONDS=0.05,
            JOB_STALE_SECONDS=1.0,
        )
        try:
            yield application
        finally:
            application.extensions["jobs"].shutdown()
            dispose(application)


# --- thread executor -------------------------------------------------------------------


def test_a_report_runs_on_the_pool_and_matches_the_database(threaded: TasksAPI) -> None:
    client = threaded.test_client()
    add_user(threaded, "alice")
    headers = bearer(login(client, "alice")["access_token"])
    make_tasks(client, headers)
    response = client.post("/api/v1/reports", json={"kind": "summary"}, headers=headers)
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    assert isinstance(threaded.extensions["jobs"], ThreadExecutor)

    deadline = time.monotonic() + DEADLINE
    while (job := client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json())[
        "status"
    ] != "succeeded":
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    summary = client.get(f"/api/v1/jobs/{job_id}/result", headers=headers).get_json()
    with threaded.app_context():
        owner = db.session.scalar(select(Job.owner_id).where(Job.id == job_id))
    assert owner is not None
    expected = direct_counts(threaded, owner)
    assert summary["total"] == expected["total"] == 6
    assert summary["by_tag"] == expected["by_tag"]
    assert summary["overdue"] == expected["overdue"]
    assert {k: v for k, v in summary["by_status"].items() if v} == expected["by_status"]


def test_a_failing_job_records_its_error_and_the_pool_goes_on(
    threaded: TasksAPI, tmp_path: Path
) -> None:
    with threaded.app_context():
        executor().start()
    failing = queue(threaded, "test.fail")
    job = wait_for(threaded, failing, "failed")
    assert (job.attempts, job.error) == (1, INTERNAL_ERROR)
    assert job.finished_at is not None
    assert job.expires_at is not None
    assert job.result is None

    marker = tmp_path / "ran"
    after = queue(threaded, "test.slow", seconds=0, marker=str(marker))
    assert wait_for(threaded, after, "succeeded").result == "slept 0"
    assert marker.read_text().split()[0] == str(after)


def test_transient_failures_are_retried_by_the_poller(threaded: TasksAPI) -> None:
    with threaded.app_context():
        executor().start()
    job_id = queue(threaded, "test.flaky", failures=2)
    job = wait_for(threaded, job_id, "succeeded", "failed")
    assert (job.status, job.attempts, job.result) == ("succeeded", 3, "done on attempt 3")
    # The last failure stays visible until the job succeeds... and then it is cleared.
    assert job.error is None


def test_transient_failures_give_up_after_the_last_attempt(threaded: TasksAPI) -> None:
    with threaded.app_context():
        executor().start()
    job = wait_for(threaded, queue(threaded, "test.flaky", failures=5), "failed")
    assert job.attempts == threaded.config["JOB_MAX_ATTEMPTS"] == 3
    assert job.error == UNAVAILABLE_ERROR.format(attempts=3)


def test_an_orphan_is_requeued_and_run_on_start(threaded: TasksAPI, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    stale = datetime.now(UTC) - timedelta(minutes=5)
    with threaded.app_context():
        # A job whose process died mid-run: running, one attempt, heartbeat long gone.
        job = Job(
            kind="test.slow",
            params={"seconds": 0, "marker": str(marker)},
            status="running",
            attempts=1,
            started_at=stale,
            heartbeat_at=stale,
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
        executor().start()
    done = wait_for(threaded, job_id, "succeeded")
    assert done.attempts == 2
    assert marker.read_text().count("\n") == 1


def test_a_live_job_is_left_alone(threaded: TasksAPI, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with threaded.app_context():
        executor().start()
    job_id = queue(threaded, "test.slow", seconds=0.5, marker=str(marker))
    wait_for(threaded, job_id, "running")
    # Its heartbeat is fresh: neither another claim nor the orphan sweep takes it.
    with threaded.app_context():
        outcome = run_job(job_id)
    assert (outcome.ran, outcome.retry_in) == (False, 1.0)
    job = wait_for(threaded, job_id, "succeeded")
    assert job.attempts == 1
    assert marker.read_text().count("\n") == 1


# --- the claim -------------------------------------------------------------------------


def test_a_finished_job_never_runs_again(app: TasksAPI, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    job_id = queue(app, "test.slow", seconds=0, marker=str(marker))  # inline: runs at once
    for _ in range(3):  # redeliveries, duplicates, re-polls
        with app.app_context():
            assert run_job(job_id).ran is False
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("succeeded", 1)
    assert marker.read_text().count("\n") == 1


def test_an_outcome_is_dropped_when_the_claim_was_lost(
    app: TasksAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def taken_over(job: Job) -> None:
        # Another worker took the job over meanwhile (a second claim).
        with db.engine.begin() as connection:
            connection.execute(update(Job).where(Job.id == job.id).values(attempts=2))

    monkeypatch.setitem(KINDS, "test.taken", taken_over)
    job_id = queue(app, "test.taken")
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.finished_at) == ("running", 2, None)


def test_the_inline_executor_retries_until_it_succeeds(app: TasksAPI) -> None:
    job_id = queue(app, "test.flaky", failures=1)
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("succeeded", 2)


# --- operations ------------------------------------------------------------------------


def test_metrics_count_jobs_by_status(tmp_path: Path) -> None:
    with isolated_process_state():
        application = app_with_schema(sqlite_url(tmp_path), METRICS_ENABLED=True)
        try:
            queue(application, "test.fail")
            queue(application, "test.flaky", failures=0)
            text = application.test_client().get("/metrics").get_data(as_text=True)
        finally:
            dispose(application)
    assert 'tasks_api_jobs{status="failed"} 1.0' in text
    assert 'tasks_api_jobs{status="succeeded"} 1.0' in text
    assert 'tasks_api_jobs{status="queued"} 0.0' in text
    assert 'tasks_api_jobs_finished_total{kind="test.fail",status="failed"}' in text


def test_purge_expired_includes_jobs_and_stats_count_them(app: TasksAPI) -> None:
    old = queue(app, "test.flaky", failures=0)
    queue(app, "test.fail")
    with app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.session.execute(update(Job).where(Job.id == old).values(expires_at=past))
        db.session.commit()
    runner = app.test_cli_runner()
    stats = runner.invoke(args=["jobs", "stats"])
    assert stats.output == "queued: 0\nrunning: 0\nsucceeded: 1\nfailed: 1\n"
    purged = runner.invoke(args=["purge-expired"])
    assert purged.exit_code == 0
    assert ", 1 jobs, 0 heartbeats of stopped workers\n" in purged.output
    with app.app_context():
        assert db.session.scalars(select(Job.kind)).all() == ["test.fail"]


def test_the_worker_command_needs_the_celery_backend(app: TasksAPI) -> None:
    result = app.test_cli_runner().invoke(args=["worker"])
    assert result.exit_code != 0
    assert "JOBS_BACKEND=celery" in result.output


def test_readiness_fails_when_the_poller_died(threaded: TasksAPI) -> None:
    pool = threaded.extensions["jobs"]
    client = threaded.test_client()
    ready = client.get("/health/ready").get_json()
    assert ready["status"] == "ok"
    assert ready["checks"]["jobs"]["status"] == "ok"
    pool._stop.set()  # the poller exits as if it had crashed
    assert pool._poller is not None
    pool._poller.join(timeout=DEADLINE)
    response = client.get("/health/ready")
    # Jobs stay queued, requests are served: degraded, not unready.
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["checks"]["jobs poller"] == {
        "status": "fail",
        "detail": "the poller thread has stopped",
    }
