"""Job rules: enqueueing, ownership, results and their expiry, housekeeping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g, has_app_context
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from api import clock
from api.errors import ConflictError, GoneError, NotFoundError
from api.extensions import db
from api.models import MAX_ID, Job, JobStatus, User
from api.pagination import Page
from api.services.sql import fetch_page


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
    from api.jobs import executor

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
    from api.jobs import executor

    jobs = [_new_job(kind, entry, owner_id) for entry in params]
    db.session.add_all(jobs)
    db.session.commit()
    for job in jobs:
        executor().submit(job.id)
    return jobs


def get_owned_job(user: User, job_id: int) -> Job:
    """The user's own job; anyone else's (admins' too) is a 404, like a missing one."""
    job = db.session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.owner_id != user.id:
        raise NotFoundError(f"Job {job_id} does not exist.")
    return job


def list_jobs(user: User, query: dict[str, Any]) -> Page:
    conditions = [Job.owner_id == user.id]
    if "status" in query:
        conditions.append(Job.status == query["status"])
    return fetch_page(Job, conditions, [Job.created_at.desc(), Job.id.desc()], query)


def result_expiry(finished_at: datetime) -> datetime:
    return finished_at + timedelta(seconds=current_app.config["JOB_RESULT_TTL"])


def job_result(job: Job) -> tuple[str, str]:
    """The result text and its media type: 409 until the job succeeded, 410 once expired."""
    if job.finished and job.expires_at is not None and job.expires_at <= clock.now():
        raise GoneError(
            f"The result of job {job.id} expired at {job.expires_at.isoformat()}; "
            "create a new report."
        )
    if job.status == JobStatus.FAILED.value:
        raise ConflictError(f"Job {job.id} failed, so it has no result: {job.error}")
    if job.status != JobStatus.SUCCEEDED.value or job.result is None:
        raise ConflictError(f"Job {job.id} is {job.status}; poll it until it has succeeded.")
    return job.result, job.result_media_type or "application/octet-stream"


def purge_expired() -> int:
    """Delete finished jobs past their expiry, results and all; returns how many."""
    result = db.session.execute(delete(Job).where(Job.expires_at <= clock.now()))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counts_by_status() -> dict[str, int]:
    """How many jobs are in each status (every status listed, zeros too)."""
    counts = dict.fromkeys((status.value for status in JobStatus), 0)
    rows = db.session.execute(select(Job.status, func.count(Job.id)).group_by(Job.status))
    counts.update({status: int(n) for status, n in rows})
    return counts
