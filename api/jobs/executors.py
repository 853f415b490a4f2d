"""In-process executors: `thread` (the default) and `inline` (the tests')."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from flask import Flask

from api.jobs.later import after_response
from api.jobs.runner import Outcome, due_job_ids, requeue_orphans, run_job, schedule_recurring
from api.jobs.workers import Heartbeat
from api.outage import outage

log = logging.getLogger(__name__)


def run_in_context(app: Flask, job_id: int) -> Outcome:
    """Run a job in an app context (and so a database session) of its own; a failure of
    the machinery itself (database down) is logged, never raised into the executor."""
    try:
        with app.app_context():
            return run_job(job_id)
    except Exception:
        log.exception("job %s could not be run", job_id)
        return Outcome(ran=False)


class InlineExecutor:
    """Runs a job in this process once the response is sent (at once outside a request),
    retries included. No threads: for tests and one-off scripts."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, job_id: int) -> None:
        after_response(lambda: self._run(job_id), f"job {job_id}")

    def _run(self, job_id: int) -> None:
        outcome = run_in_context(self.app, job_id)
        while outcome.ran and outcome.retry_in is not None and not outcome.scheduled:
            time.sleep(outcome.retry_in)
            outcome = run_in_context(self.app, job_id)

    def start(self) -> None:
        """Nothing runs in the background."""

    def shutdown(self) -> None:
        """Nothing runs in the background."""

    def checks(self) -> dict[str, dict[str, Any]]:
        return {}

    def needs_worker(self) -> bool:
        return False


class ThreadExecutor:
    """A thread pool in this process, plus a poller thread that picks up queued jobs (due
    retries, jobs enqueued by other processes or before a restart) and re-queues
    orphans. Several processes may poll one table: the claim lets one of them run a job.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        # Set for good by `shutdown`: a job submitted meanwhile (by the poller itself, say
        # a recurring job it schedules) must not start a new pool and poller behind it.
        self._closed = False
        self._in_flight: set[int] = set()
        self.heartbeat = Heartbeat(app, "thread")

    def start(self) -> None:
        with self._lock:
            if self._pool is not None or self._closed:
                return
            # The first heartbeat before this request goes on, so that readiness never
            # finds a running poller without one; a failure is the poller's to report.
            with suppress(Exception):
                self.heartbeat.beat_if_due()
            self._pool = ThreadPoolExecutor(
                max_workers=self.app.config["JOBS_THREADS"], thread_name_prefix="jobs"
            )
            self._poller = threading.Thread(target=self._poll, name="jobs-poller", daemon=True)
            self._poller.start()

    def submit(self, job_id: int) -> None:
        self.start()
        with self._lock:
            if job_id in self._in_flight or self._pool is None:
                return
            self._in_flight.add(job_id)
            self._pool.submit(self._run, job_id)

    def _run(self, job_id: int) -> None:
        # A retry goes back to the table as a queued row due later: the poller submits it.
        try:
            run_in_context(self.app, job_id)
        finally:
            with self._lock:
                self._in_flight.discard(job_id)

    def _poll(self) -> None:
        interval = self.app.config["JOBS_POLL_SECONDS"]
        with self.app.app_context():
            database = outage("jobs poller: the jobs table")
        scheduled = False
        while True:
            try:
                with self.app.app_context():
                    self.heartbeat.beat_if_due()
                    if not scheduled:
                        # Once per process, as soon as the database answers.
                        schedule_recurring()
                        scheduled = True
                    requeue_orphans()
                    due = due_job_ids()
            except Exception as error:
                database.failed(error)
                due = []
            else:
                database.recovered()
            for job_id in due:
                if self._stop.is_set():
                    return
                self.submit(job_id)
            if self._stop.wait(interval):
                return

    def shutdown(self) -> None:
        """Stop polling; wait for the running jobs to finish."""
        with self._lock:
            pool, poller = self._pool, self._poller
            self._pool = self._poller = None
            self._closed = True
            self._stop.set()
        if poller is not None:
            poller.join()
        if pool is not None:
            pool.shutdown(wait=True)

    def checks(self) -> dict[str, dict[str, Any]]:
        poller = self._poller
        if poller is not None and not poller.is_alive():
            return {"jobs poller": {"status": "fail", "detail": "the poller thread has stopped"}}
        return {}

    def needs_worker(self) -> bool:
        return True
