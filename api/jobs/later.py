"""Work that must not hold up a response: it runs once the response has been sent.

The `inline` job executor (`api.jobs.executors`, the tests' default) runs jobs through it;
real work goes through jobs (`api.jobs.queue.enqueue`), which other executors run on
threads or workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, after_this_request, current_app, has_request_context

log = logging.getLogger(__name__)


def after_response(work: Callable[[], None], description: str) -> None:
    """Run `work` after this request's response is sent (at once outside a request).

    It runs in an app context of its own. A failure is logged as `description` (so keep
    secrets out of it) and never reaches the client, whose response is already gone.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not has_request_context():
        _run(app, work, description)
        return

    @after_this_request
    def schedule(response: Response) -> Response:
        # WSGI servers call close() after the last byte is written: the client has its
        # answer before the work starts.
        response.call_on_close(lambda: _run(app, work, description))
        return response


def _run(app: Flask, work: Callable[[], None], description: str) -> None:
    with app.app_context():
        try:
            work()
        except Exception:
            log.exception("%s failed", description)
