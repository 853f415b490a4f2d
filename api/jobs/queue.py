"""The queue: jobs written as rows and handed to the executor, and what the runner and
the metrics read back about them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g, has_app_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from api import clock
from api.extensions import db
from api.jobs import executor
from api.models import Job, JobStatus


def enqueue(kind: str, params: dict[str, Any], owner_id: int | None = None) -> Job:
    """Queue one job (committed) and hand it to the executor."""
    [job] = enqueue_each(kind, [params], owner_id)
    return job


def _new_job(kind: str, params: dict[str, Any], owner_id: int | None) -> Job:
    request_id = g.get("request_id") if has_app_context() else None
    return Job(
        kind=kind,
        params=dict(params),
        owner_id=owner_id,
        status=JobStatus.QUEUED.value,
        created_at=clock.now(),
        request_id=request_id,
    )


def enqueue_with_transaction(kind: str, params: dict[str, Any]) -> Job:
    """Queue a job in the current transaction: it exists if and only if the transaction
    commits (an outbox), and the executor hears of it once it has."""
    job = _new_job(kind, params, None)
    db.session.add(job)
    db.session.flush()
    db.session.info.setdefault(_SUBMIT_ON_COMMIT, []).append(job.id)
    return job


_SUBMIT_ON_COMMIT = "jobs_to_submit_on_commit"


@event.listens_for(Session, "after_commit")
def _submit_committed(session: Session) -> None:
    for job_id in session.info.pop(_SUBMIT_ON_COMMIT, []):
        executor().submit(job_id)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_SUBMIT_ON_COMMIT, None)


def enqueue_each(
    kind: str, params: Sequence[dict[str, Any]], owner_id: int | None = None
) -> list[Job]:
    """Queue one job of `kind` per entry of `params`, in one transaction.

    The rows are committed before an executor hears of them, so a worker never looks for a
    job that is not there yet. The enqueuing request's id goes with them into the logs.
    """
    jobs = [_new_job(kind, entry, owner_id) for entry in params]
    db.session.add_all(jobs)
    db.session.commit()
    for job in jobs:
        executor().submit(job.id)
    return jobs


def result_expiry(finished_at: datetime) -> datetime:
    return finished_at + timedelta(seconds=current_app.config["JOB_RESULT_TTL"])


def counts_by_status() -> dict[str, int]:
    """How many jobs are in each status (every status listed, zeros too)."""
    counts = dict.fromkeys((status.value for status in JobStatus), 0)
    rows = db.session.execute(select(Job.status, func.count(Job.id)).group_by(Job.status))
    counts.update({status: int(n) for status, n in rows})
    return counts
