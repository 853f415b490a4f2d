"""Is anyone running the queue? Worker heartbeats, and the jobs' health.

Each process that runs jobs (every web process with the `thread` executor, each Celery
worker) writes its row in `worker_heartbeats` every `JOB_HEARTBEAT_SECONDS`. Readiness
and `/metrics` read the newest heartbeat and the oldest due queued job: either older than
`JOBS_STALL_SECONDS` makes the jobs `degraded` ("no worker" becomes visible). The rows
live in the database, which every backend shares (a Redis or AMQP broker would not do
for both executors).
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, func, or_, select, update

from api import clock
from api.extensions import db
from api.models import Job, JobStatus, WorkerHeartbeat
from api.outage import outage


def worker_name(backend: str) -> str:
    """This process's heartbeat name: unique per host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{backend}"[:200]


def beat(name: str) -> None:
    """Write `name`'s heartbeat (commits)."""
    now = clock.now()
    updated = db.session.execute(
        update(WorkerHeartbeat).where(WorkerHeartbeat.name == name).values(beat_at=now)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        db.session.add(WorkerHeartbeat(name=name, beat_at=now))
    db.session.commit()


class Heartbeat:
    """A worker's heartbeat, written at most every `JOB_HEARTBEAT_SECONDS`."""

    def __init__(self, app: Flask, backend: str) -> None:
        self.app = app
        self.name = worker_name(backend)
        self.interval = float(app.config["JOB_HEARTBEAT_SECONDS"])
        self._last: datetime | None = None

    def beat_if_due(self) -> None:
        """Beat if the last one is older than the interval (in an app context; raises
        what the database raises)."""
        now = clock.now()
        if self._last is not None and (now - self._last).total_seconds() < self.interval:
            return
        try:
            beat(self.name)
        except Exception:
            db.session.rollback()
            raise
        self._last = now

    def run(self, stop: threading.Event) -> None:
        """Beat every interval until `stop` is set (a Celery worker's side thread); the
        database being down is logged as an outage (once, then reminders)."""
        with self.app.app_context():
            database = outage("worker heartbeat: the database")
        while True:
            try:
                with self.app.app_context():
                    self.beat_if_due()
            except Exception as error:
                database.failed(error)
            else:
                database.recovered()
            if stop.wait(self.interval):
                return

    def start_thread(self) -> threading.Event:
        stop = threading.Event()
        threading.Thread(
            target=self.run, args=(stop,), name="worker-heartbeat", daemon=True
        ).start()
        return stop


def jobs_health(needs_worker: bool = True) -> dict[str, Any]:
    """The age of the oldest due queued job and of the newest worker heartbeat; either
    past `JOBS_STALL_SECONDS` makes the status `degraded`. `needs_worker=False` (the
    inline executor runs jobs in the enqueuing process) skips the heartbeat."""
    stall = float(current_app.config["JOBS_STALL_SECONDS"])
    now = clock.now()
    due_since = func.coalesce(Job.run_after, Job.created_at)
    oldest = db.session.scalar(
        select(func.min(due_since)).where(
            Job.status == JobStatus.QUEUED.value,
            or_(Job.run_after.is_(None), Job.run_after <= now),
        )
    )
    newest = db.session.scalar(select(func.max(WorkerHeartbeat.beat_at))) if needs_worker else None
    db.session.rollback()
    waited = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    problems = []
    if waited > stall:
        problems.append(f"a queued job has waited {waited:.0f} s")
    health: dict[str, Any] = {"oldest_queued_seconds": round(waited, 1)}
    if needs_worker:
        silent = (now - newest).total_seconds() if newest is not None else None
        health["last_heartbeat_seconds"] = None if silent is None else round(silent, 1)
        if silent is None:
            problems.append("no worker has sent a heartbeat")
        elif silent > stall:
            problems.append(f"no worker heartbeat for {silent:.0f} s")
    status = {"status": "degraded", "detail": "; ".join(problems)} if problems else {"status": "ok"}
    return {**status, **health}


def purge_silent(days: int = 1) -> int:
    """Delete heartbeats of workers silent for `days` (they stopped); returns how many."""
    cutoff = clock.now() - timedelta(days=days)
    result = db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < cutoff))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
