"""Running one job: claim it, run its kind's handler, record the outcome.

Executors call `run_job` inside an app context of their own (so with a database session
of its own). A job is claimed with a compare-and-set UPDATE: only a `queued` job, or a
`running` one whose heartbeat went stale (its process died), can be claimed, and each
claim increments `attempts`. The outcome is written only if the row still carries that
attempt, so a worker that lost its claim (it stalled past the stale limit and another
took over) cannot overwrite the newer run. Redelivered, duplicated or re-polled
submissions of a finished job do nothing: a job runs to completion once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from flask import current_app, g
from prometheus_client import Counter
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.exc import OperationalError

from api import clock
from api.extensions import db
from api.jobs import KINDS, RECURRING, Output, RunAgain, TransientJobError
from api.jobs.queue import counts_by_status, enqueue, result_expiry
from api.models import Job, JobStatus

log = logging.getLogger(__name__)
# Counted where jobs finish; `/metrics` (api.observability) serves it with the rest.
JOBS_FINISHED = Counter(
    "tasks_api_jobs_finished_total", "Background jobs finished.", ["kind", "status"]
)

# Failures worth another attempt: network and mail server trouble (smtplib's errors are
# OSErrors), a database that dropped the connection, and what handlers declare transient.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    OperationalError,
    TransientJobError,
)


@dataclass(frozen=True)
class Outcome:
    """What an executor should do next about a job it submitted."""

    ran: bool
    # Submit it again after this many seconds (a retry, or another process runs it and
    # might die); None: nothing more to do.
    retry_in: float | None = None
    # The handler scheduled the next run itself (`RunAgain`): due at `retry_in`, not worth
    # waiting for in the foreground.
    scheduled: bool = False


def _stale_before() -> Any:
    return clock.now() - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])


def _claimable() -> Any:
    return or_(
        Job.status == JobStatus.QUEUED.value,
        and_(Job.status == JobStatus.RUNNING.value, Job.heartbeat_at < _stale_before()),
    )


def _claim(job_id: int) -> int | None:
    """Take the job if it is free; return the attempt number it runs as, else None."""
    now = clock.now()
    attempt = db.session.execute(
        update(Job)
        .where(Job.id == job_id, _claimable())
        .values(
            status=JobStatus.RUNNING.value,
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            run_after=None,
        )
        .returning(Job.attempts)
    ).scalar_one_or_none()
    db.session.commit()
    return attempt


def _record(job_id: int, attempt: int, **values: Any) -> bool:
    """Write the outcome of `attempt`, unless another claim has taken the job since."""
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.RUNNING.value,
                Job.attempts == attempt,
            )
            .values(**values)
        ),
    )
    db.session.commit()
    return result.rowcount == 1


@contextmanager
def _heartbeat(job_id: int, attempt: int) -> Iterator[None]:
    """Refresh the job's heartbeat from a side thread while the body runs."""
    engine = db.engine
    interval = current_app.config["JOB_HEARTBEAT_SECONDS"]
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                with engine.begin() as connection:
                    connection.execute(
                        update(Job)
                        .where(Job.id == job_id, Job.attempts == attempt)
                        .values(heartbeat_at=clock.now())
                    )
            except Exception:  # a missed beat is retried at the next interval
                log.warning("job %s: heartbeat failed", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# What a job's owner reads in `error`: stable messages, never the exception's text (which
# can quote SQL, file paths or a server's banner). The exception goes to the log, with the
# request id that the owner quotes.
RETRYING_ERROR = "A service this job needs did not answer; the job will be retried."
UNAVAILABLE_ERROR = (
    "A service this job needs did not answer; the job gave up after {attempts} attempts."
)
INTERNAL_ERROR = "The job failed with an internal error. Quote the job id when you report it."


def _describe(error: Exception, attempt: int, *, retrying: bool) -> str:
    """The client's message for a failed attempt (see the constants above)."""
    if retrying:
        return RETRYING_ERROR
    if isinstance(error, TRANSIENT_ERRORS):
        return UNAVAILABLE_ERROR.format(attempts=attempt)
    return INTERNAL_ERROR


def run_job(job_id: int) -> Outcome:
    """Claim and run one job; never raises for the job's own failure."""
    attempt = _claim(job_id)
    if attempt is None:
        return _not_claimed(job_id)
    job = db.session.get(Job, job_id)
    if job is None:  # deleted (its owner was) between the claim and now
        return Outcome(ran=False)
    # The enqueuing request's id, in every log line of the job (see api.observability).
    g.request_id, g.job_id = job.request_id, job.id
    kind, started = job.kind, time.perf_counter()
    log.info("job %s (%s) started, attempt %s", job_id, kind, attempt)
    try:
        with _heartbeat(job_id, attempt):
            output = KINDS[kind](job)
    except Exception as error:
        db.session.rollback()
        return _failed(job_id, kind, attempt, error, started)
    _finish(job_id, kind, attempt, JobStatus.SUCCEEDED, started, output=output)
    return Outcome(ran=True)


def _not_claimed(job_id: int) -> Outcome:
    status = db.session.scalar(select(Job.status).where(Job.id == job_id))
    db.session.rollback()
    if status == JobStatus.RUNNING.value:
        # Another process runs it; look again once its heartbeat could have gone stale.
        return Outcome(ran=False, retry_in=current_app.config["JOB_STALE_SECONDS"])
    return Outcome(ran=False)


def _failed(job_id: int, kind: str, attempt: int, error: Exception, started: float) -> Outcome:
    config = current_app.config
    if isinstance(error, RunAgain):
        log.info("job %s (%s) runs again in %.1f s: %s", job_id, kind, error.delay, error)
        _record(
            job_id,
            attempt,
            status=JobStatus.QUEUED.value,
            error=f"RunAgain: {error}",  # not a failure: what it did, and that it runs again
            run_after=clock.now() + timedelta(seconds=error.delay),
            heartbeat_at=None,
        )
        return Outcome(ran=True, retry_in=error.delay, scheduled=True)
    if isinstance(error, TRANSIENT_ERRORS) and attempt < config["JOB_MAX_ATTEMPTS"]:
        delay = config["JOB_RETRY_BACKOFF_SECONDS"] * 2 ** (attempt - 1)
        log.warning(
            "job %s (%s) attempt %s failed, retrying in %.1f s: %s",
            job_id,
            kind,
            attempt,
            delay,
            error,
        )
        _record(
            job_id,
            attempt,
            status=JobStatus.QUEUED.value,
            error=_describe(error, attempt, retrying=True),
            run_after=clock.now() + timedelta(seconds=delay),
            heartbeat_at=None,
        )
        return Outcome(ran=True, retry_in=delay)
    log.error("job %s (%s) failed", job_id, kind, exc_info=error)
    error_text = _describe(error, attempt, retrying=False)
    _finish(job_id, kind, attempt, JobStatus.FAILED, started, error=error_text)
    return Outcome(ran=True)


def _finish(
    job_id: int,
    kind: str,
    attempt: int,
    status: JobStatus,
    started: float,
    *,
    output: Output | None = None,
    error: str | None = None,
) -> None:
    now = clock.now()
    recorded = _record(
        job_id,
        attempt,
        status=status.value,
        finished_at=now,
        expires_at=result_expiry(now),
        error=error,
        result=output.text if output else None,
        result_media_type=output.media_type if output else None,
    )
    if not recorded:
        log.warning(
            "job %s (%s): attempt %s lost its claim; outcome dropped", job_id, kind, attempt
        )
        return
    JOBS_FINISHED.labels(kind, status.value).inc()
    log.info(
        "job %s (%s) %s",
        job_id,
        kind,
        status.value,
        extra={
            "job_id": job_id,
            "kind": kind,
            "status": status.value,
            "attempts": attempt,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "jobs": counts_by_status(),
        },
    )


def requeue_orphans() -> int:
    """Put back `running` jobs whose heartbeat went stale (their process died)."""
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(Job)
            .where(Job.status == JobStatus.RUNNING.value, Job.heartbeat_at < _stale_before())
            .values(status=JobStatus.QUEUED.value, heartbeat_at=None)
        ),
    )
    db.session.commit()
    if result.rowcount:
        log.warning("re-queued %s orphaned job(s)", result.rowcount)
    return int(result.rowcount or 0)


def schedule_recurring() -> None:
    """Queue a job of each recurring kind that has none queued or running (at start-up;
    two processes starting at once may queue two, which run harmlessly side by side)."""
    live = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    running = set(
        db.session.scalars(select(Job.kind).where(Job.kind.in_(RECURRING), Job.status.in_(live)))
    )
    missing = sorted(RECURRING - running)
    db.session.rollback()
    for kind in missing:
        enqueue(kind, {})


def due_job_ids(limit: int = 100) -> list[int]:
    """Queued jobs whose time has come, oldest first."""
    ids = list(
        db.session.scalars(
            select(Job.id)
            .where(
                Job.status == JobStatus.QUEUED.value,
                or_(Job.run_after.is_(None), Job.run_after <= clock.now()),
            )
            .order_by(Job.id)
            .limit(limit)
        )
    )
    db.session.rollback()
    return ids
