"""Waiting for background jobs, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import time

from api.extensions import db
from api.models import Job
from api.openapi import TasksAPI

DEADLINE = 10.0


def wait_for(app: TasksAPI, job_id: int, *statuses: str) -> Job:
    """Poll the job's row until its status is one of `statuses` (fail after DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        with app.app_context():
            job = db.session.get(Job, job_id)
            assert job is not None
            db.session.expunge(job)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.02)
