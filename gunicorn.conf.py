"""gunicorn settings for Tasks API (`make serve`, production). Every value comes from
the environment, with defaults sized for a small machine."""

import os
import shutil

_env = os.environ.get

bind = _env("GUNICORN_BIND", f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '5000')}")
# Processes times threads: requests wait on the database, so threads pay off.
workers = int(_env("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", "4"))
timeout = int(_env("GUNICORN_TIMEOUT", "30"))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long, exit 0.
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# The request line is bounded (gunicorn's largest setting): without a bound one
# unauthenticated 10 MB `GET /health/live?aaa...` burns seconds of worker CPU, as gunicorn's
# parsing cost grows quadratically with it. Longer lines get gunicorn's own HTML 414 (the
# one answer outside the API's problem format); every query the spec allows fits well
# within it, percent-encoded. 0 would mean unbounded: set that only behind a proxy that
# bounds it (nginx: large_client_header_buffers).
limit_request_line = int(_env("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
# Recycle workers now and then (0: never), jittered so they do not restart together.
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# The app writes one structured (JSON) line per request itself (api.observability),
# with the route, user and request id that gunicorn cannot see; no second access log.
accesslog = None
errorlog = "-"
loglevel = _env("GUNICORN_LOG_LEVEL", "info")
# Not preloaded: each worker builds its own app, database pool and Redis clients,
# so no connection or background thread is shared across fork().
preload_app = False


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start with an empty metrics directory (samples of dead workers are stale)."""
    directory = _env("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if _env("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
