"""Background jobs. This module is their registry: job kinds (`job_kind`, registered by
the services that own them), what a handler returns or raises, and the current executor.
It imports no service: services import it.

A job is a row in `jobs` (see `api.models.Job`); `api.jobs.queue.enqueue` writes it and
hands its id to the app's executor, chosen by `JOBS_BACKEND` (`api.jobs.backends`):

- `thread` (default): a thread pool in each web process, which also polls the table for
  queued jobs (retries, jobs enqueued elsewhere) and re-queues orphans (`running` with a
  stale heartbeat: their process died). Needs no service.
- `celery`: Celery workers (`flask worker`) on a Redis or RabbitMQ broker.
- `inline`: in the enqueuing process, once the response is sent (the tests' default).

Every executor runs a job through `api.jobs.runner.run_job`, which claims it with a
compare-and-set UPDATE: however often an id is submitted or redelivered, one claim wins,
and a finished job never runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app

from api.models import Job


@dataclass(frozen=True)
class Output:
    """What a job produced: the text `getJobResult` serves, and its media type."""

    text: str
    media_type: str


Handler = Callable[[Job], Output | None]
KINDS: dict[str, Handler] = {}
# Kinds that run forever on a schedule: one such job is kept queued (see `RunAgain`).
RECURRING: set[str] = set()


def job_kind(name: str, *, recurring: bool = False) -> Callable[[Handler], Handler]:
    """Register `handler` as the code that runs jobs of kind `name`. A `recurring` kind's
    handler ends each run with `RunAgain`; the executors keep one such job queued."""

    def register(handler: Handler) -> Handler:
        KINDS[name] = handler
        if recurring:
            RECURRING.add(name)
        return handler

    return register


class TransientJobError(Exception):
    """A failure worth retrying (a service was briefly unavailable)."""


class RunAgain(Exception):  # noqa: N818 - an instruction, not an error
    """Raised by a handler: put the job back in the queue, due in `delay` seconds.

    For work with a schedule of its own (a webhook's backoff over a day, a periodic purge),
    unlike a transient failure's short retries: it does not count against JOB_MAX_ATTEMPTS,
    the thread executor's poller and Celery's countdown run it when due, and the inline
    executor leaves it queued (nothing waits for it).
    """

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay


class Executor(Protocol):
    """What the rest of the app needs from a backend."""

    def submit(self, job_id: int) -> None:
        """Run the (committed, queued) job soon; never raises for a broker outage."""

    def start(self) -> None:
        """Start background machinery, if any (idempotent)."""

    def shutdown(self) -> None:
        """Stop background machinery, letting running jobs finish."""

    def checks(self) -> dict[str, dict[str, Any]]:
        """Readiness checks of the backend's own machinery, by name: each
        `{"status": "ok"}` or `{"status": "fail", "detail": ...}`."""

    def needs_worker(self) -> bool:
        """Whether jobs wait for a worker's heartbeat (not for `inline`)."""


def executor() -> Executor:
    """The current app's executor."""
    found: Executor = current_app.extensions["jobs"]
    return found
