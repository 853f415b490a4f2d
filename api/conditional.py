"""Conditional requests: ETags, If-None-Match → 304, If-Match → 412 / 428.

A task's ETag comes from its `version`, so a client's `If-Match` is compared without
reading anything but the row it is about to change; the UPDATE itself compares the
version again (SQLAlchemy `version_id_col`), so a concurrent change cannot be lost.
Other GET answers (lists) get an ETag from their body.

Both request headers must be what RFC 9110 says they are (`*`, or a list of entity tags,
at most `MAX_ETAGS_LENGTH` characters); anything else is a 422 naming the header, as the
spec's `pattern` says. A well-formed tag that matches nothing is a 412 (If-Match) or a
full answer (If-None-Match).

Its part of the spec (`_document`): the ETag header, and on every API GET, If-None-Match,
the 304 and the 422 of a malformed If-None-Match.
"""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask, Schema, fields, validators
from flask import Response, current_app, g, request
from marshmallow import EXCLUDE
from werkzeug.http import parse_etags

from api.errors import (
    VALIDATION_PROBLEM_REF,
    InvalidFieldError,
    PreconditionFailedError,
    PreconditionRequiredError,
    flatten_messages,
    problem_response,
    validation_problem,
)
from api.models import Task
from api.paths import is_api_path
from api.spec_parts import Spec, add_part, describe_header, header_ref, operations
from schemas.common import Pattern

# RFC 9110 section 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E
# (obs-text left out); If-Match and If-None-Match take "*" or a comma-separated list.
_ENTITY_TAG = r'(W/)?"[!#-~]*"'
ETAGS_PATTERN = rf"^(\*|{_ENTITY_TAG}([ \t]*,[ \t]*{_ENTITY_TAG})*)$"
MAX_ETAGS_LENGTH = 1024
ETAGS_ERROR = '`*` or a comma-separated list of entity tags (`"..."` or `W/"..."`).'


def etags_field(description: str, data_key: str) -> fields.String:
    """An If-Match / If-None-Match header, validated as the spec states it."""
    return fields.String(
        data_key=data_key,
        validate=[
            validators.Length(min=1, max=MAX_ETAGS_LENGTH),
            Pattern(ETAGS_PATTERN, error=ETAGS_ERROR),
        ],
        metadata={"description": description, "examples": ['"42.3"']},
    )


class IfMatchHeader(Schema):
    class Meta:
        unknown = EXCLUDE  # other request headers are none of our business

    if_match = etags_field(
        "The task's ETag from your last read; the change is refused with 412 if the task "
        "changed since (428 if the server requires it).",
        data_key="If-Match",
    )


class IfNoneMatchHeader(Schema):
    class Meta:
        unknown = EXCLUDE

    if_none_match = etags_field(
        "An ETag from an earlier answer: 304 with no body if it still matches.",
        data_key="If-None-Match",
    )


_if_none_match = IfNoneMatchHeader()


class ETagHeader(Schema):
    """A response's `ETag` (the spec describes it once: `_document`)."""

    etag = fields.String(data_key="ETag", required=True)


def task_etag(task: Task) -> str:
    """A task's entity tag (unquoted): its id and version."""
    return f"{task.id}.{task.version}"


def use_etag(value: str) -> None:
    """Make `value` (unquoted) this response's entity tag. Views, the response cache and
    idempotent replays declare it; `_write_etag` alone writes the header."""
    g.etag = value


def check_if_match(task: Task, header: str | None) -> None:
    """Refuse a change to `task` unless `header` (If-Match) names its current version."""
    if header is None:
        if current_app.config["REQUIRE_IF_MATCH"]:
            raise PreconditionRequiredError(
                "Send If-Match with the task's ETag: this server refuses blind updates."
            )
        return
    etags = parse_etags(header)
    if not (etags.star_tag or etags.contains(f"{task.id}.{task.version}")):
        raise PreconditionFailedError(
            f"Task {task.id} has changed (now at version {task.version}); "
            "fetch it again and retry with the new ETag."
        )


def if_none_match(etag: str) -> bool:
    """Whether this request's If-None-Match names `etag` (a view that streams its body
    answers the 304 itself; `_write_etag` handles bodies it can hash)."""
    errors = _if_none_match.validate(dict(request.headers))
    if errors:
        [message] = flatten_messages(errors, "header")[:1]
        raise InvalidFieldError("If-None-Match", message["message"], location="header")
    return request.if_none_match.contains_weak(etag)


def _write_etag(response: Response) -> Response:
    """The one writer of `ETag`: the entity tag the request declared (`use_etag`) on any
    successful answer, else, on a successful API GET, one from the body. A GET whose
    If-None-Match matches is answered 304.

    A malformed If-None-Match is a 422, checked here, once the answer is known to be a
    200: authentication and a missing resource speak first, as for any other input.
    """
    declared = g.get("etag")
    if declared is not None and (200 <= response.status_code < 300 or response.status_code == 304):
        response.set_etag(declared)
    if (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and is_api_path(request.path)
        and not response.direct_passthrough  # a body we can hash (JSON, a CSV result)
    ):
        if "If-None-Match" in request.headers:
            errors = _if_none_match.validate(dict(request.headers))
            if errors:
                return validation_problem(422, flatten_messages(errors, "header"))
        if declared is None:
            response.add_etag()
        response.make_conditional(_without_write_preconditions(request.environ))
    return response


def _without_write_preconditions(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's environ without the write preconditions (If-Match and
    If-Unmodified-Since), which the spec declares on PUT, PATCH and DELETE only: Werkzeug
    would answer a GET that sends one with a bare 412 carrying the JSON body, neither a
    documented answer nor a problem (the never-5xx suite found it). A GET honours
    If-None-Match alone."""
    return {
        key: value
        for key, value in environ.items()
        if key not in ("HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")
    }


_IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "An ETag from an earlier answer: 304 with no body if it still matches.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ETAGS_LENGTH,
        "pattern": ETAGS_PATTERN,
        "examples": ['"42.3"'],
    },
}


def _document(spec: Spec) -> None:
    """What `_write_etag` does, in the spec: every API GET's 200 carries an ETag and
    honours If-None-Match (304, or 422 when the header is malformed)."""
    describe_header(
        spec,
        "ETag",
        "Version of this representation: send it as If-None-Match to get a 304 while it is "
        "current; a task's, as If-Match to change the task only if it is.",
        {"type": "string", "examples": ['"42.3"']},
    )
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        if method != "get" or not is_api_path(path) or "200" not in responses:
            continue
        operation["parameters"].append(_IF_NONE_MATCH)
        responses["200"].setdefault("headers", {})["ETag"] = header_ref("ETag")
        responses["304"] = {"description": "Not modified: your copy (If-None-Match) is current."}
        responses.setdefault(
            "422",
            problem_response(
                "A header is malformed (If-None-Match).", schema=VALIDATION_PROBLEM_REF
            ),
        )


def init_app(app: APIFlask) -> None:
    add_part(app, _document)
    app.after_request(_write_etag)
