"""The `celery` executor: jobs run on Celery workers (`flask worker`), Redis as broker.

Messages carry only a job id; the row is the truth. Tasks are acknowledged late (after
they ran), so a worker killed mid-job leaves its message unacknowledged, and the broker
delivers it again after `CELERY_VISIBILITY_TIMEOUT`; the new delivery claims the job once
its heartbeat is stale (`api.jobs.runner`). A delivery that finds the job running
elsewhere checks again later, so a copy of the message outlives a worker that dies then.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.signals import worker_ready
from flask import Flask
from redis import Redis

from api.config import ConfigError
from api.jobs.executors import run_in_context
from api.jobs.runner import due_job_ids, requeue_orphans, schedule_recurring
from api.services.health import check_redis

log = logging.getLogger(__name__)
TASK_NAME = "tasks_api.run_job"


def broker_url(app: Flask) -> str:
    url = app.config["CELERY_BROKER_URL"] or app.config["REDIS_URL"]
    if not url:
        raise ConfigError("JOBS_BACKEND=celery needs CELERY_BROKER_URL or REDIS_URL")
    return str(url)


def make_celery(app: Flask) -> Celery:
    """A Celery app whose one task runs a job of `app` by id."""
    visibility = app.config["CELERY_VISIBILITY_TIMEOUT"]
    transport: dict[str, Any] = {
        "visibility_timeout": visibility,
        # Look for abandoned messages often enough for the visibility timeout to hold
        # (kombu's default sweeps about every 100 s).
        "unacked_restore_interval": max(1, min(10, visibility // 4)),
        "unacked_restore_throttle": 1,
        # A broker that stops answering fails a publish in seconds, not never.
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
    }
    if app.config["CELERY_KEY_PREFIX"]:
        transport["global_keyprefix"] = app.config["CELERY_KEY_PREFIX"]
    celery = Celery(app.import_name, broker=broker_url(app), set_as_current=False)
    celery.conf.update(
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=app.config["CELERY_QUEUE"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        # One message at a time per worker process: no job waits behind a long one.
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    )

    # Celery ships no type information: its decorator is untyped.
    @celery.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_job_task(self: Task, job_id: int) -> None:
        outcome = run_in_context(app, job_id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)

    def recover(sender: Any, **kwargs: Any) -> None:
        """A starting worker re-queues orphans and publishes every due queued job (one
        the broker lost, or one never published because the broker was down)."""
        if getattr(sender, "app", None) is not celery:
            return
        with app.app_context():
            requeue_orphans()
            schedule_recurring()
            due = due_job_ids(limit=10_000)
        for job_id in due:
            run_job_task.apply_async(args=[job_id])

    worker_ready.connect(recover, weak=False)
    app.extensions["celery"] = celery
    return celery


class CeleryExecutor:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.celery = make_celery(app)

    def submit(self, job_id: int) -> None:
        try:
            self.celery.send_task(TASK_NAME, args=[job_id])
        except Exception:
            # The row stays queued; the next worker to start publishes it again.
            log.exception("job %s stays queued: the broker did not take it", job_id)

    def start(self) -> None:
        """Workers are separate processes (`flask worker`)."""

    def shutdown(self) -> None:
        """Workers are separate processes (`flask worker`)."""

    def check(self) -> dict[str, Any]:
        timeout = self.app.config["REDIS_SOCKET_TIMEOUT"]
        client = Redis.from_url(
            broker_url(self.app), socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            return check_redis(client, "jobs broker")
        finally:
            client.close()
