"""Per-request plumbing: request ids, the JSON-only body rule, security headers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from apiflask import APIFlask
from flask import Response, current_app, g, request

from api.errors import problem

# The API lives under this prefix; probes (/health), the docs and the spec live outside it.
# Rate limits, ETags and their parts of the spec cover the API only.
API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """Whether `path` (a request's, or a path of the spec) is part of the API."""
    return path.startswith(API_PREFIX)


def no_store() -> None:
    """This answer carries credentials: browsers and proxies must not store it
    (`_finish` writes the cache headers)."""
    g.no_store = True


_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _require_json_body() -> Response | None:
    """415 for a body that is not JSON, on operations that declare a JSON body."""
    if request.method not in _BODY_METHODS or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "_spec", {}).get("body"):
        return None
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if has_body and not request.is_json:
        return problem(
            415,
            f"Send the body as application/json, not {request.mimetype or 'no content type'}.",
        )
    return None


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if response.status_code in (204, 304):
        response.headers.pop("Content-Type", None)
    for name, value in _STATIC_HEADERS:
        response.headers.setdefault(name, value)
    hsts = current_app.config["HSTS_SECONDS"]
    if hsts:
        response.headers.setdefault("Strict-Transport-Security", _hsts(hsts))
    # The one writer of the cache headers. Shared caches know to keep responses to
    # `Authorization` requests private, not responses to `X-API-Key` ones: say it for both.
    if g.get("no_store"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    elif request.method == "GET" and (
        request.headers.get("Authorization") or request.headers.get("X-API-Key")
    ):
        response.headers["Cache-Control"] = "private, no-cache"
    return response


def init_app(app: APIFlask) -> None:
    app.wsgi_app = LivenessProbe(  # type: ignore[method-assign]
        app.wsgi_app, app.config["HSTS_SECONDS"]
    )
    app.before_request(_assign_request_id)
    app.before_request(_require_json_body)
    app.after_request(_finish)


class LivenessProbe:
    """WSGI middleware answering `GET /health/live` before Flask sees the request.

    Liveness says only "this process answers"; orchestrators call it every few seconds on
    every worker, so it costs what a bare WSGI app costs. It sends what every response
    sends (request id, security headers); the `getLiveness` view stays for the spec and
    answers the same body if the middleware is ever left out.
    """

    PATH = "/health/live"
    BODY = b'{"checks":{},"status":"ok"}'

    def __init__(self, app: Callable[..., Iterable[bytes]], hsts_seconds: int = 0) -> None:
        self.app = app
        self.headers = list(_STATIC_HEADERS)
        if hsts_seconds:
            self.headers.append(("Strict-Transport-Security", _hsts(hsts_seconds)))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.PATH or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(self.BODY))),
                ("X-Request-ID", request_id),
                *self.headers,
            ],
        )
        return [self.BODY]


def _hsts(seconds: int) -> str:
    return f"max-age={seconds}; includeSubDomains"


_STATIC_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]
