"""Logs and metrics: one JSON line per request, Prometheus metrics at /metrics.

Every log record carries the request id (when there is one). `LOG_FORMAT=json` (the
default outside development) writes one JSON object per line; `text` is for people.
Metrics are off unless `METRICS_ENABLED`; when on they need `METRICS_TOKEN` as a bearer
token if one is set. Under gunicorn with `PROMETHEUS_MULTIPROC_DIR` set, every worker
writes its samples there and /metrics adds them up.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time

from apiflask import APIFlask
from flask import Blueprint, Response, current_app, g, has_app_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.json import JsonFormatter

from api.errors import problem
from api.principal import current_principal

access_log = logging.getLogger("api.access")
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client writes a file there for each metric as it is created (below, for
    # the metrics without labels): a process gunicorn did not start (a CLI command, a
    # Celery worker) must not fail at import because nothing created the directory.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
_HANDLER_NAME = "tasks-api"

REQUESTS = Counter(
    "tasks_api_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "tasks_api_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Read from the jobs table at each scrape: the same number from every process.
JOBS = Gauge(
    "tasks_api_jobs", "Background jobs by status.", ["status"], multiprocess_mode="mostrecent"
)
JOBS_OLDEST_QUEUED = Gauge(
    "tasks_api_jobs_oldest_queued_seconds",
    "How long the oldest due queued job has waited.",
    multiprocess_mode="mostrecent",
)
JOBS_LAST_HEARTBEAT = Gauge(
    "tasks_api_jobs_last_heartbeat_seconds",
    "Age of the newest worker heartbeat (+Inf: none ever).",
    multiprocess_mode="mostrecent",
)
JOBS_DEGRADED = Gauge(
    "tasks_api_jobs_degraded",
    "1 when a queued job waited, or no worker sent a heartbeat, for JOBS_STALL_SECONDS.",
    multiprocess_mode="mostrecent",
)


class RequestContextFilter(logging.Filter):
    """Add the request id to every record logged while a request is served, or a job runs
    (a job's app context carries the id of the request that enqueued it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_app_context() else None
        return True


def configure_logging(app: APIFlask) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s")
        )
    handler.addFilter(RequestContextFilter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace ours, keep others' (pytest's): create_app may run many times in a process.
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _start_timer() -> None:
    g.started_at = time.perf_counter()


def _route() -> str:
    # The URL rule, not the path: /api/v1/tasks/<int:task_id>, so ids do not explode
    # the metrics' cardinality. Unmatched URLs are grouped.
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def _access_line(status: int) -> None:
    """The request's one access-log line (and its metrics)."""
    g.access_logged = True
    elapsed = time.perf_counter() - g.get("started_at", time.perf_counter())
    route = _route()
    principal = current_principal()
    # The message reads on its own in text logs; JSON lines carry the same as fields.
    access_log.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        status,
        elapsed * 1000,
        extra={
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": principal.user_id,
            "principal": principal.kind.value,
            "client_ip": request.remote_addr,
        },
    )
    if current_app.config["METRICS_ENABLED"]:
        REQUESTS.labels(request.method, route, str(status)).inc()
        LATENCY.labels(request.method, route).observe(elapsed)


def _record(response: Response) -> Response:
    _access_line(response.status_code)
    return response


def _record_if_missed(error: BaseException | None) -> None:
    """The line is never lost: when an after_request hook (or an error handler) failed
    before `_record` ran, Flask answered 500, and that is what the line says."""
    if not g.get("access_logged"):
        try:
            _access_line(500)
        except Exception:  # logging must never turn a served request into a crash
            logging.getLogger(__name__).exception("could not write the access line")


metrics_bp = Blueprint("metrics", __name__)


@metrics_bp.get("/metrics")
def metrics() -> Response:
    token = current_app.config["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(sent.encode(), token.encode()):
            return problem(
                401,
                "Metrics need the METRICS_TOKEN as a bearer token.",
                headers={"WWW-Authenticate": 'Bearer realm="tasks-api-metrics"'},
            )
    from api.jobs import executor
    from api.jobs.queue import counts_by_status
    from api.jobs.workers import jobs_health

    for status, count in counts_by_status().items():
        JOBS.labels(status).set(count)
    health = jobs_health(needs_worker=executor().needs_worker())
    JOBS_OLDEST_QUEUED.set(health["oldest_queued_seconds"])
    silent = health.get("last_heartbeat_seconds", 0.0)
    JOBS_LAST_HEARTBEAT.set(float("inf") if silent is None else silent)
    JOBS_DEGRADED.set(1 if health["status"] == "degraded" else 0)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: APIFlask) -> None:
    configure_logging(app)
    app.before_request(_start_timer)
    app.after_request(_record)
    app.teardown_request(_record_if_missed)
    if app.config["METRICS_ENABLED"]:
        app.register_blueprint(metrics_bp)
