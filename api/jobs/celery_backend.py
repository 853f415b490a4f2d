"""The `celery` executor: jobs run on Celery workers (`flask worker`), on a Redis or
RabbitMQ (AMQP) broker.

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
from celery.signals import worker_ready, worker_shutdown
from flask import Flask
from kombu import connection as kombu_connection

from api.config import DECLARED, ConfigError, broker_url
from api.jobs.executors import run_in_context
from api.jobs.runner import due_job_ids, requeue_orphans, schedule_recurring
from api.jobs.workers import Heartbeat
from api.outage import failed_check

log = logging.getLogger(__name__)
TASK_NAME = "tasks_api.run_job"
# kombu ships no type information.
Connection: Any = kombu_connection.Connection


def _broker(app: Flask) -> str:
    url = broker_url(app.config)
    if url is None:  # load_settings refuses it first; an app built otherwise lands here
        raise ConfigError("JOBS_BACKEND=celery needs CELERY_BROKER_URL or REDIS_URL")
    return url


def _transport_options(app: Flask) -> dict[str, Any]:
    """Broker options: Redis needs a visibility timeout (RabbitMQ redelivers a dead
    consumer's messages itself) and takes a key prefix."""
    if not _broker(app).startswith("redis"):
        return {}
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
    return transport


def passthrough(app: Flask) -> dict[str, Any]:
    """Celery's own settings from the config's undeclared CELERY_* keys
    (CELERY_WORKER_CONCURRENCY=4 sets `worker_concurrency`)."""
    return {
        key.removeprefix("CELERY_").lower(): value
        for key, value in app.config.items()
        if key.startswith("CELERY_") and key not in DECLARED
    }


def make_celery(app: Flask) -> Celery:
    """A Celery app whose one task runs a job of `app` by id."""
    celery = Celery(app.import_name, broker=_broker(app), set_as_current=False)
    celery.conf.update(
        broker_transport_options=_transport_options(app),
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
        **passthrough(app),
    )

    # Celery ships no type information: its decorator is untyped.
    @celery.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_job_task(self: Task, job_id: int) -> None:
        outcome = run_in_context(app, job_id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)

    heartbeat: dict[str, Any] = {}

    def recover(sender: Any, **kwargs: Any) -> None:
        """A starting worker starts its heartbeat, re-queues orphans and publishes every
        due queued job (one the broker lost, or one never published because the broker
        was down)."""
        if getattr(sender, "app", None) is not celery:
            return
        heartbeat["stop"] = Heartbeat(app, "celery").start_thread()
        with app.app_context():
            requeue_orphans()
            schedule_recurring()
            due = due_job_ids(limit=10_000)
        for job_id in due:
            run_job_task.apply_async(args=[job_id])

    def stop_heartbeat(sender: Any, **kwargs: Any) -> None:
        if "stop" in heartbeat:
            heartbeat.pop("stop").set()

    worker_ready.connect(recover, weak=False)
    worker_shutdown.connect(stop_heartbeat, weak=False)
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

    def checks(self) -> dict[str, dict[str, Any]]:
        """The broker, by kombu (Celery's own transport layer), whatever its scheme."""
        return {"broker": check_broker(_broker(self.app), self.app.config["REDIS_SOCKET_TIMEOUT"])}

    def needs_worker(self) -> bool:
        return True


def check_broker(url: str, timeout: float) -> dict[str, Any]:
    """Connect to the broker once (no retries, `timeout` seconds at most)."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    connection = Connection(url, connect_timeout=timeout, transport_options=options)
    try:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        if connection.transport.driver_type == "redis":
            # kombu's Redis transport connects lazily: make it talk.
            connection.default_channel.client.ping()
    except Exception as error:
        return failed_check("broker", error)
    finally:
        connection.release()
    return {"status": "ok"}
