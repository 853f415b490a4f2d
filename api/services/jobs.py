"""Job rules for their owners: ownership, listing, results, housekeeping. Enqueueing is
`api.jobs.queue`'s."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from api import clock
from api.errors import ConflictError, GoneError, NotFoundError
from api.extensions import db
from api.models import MAX_ID, Job, JobStatus, User
from api.pagination import Page
from api.services.paging import Listing, fetch_page


def get_owned_job(user: User, job_id: int) -> Job:
    """The user's own job; anyone else's (admins' too) is a 404, like a missing one."""
    job = db.session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.owner_id != user.id:
        raise NotFoundError(f"Job {job_id} does not exist.")
    return job


JOBS = Listing(
    "jobs",
    Job,
    filters={
        "owner_id": lambda value: Job.owner_id == value("owner_id"),
        "status": lambda value: Job.status == value("status"),
    },
)


def list_jobs(user: User, query: dict[str, Any]) -> Page:
    """`user`'s jobs, newest first."""
    where = {"owner_id": user.id} | ({"status": query["status"]} if "status" in query else {})
    return fetch_page(JOBS, query, (("created_at", True), ("id", True)), where)


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
