"""gunicorn settings for Tasks API (`make serve`, production, the image). Every value
comes from the environment; names, kinds and defaults are declared in api/config.py."""

import os
import shutil

from api.config import ConfigError, exit_with, load_settings, read_dotenv, serving_setting

# The app's settings are checked here, in the master, before any worker starts: a
# problem is printed once, as one short message, and gunicorn exits (EX_CONFIG), instead
# of every worker failing to boot with a traceback.
read_dotenv()
try:
    load_settings()
    _setting = serving_setting
    bind = _setting("GUNICORN_BIND") or f"{_setting('HOST')}:{_setting('PORT')}"
    # Processes times threads: requests wait on the database, so threads pay off.
    workers = _setting("WEB_CONCURRENCY")
    threads = _setting("GUNICORN_THREADS")
    timeout = _setting("GUNICORN_TIMEOUT")
    # SIGTERM: stop accepting, let in-flight requests finish for up to this long, exit 0.
    graceful_timeout = _setting("GUNICORN_GRACEFUL_TIMEOUT")
    # The request line is bounded (gunicorn's largest setting): without a bound one
    # unauthenticated 10 MB `GET /health/live?aaa...` burns seconds of worker CPU, as
    # gunicorn's parsing cost grows quadratically with it. Longer lines get gunicorn's own
    # HTML 414 (the one answer outside the API's problem format); every query the spec
    # allows fits well within it, percent-encoded. 0 would mean unbounded: set that only
    # behind a proxy that bounds it (nginx: large_client_header_buffers).
    limit_request_line = _setting("GUNICORN_LIMIT_REQUEST_LINE")
    # Recycle workers now and then (0: never), jittered so they do not restart together.
    max_requests = _setting("GUNICORN_MAX_REQUESTS")
    loglevel = _setting("GUNICORN_LOG_LEVEL")
except ConfigError as error:
    exit_with(error)

worker_class = "gthread"
# No control socket (gunicorn 24+ opens one in $HOME for `gunicornc`, unused here): the
# image's user has no home, and servers on one host would share the one path.
control_socket_disable = True
keepalive = 5
max_requests_jitter = max_requests // 10
# The app writes one line per request itself (api.observability), with the route, user
# and request id that gunicorn cannot see; no second access log.
accesslog = None
errorlog = "-"
# Not preloaded: each worker builds its own app, database pool and Redis clients,
# so no connection or background thread is shared across fork().
preload_app = False


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start with an empty metrics directory: the samples of a previous run's workers
    (dead pids) would otherwise be added to this run's forever. The directory must
    belong to this server alone."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
