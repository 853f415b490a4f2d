"""The app's executor, chosen by `JOBS_BACKEND`. The job kinds are registered by the
services that own them (imported by `create_app`) and by the modules in `JOBS_IMPORTS`."""

from __future__ import annotations

import importlib

from flask import Flask, request

from api.config import ConfigError
from api.jobs import Executor


def init_app(app: Flask) -> None:
    for module in app.config["JOBS_IMPORTS"]:
        importlib.import_module(module)
    backend = app.config["JOBS_BACKEND"]
    chosen: Executor
    # Imported when chosen: the Celery backend loads Celery, which the others never need.
    if backend == "inline":
        from api.jobs.executors import InlineExecutor

        chosen = InlineExecutor(app)
    elif backend == "thread":
        from api.jobs.executors import ThreadExecutor

        chosen = ThreadExecutor(app)
    elif backend == "celery":
        from api.jobs.celery_backend import CeleryExecutor

        chosen = CeleryExecutor(app)
    else:
        raise ConfigError(f"JOBS_BACKEND must be thread, celery or inline, not {backend!r}")
    app.extensions["jobs"] = chosen

    @app.before_request
    def _start_executor() -> None:
        # Lazily, in the process that serves (never in the gunicorn master, a CLI command
        # or an app that only answers the liveness probe, which touches nothing).
        if request.path != "/health/live":
            chosen.start()
