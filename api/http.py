"""Per-request plumbing: request ids, the JSON-only body rule, security headers.

Its part of the spec: `X-Request-ID` on every response, and on every operation that
takes a body, the body's 400, 413 and 415.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Response, current_app, g, request

from api.errors import problem, problem_response
from api.spec_parts import (
    Spec,
    add_part,
    add_response_part,
    describe_header,
    header_ref,
    operations,
)


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


# Operations whose body may be left out (login also takes HTTP Basic credentials).
OPTIONAL_BODY_OPERATIONS = frozenset({"login"})
_BODY_ERRORS = {
    "400": "The body is not valid JSON.",
    "413": "The body is larger than the server accepts.",
    "415": "The body is not `application/json`.",
}
V = TypeVar("V", bound=Callable[..., Any])


def request_body(body: dict[str, Any]) -> Callable[[V], V]:
    """Document the request body of a view that reads it itself (a file upload: one
    operation, two media types, which `@input` cannot describe).

    Carried in the view's `_spec` extensions, which APIFlask copies into the operation
    as they are (as `api.security.requires` does for the scopes); `_document` then
    treats it like any other body. The view's own 400/413/415 answers are documented by
    the view (`_document` only fills in those left out).
    """

    def decorator(view: V) -> V:
        spec: dict[str, Any] = view.__dict__.setdefault("_spec", {})
        spec["extensions"] = {**(spec.get("extensions") or {}), "requestBody": body}
        return view

    return decorator


def _document(spec: Spec) -> None:
    describe_header(
        spec,
        "X-Request-ID",
        "The client's request id if it sent a sane one, else a generated one.",
        {"type": "string", "examples": ["9f1c2e7a4b3d4f0e8a6b5c4d3e2f1a0b"]},
    )
    for _path, _method, operation in operations(spec):
        body = operation.get("requestBody")
        if body is not None:
            body["required"] = operation.get("operationId") not in OPTIONAL_BODY_OPERATIONS
            for status, description in _BODY_ERRORS.items():
                operation["responses"].setdefault(status, problem_response(description))


def _document_request_id(path: str, response: dict[str, Any]) -> None:
    response.setdefault("headers", {})["X-Request-ID"] = header_ref("X-Request-ID")


def init_app(app: APIFlask) -> None:
    add_part(app, _document)
    add_response_part(app, _document_request_id)
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
