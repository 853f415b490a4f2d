"""Conditional requests: ETags, If-None-Match → 304, If-Match → 412 / 428.

A task's ETag comes from its `version`, so a client's `If-Match` is compared without
reading anything but the row it is about to change; the UPDATE itself compares the
version again (SQLAlchemy `version_id_col`), so a concurrent change cannot be lost.
Other GET answers (lists) get an ETag from their body.
"""

from __future__ import annotations

from apiflask import APIFlask, Schema, fields
from flask import Response, current_app, request
from marshmallow import EXCLUDE
from werkzeug.http import parse_etags, quote_etag

from api.errors import PreconditionFailedError, PreconditionRequiredError
from api.models import Task


class IfMatchHeader(Schema):
    class Meta:
        unknown = EXCLUDE  # other request headers are none of our business

    if_match = fields.String(
        data_key="If-Match",
        metadata={
            "description": "The task's ETag from your last read; the change is refused "
            "with 412 if the task changed since (428 if the server requires it)."
        },
    )


class ETagHeader(Schema):
    etag = fields.String(
        data_key="ETag",
        required=True,
        metadata={"description": "Version of this representation; send it as If-Match."},
    )


def task_etag(task: Task) -> str:
    return quote_etag(f"{task.id}.{task.version}")


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


def _conditional_get(response: Response) -> Response:
    """ETag every successful API GET and answer a matching If-None-Match with 304."""
    if (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and request.path.startswith("/api/")
        and response.mimetype == "application/json"
    ):
        if "ETag" not in response.headers:
            response.add_etag()
        response.make_conditional(request)
    return response


def init_app(app: APIFlask) -> None:
    app.after_request(_conditional_get)
