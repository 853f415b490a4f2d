"""Attachments: files on the caller's tasks (they follow the task's ownership)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from apiflask import APIBlueprint, Schema, fields, validators
from apiflask.schemas import EmptySchema
from flask import Response, current_app, redirect, request, url_for
from marshmallow import EXCLUDE
from werkzeug.http import quote_etag

from api.conditional import ETagHeader, if_none_match, use_etag
from api.errors import DomainError, InvalidFieldError
from api.http import request_body
from api.idempotency import IdempotencyKeyHeader, answer_once, request_fingerprint
from api.limits import protected
from api.models import Attachment, Scope, Task
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult, response_links
from api.security import current_user, requires
from api.services import attachments, tasks
from api.uploads import file_stream
from schemas.attachments import AttachmentList, AttachmentOut, AttachmentQuery
from schemas.common import LocationHeader, Pattern

bp = APIBlueprint(
    "attachments",
    __name__,
    tag={"name": "Attachments", "description": "Files on your tasks: upload, list, download."},
    url_prefix="/api/v1/tasks",
)

_dump = AttachmentOut()
# OAS 3.1 describes bytes with `contentMediaType`; `format: binary` is what OAS 3.0 tools
# (Swagger UI's file picker, SDK generators) still look for.
_BYTES = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}

_UPLOAD_BODY = {
    "description": "The file, in either of two forms: `multipart/form-data` with the file "
    "in a part named `file` (what browsers and Swagger UI send), or the raw bytes as the "
    "body, of any media type (`application/octet-stream`, `image/png`, ...), named by "
    '`Content-Disposition: attachment; filename="…"`. The type is sniffed from the bytes '
    "either way.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {**_BYTES, "description": "The file, with a filename."}},
            },
        },
        "application/octet-stream": {"schema": _BYTES},
    },
}


# What a header value may hold (RFC 9110 field-value: visible characters, spaces, tabs and
# obs-text); a control character cannot be sent in one.
_HEADER_TEXT = Pattern(r"^[\t\x20-\x7e\x80-\xff]*$", error="Not a header value.")


class UploadHeaders(IdempotencyKeyHeader):
    content_disposition = fields.String(
        data_key="Content-Disposition",
        validate=[validators.Length(max=2048), _HEADER_TEXT],
        metadata={
            "description": "Raw-body uploads only: the file's name, as "
            "`attachment; filename=\"…\"` or `attachment; filename*=UTF-8''…`.",
            "examples": ['attachment; filename="notes.txt"'],
        },
    )


class RangeHeader(Schema):
    class Meta:
        unknown = EXCLUDE

    range = fields.String(
        data_key="Range",
        validate=[validators.Length(max=256), _HEADER_TEXT],
        metadata={
            "description": "One byte range (`bytes=0-1023`, `bytes=1024-`, `bytes=-512`): "
            "206 with that part. Several ranges, or a malformed header, get the whole file.",
            "examples": ["bytes=0-1023"],
        },
    )


class CreatedAttachmentHeaders(LocationHeader, ETagHeader):
    pass


# Described once in api.openapi (the headers views declare).
_CONTENT_HEADERS: dict[str, Any] = {
    name: {}
    for name in ("Content-Disposition", "Content-Length", "Accept-Ranges", "X-Content-Type-Options")
}
# `application/octet-stream` for SDK generators (which cannot read `*/*`), `*/*` because the
# answer carries the sniffed type, whatever it is.
_CONTENT = {"application/octet-stream": {"schema": _BYTES}, "*/*": {"schema": _BYTES}}
_DOWNLOAD = {
    200: {
        "description": "The bytes, with the stored (sniffed) Content-Type, as a download. "
        "`ETag` is the quoted SHA-256.",
        "content": _CONTENT,
        "headers": _CONTENT_HEADERS,
    },
    206: {
        "description": "The one byte range asked for (`Range`).",
        "content": _CONTENT,
        "headers": {**_CONTENT_HEADERS, "Content-Range": {}},
    },
    307: {
        "description": "Servers with `ATTACHMENTS_REDIRECT=true`: fetch the bytes from the "
        "short-lived URL in `Location` (the object store answers with the same headers).",
        "headers": {"Location": {}},
    },
    416: {
        "description": "The range starts past the end of the file.",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
        "headers": {"Content-Range": {}},
    },
    503: "The attachment store is unavailable.",
}
_UPLOAD_ERRORS = {
    400: "The multipart body is malformed, or the client stopped sending it.",
    409: "The task has `MAX_ATTACHMENTS_PER_TASK` attachments already, the file would take "
    "the owner past `ATTACHMENT_QUOTA_BYTES`, or a request with this Idempotency-Key is "
    "still in progress.",
    413: "The file is larger than `MAX_ATTACHMENT_BYTES`.",
    415: "Neither `multipart/form-data` (with a boundary) nor a raw file: no Content-Type, "
    "a URL-encoded form, or another multipart type.",
    422: "No `file` part, an empty file, a missing or unusable file name (only dots or "
    "slashes), or an Idempotency-Key used with another file.",
    503: "The attachment store is unavailable; nothing was stored.",
}


class RangeNotSatisfiableError(DomainError):
    status = 416


def _task(task_id: int) -> Task:
    return tasks.get_owned_task(current_user(), task_id)


def _attachment(task_id: int, attachment_id: int) -> Attachment:
    return attachments.get_attachment(_task(task_id), attachment_id)


def _created(task: Task, filename: str, upload: attachments.Upload) -> Response:
    attachment = attachments.create_attachment(task, filename, upload)
    response = cast(Response, current_app.json.response(_dump.dump(attachment)))
    response.status_code = 201
    response.headers["Location"] = url_for(
        ".get_attachment", task_id=task.id, attachment_id=attachment.id
    )
    use_etag(attachment.sha256)
    return response


@bp.post("/<int:task_id>/attachments")
@requires(Scope.TASKS_WRITE)
@protected
@bp.input(UploadHeaders, location="headers", arg_name="upload_headers")
@request_body(_UPLOAD_BODY)
@bp.output(
    AttachmentOut,
    status_code=201,
    headers=CreatedAttachmentHeaders,
    description="The new attachment; `Location` is its URL, `ETag` its quoted SHA-256.",
    links=response_links(
        "attachment",
        "attachment_id",
        "getAttachment",
        "downloadAttachment",
        "deleteAttachment",
        also=("task_id",),
    ),
)
@bp.doc(operation_id="uploadAttachment", responses=_UPLOAD_ERRORS)
def upload_attachment(task_id: int, upload_headers: dict[str, Any]) -> ViewResult:
    """Upload a file to a task.

    Send `multipart/form-data` with a `file` part, or the raw bytes with
    `Content-Disposition: attachment; filename="…"`. The file streams to storage; the
    attachment exists once its bytes are stored. Its type is sniffed from the bytes.

    Limits: `MAX_ATTACHMENT_BYTES` per file (413), `MAX_ATTACHMENTS_PER_TASK` per task and
    `ATTACHMENT_QUOTA_BYTES` per user (409). `Idempotency-Key` works as on `createTask`.
    """
    task = _task(task_id)
    received = file_stream(upload_headers.get("content_disposition"))
    if received.filename is None:
        where = "a part named `file`" if received.location == "form" else "Content-Disposition"
        raise InvalidFieldError(
            received.name_field,
            f"Send the file with its name, in {where}.",
            location=received.name_location,
        )
    filename = attachments.sanitize_filename(
        received.filename, received.name_field, received.name_location
    )
    upload = attachments.receive(received.chunks, received.location)
    try:
        fingerprint = request_fingerprint(filename, upload.sha256)
        return answer_once(
            upload_headers.get("idempotency_key"),
            lambda: fingerprint,
            lambda: _created(task, filename, upload),
        )
    finally:
        attachments.discard(upload)


@bp.get("/<int:task_id>/attachments")
@requires(Scope.TASKS_READ)
@protected
@bp.input(AttachmentQuery, location="query")
@bp.output(AttachmentList, headers=ListHeaders, description="One page of attachments.")
@bp.doc(operation_id="listAttachments")
def list_attachments(task_id: int, query_data: dict[str, Any]) -> ViewResult:
    """List a task's attachments, oldest first, paginated.

    The body has `data` and `pagination`; the `Link` and `X-Total-Count` headers say the same.
    """
    return paginated(attachments.list_attachments(_task(task_id), query_data))


@bp.get("/<int:task_id>/attachments/<int:attachment_id>")
@requires(Scope.TASKS_READ)
@protected
@bp.output(AttachmentOut)
@bp.doc(operation_id="getAttachment")
def get_attachment(task_id: int, attachment_id: int) -> ViewResult:
    """Get an attachment's metadata (name, sniffed type, size, SHA-256).

    The bytes are at `downloadAttachment`. Another user's attachment is a 404.
    """
    return _attachment(task_id, attachment_id)


@bp.get("/<int:task_id>/attachments/<int:attachment_id>/content")
@requires(Scope.TASKS_READ)
@protected
@bp.input(RangeHeader, location="headers", arg_name="ranges")
@bp.doc(operation_id="downloadAttachment", responses=_DOWNLOAD)  # type: ignore[arg-type]
def download_attachment(task_id: int, attachment_id: int, ranges: dict[str, Any]) -> Response:
    """Download an attachment's bytes.

    Always a download (`Content-Disposition: attachment`, `nosniff`), with the sniffed
    Content-Type. `ETag` is the SHA-256: `If-None-Match` gets a 304. One `Range` gets a
    206 with `Content-Range`; a range past the end, a 416.
    """
    attachment = _attachment(task_id, attachment_id)
    use_etag(attachment.sha256)  # written on the 200, 206 and 304 by `api.conditional`
    etag = quote_etag(attachment.sha256)
    if if_none_match(attachment.sha256):
        return Response(status=304)
    url = attachments.download_url(attachment)
    if url is not None:
        return redirect(url, 307)  # type: ignore[return-value]
    size = attachment.size
    start, stop, status = 0, size, 200
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": attachments.content_disposition(attachment.filename),
        # Belt and braces for the types a browser would run (HTML, SVG, XML, JavaScript),
        # should one open the file anyway: no scripts, no origin.
        "Content-Security-Policy": "sandbox",
    }
    wanted = request.range if ranges.get("range") else None
    if_range = request.headers.get("If-Range")
    if wanted is not None and len(wanted.ranges) == 1 and (if_range in (None, etag)):
        bounds = wanted.range_for_length(size)
        if bounds is None:
            raise RangeNotSatisfiableError(
                f"The range {ranges['range']!r} starts past the end of the file ({size} bytes).",
                headers={"Content-Range": f"bytes */{size}"},
            )
        start, stop = bounds
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    # HEAD: the headers only; the store is not asked for bytes nobody will send.
    body: Iterable[bytes] = (
        attachments.read(attachment, start, stop - start) if request.method == "GET" else []
    )
    response = Response(body, status=status, content_type=attachment.content_type)
    response.headers.update(headers)
    response.content_length = stop - start
    # The body streams from the store: nothing may buffer or hash it on the way out.
    response.direct_passthrough = True
    return response


@bp.delete("/<int:task_id>/attachments/<int:attachment_id>")
@requires(Scope.TASKS_WRITE)
@protected
@bp.output(EmptySchema, status_code=204, description="Deleted, with its stored bytes.")
@bp.doc(operation_id="deleteAttachment", responses={503: "The attachment store is unavailable."})
def delete_attachment(task_id: int, attachment_id: int) -> ViewResult:
    """Delete an attachment.

    The answer is 204 with no body; the stored bytes are deleted with it (unless another
    attachment has the very same bytes, which it keeps).
    """
    attachments.delete_attachment(_attachment(task_id, attachment_id))
    return "", 204
