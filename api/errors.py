"""One error shape for everything: RFC 9457 problem details.

Views and services raise; this module turns every error (APIFlask's HTTPError and
validation errors, Werkzeug's HTTP exceptions, domain errors from `api.services`, and
unexpected exceptions) into `application/problem+json` with the request id. Its part of
the spec says so: every error response is a `Problem` (or `ValidationProblem`) in that
media type, and every operation may answer 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from json import JSONDecodeError
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from api.extensions import db
from api.spec_parts import Spec, add_part, operations
from schemas.common import Problem, ValidationProblem

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
VALIDATION_PROBLEM_REF = {"$ref": "#/components/schemas/ValidationProblem"}
# A 500 says this and nothing more (never the exception, never http's stock phrase).
UNEXPECTED_ERROR = "An unexpected error occurred. Quote the request_id when you report it."

# Where validation errors were found, as the client sees it.
_LOCATIONS = {"json": "json", "query": "query", "querystring": "query", "headers": "header"}
_LOCATIONS |= {"path": "path", "view_args": "path"}


class DomainError(Exception):
    """A rule of the service was broken; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class NotFoundError(DomainError):
    status = 404


class ForbiddenError(DomainError):
    status = 403


class ConflictError(DomainError):
    status = 409


class GoneError(DomainError):
    status = 410


class PreconditionFailedError(DomainError):
    status = 412


class PreconditionRequiredError(DomainError):
    status = 428


class TooManyRequestsError(DomainError):
    """A limit the service keeps itself (password guesses); `headers` carry Retry-After."""

    status = 429


class ContentTooLargeError(DomainError):
    status = 413


class UnsupportedMediaTypeError(DomainError):
    status = 415


class ServiceUnavailableError(DomainError):
    """A service the request needs (the attachment store) cannot be reached."""

    status = 503


class UnauthorizedError(DomainError):
    """A credential was refused (`api.security` adds the `WWW-Authenticate` challenge)."""

    status = 401


class InvalidFieldError(DomainError):
    """A field breaks a rule only a service can check (it needs the database or the clock):
    a 422 validation problem naming the field, like the schemas' own."""

    status = 422

    def __init__(
        self, field: str, message: str, *, location: str = "json", detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.location = location
        # The problem's `detail`, when something more specific than "see `errors`" helps.
        self.summary = detail


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build a problem-details response with the current request id."""
    if detail is None and status == 500:
        detail = UNEXPECTED_ERROR
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
        "instance": request.path,
        "request_id": g.get("request_id"),
    }
    body.update(extra)
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, location: str, prefix: str = "") -> list[dict[str, str]]:
    """Turn marshmallow's nested message dict into `[{location, field, message}]`."""
    if isinstance(messages, Mapping):
        items: list[dict[str, str]] = []
        for key, value in messages.items():
            name = str(key) if key != "_schema" else ""
            field = f"{prefix}.{name}" if prefix and name else (name or prefix)
            items.extend(flatten_messages(value, location, field))
        return items
    if isinstance(messages, list | tuple):
        if all(isinstance(item, str) for item in messages):
            return [{"location": location, "field": prefix, "message": m} for m in messages]
        items = []
        for item in messages:
            items.extend(flatten_messages(item, location, prefix))
        return items
    return [{"location": location, "field": prefix, "message": str(messages)}]


def _validation_errors(detail: Any) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for location, messages in (detail or {}).items():
        errors.extend(flatten_messages(messages, _LOCATIONS.get(location, location)))
    return errors


def _str_headers(headers: Any) -> dict[str, str]:
    return {str(name): str(value) for name, value in dict(headers or {}).items()}


def validation_problem(
    status: int,
    errors: list[dict[str, str]],
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
) -> Response:
    """A problem with `errors`: `[{location, field, message}]`."""
    return problem(
        status,
        detail or "The request is invalid: see `errors` for each problem.",
        title="Validation failed",
        headers=headers,
        errors=errors,
    )


def handle_http_error(error: HTTPError) -> Response:
    """APIFlask's error processor: HTTPError, validation and auth errors."""
    status = error.status_code
    if status == current_app.config["VALIDATION_ERROR_STATUS_CODE"] and isinstance(
        error.detail, Mapping
    ):
        errors = _validation_errors(error.detail)
        return validation_problem(status, errors, _str_headers(error.headers))
    detail = error.detail if isinstance(error.detail, str) and error.detail else error.message
    if detail == HTTPStatus(status).phrase:
        detail = None
    return problem(status, detail, headers=_str_headers(error.headers), **(error.extra_data or {}))


def handle_werkzeug_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        # Flask's own 500 for an error it could not route to `handle_unexpected_error`
        # (one raised by an after_request hook, say): the same cleanup.
        _roll_back()
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    detail = None
    data = getattr(error, "data", None)
    if status == 400 and isinstance(data, Mapping) and "messages" in data:
        # webargs' "Invalid JSON body." for a malformed or hostile body: say what is wrong
        cause = getattr(error, "exc", None)
        reason = f": {cause.msg}" if isinstance(cause, JSONDecodeError) else ""
        detail = f"The request body is not valid JSON{reason}."
    elif status == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        detail = f"The request body is larger than the limit of {limit} bytes."
    elif status == 404:
        detail = "No resource lives at this URL."
    elif status == 405:
        detail = f"{request.method} is not allowed here; see the Allow header."
    elif status == 429:
        detail = (
            f"Rate limit exceeded ({error.description}); retry after the number of "
            "seconds in Retry-After."
        )
    return problem(status, detail, headers=headers)


def handle_domain_error(error: DomainError) -> Response:
    if isinstance(error, InvalidFieldError):
        field = {"location": error.location, "field": error.field, "message": error.detail}
        return validation_problem(error.status, [field], error.headers, error.summary)
    return problem(error.status, error.detail, headers=error.headers)


def _roll_back() -> None:
    """End the failed request's transaction, so nothing half-done is committed later in
    this request (a hook, a job enqueued after the response) or left holding locks."""
    try:
        db.session.rollback()
    except Exception:  # the connection itself may be what failed
        log.warning("rollback after an error failed", exc_info=True)


def handle_unexpected_error(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_werkzeug_error(error)
    log.exception("unhandled error (request_id=%s)", g.get("request_id"))
    _roll_back()
    return problem(500, UNEXPECTED_ERROR)


def problem_response(description: str, schema: dict[str, str] = PROBLEM_REF) -> dict[str, Any]:
    """The spec's description of an error answer: a problem, as `problem` builds it."""
    return {"description": description, "content": {PROBLEM_MIMETYPE: {"schema": schema}}}


def _document(spec: Spec) -> None:
    """Every error answer in the problem media type, and a 500 on every operation."""
    for _path, _method, operation in operations(spec):
        responses = operation["responses"]
        responses.setdefault("500", problem_response("Unexpected server error."))
        for status, response in responses.items():
            content = response.get("content", {})
            if int(status) >= 400 and "application/json" in content:
                content[PROBLEM_MIMETYPE] = content.pop("application/json")


def init_app(app: APIFlask) -> None:
    # The schemas of the error answers APIFlask documents itself (401, 404, 422, ...).
    app.config.update(HTTP_ERROR_SCHEMA=Problem, VALIDATION_ERROR_SCHEMA=ValidationProblem)
    add_part(app, _document)
    app.error_processor(handle_http_error)
    app.register_error_handler(HTTPException, handle_werkzeug_error)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected_error)
