"""Reading an uploaded file from the request stream, in chunks, in either form.

- `multipart/form-data`: the `file` part (what browsers and Swagger UI send), parsed
  as it arrives with Werkzeug's streaming multipart decoder (`request.files` would first
  spool the whole body);
- any other media type: the body itself is the file, named by
  `Content-Disposition: attachment; filename="…"` (or `filename*=UTF-8''…`).

Only this operation reads a body larger than `MAX_CONTENT_LENGTH`: the limit is raised
for this request alone, to the file limit plus room for the multipart framing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from api.errors import ContentTooLargeError, DomainError, UnsupportedMediaTypeError
from api.storage import CHUNK_BYTES

FILE_FIELD = "file"
# Form fields besides the file, and part headers: small, and bounded.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_PARTS = 16
_REFUSED_TYPES = {
    "application/x-www-form-urlencoded": "A URL-encoded form cannot carry a file",
}


class MalformedBodyError(DomainError):
    status = 400


@dataclass(frozen=True)
class FileStream:
    """The client's file name (unsanitized; None if it sent none) and its bytes."""

    filename: str | None
    chunks: Iterator[bytes]
    # Where problems are reported: the file itself (`form` or `body`), and its name
    # (the `file` part, or the Content-Disposition header).
    location: str
    name_field: str
    name_location: str


def file_stream(disposition: str | None) -> FileStream:
    """The file this request uploads; `disposition` is its Content-Disposition header."""
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    mimetype = request.mimetype
    if not mimetype:
        raise UnsupportedMediaTypeError(
            "Send a Content-Type: multipart/form-data with a `file` part, or the file's own "
            "type (application/octet-stream will do) with Content-Disposition."
        )
    if mimetype in _REFUSED_TYPES or (
        mimetype.startswith("multipart/") and mimetype != "multipart/form-data"
    ):
        reason = _REFUSED_TYPES.get(mimetype, f"{mimetype} is not a file upload")
        raise UnsupportedMediaTypeError(
            f"{reason}: send multipart/form-data with a `file` part, or the raw file."
        )
    multipart = mimetype == "multipart/form-data"
    allowed = limit + (MULTIPART_OVERHEAD_BYTES if multipart else 0)
    if request.content_length is not None and request.content_length > allowed:
        raise ContentTooLargeError(
            f"The body ({request.content_length} bytes) is larger than the limit of "
            f"{limit} bytes per file (MAX_ATTACHMENT_BYTES)."
        )
    # This request only; a chunked body is cut off (413) past it while being read. One
    # byte more than allowed: Werkzeug raises on the read after the limit is reached, even
    # when the body ends exactly there (gunicorn marks every input terminated), so a file of
    # exactly the limit must leave room for the read that finds its end; `receive` holds
    # the file to the exact limit.
    request.max_content_length = allowed + 1
    if multipart:
        boundary = request.mimetype_params.get("boundary")
        if not boundary:
            raise UnsupportedMediaTypeError("multipart/form-data needs a boundary parameter.")
        return _multipart_file(request.stream, boundary)
    filename = None
    if disposition:
        _, options = parse_options_header(disposition)
        filename = options.get("filename")
    return FileStream(
        filename, _raw_chunks(request.stream), "body", "Content-Disposition", "header"
    )


def _read(stream: IO[bytes]) -> bytes:
    """One chunk of the body. Werkzeug cuts a body off past this request's
    `max_content_length` (a chunked body has no length to check beforehand)."""
    try:
        return stream.read(CHUNK_BYTES)
    except RequestEntityTooLarge:
        limit = current_app.config["MAX_ATTACHMENT_BYTES"]
        raise ContentTooLargeError(
            f"The body is larger than the limit of {limit} bytes per file (MAX_ATTACHMENT_BYTES)."
        ) from None


def _raw_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := _read(stream):
        yield chunk


def _events(stream: IO[bytes], decoder: MultipartDecoder) -> Iterator[object]:
    """The decoder's events as the body arrives (one chunk held at a time)."""
    while True:
        try:
            event = decoder.next_event()
        except ValueError as error:
            raise MalformedBodyError(f"The multipart body is malformed: {error}") from error
        if isinstance(event, NeedData):
            decoder.receive_data(_read(stream) or None)
            continue
        yield event
        if isinstance(event, Epilogue):
            return


def _multipart_file(stream: IO[bytes], boundary: str) -> FileStream:
    decoder = MultipartDecoder(
        boundary.encode("latin-1"),
        max_form_memory_size=MULTIPART_OVERHEAD_BYTES,
        max_parts=MAX_PARTS,
    )
    events = _events(stream, decoder)
    for event in events:
        if isinstance(event, File) and event.name == FILE_FIELD:
            return FileStream(
                event.filename or None, _part_data(events), "form", FILE_FIELD, "form"
            )
        if isinstance(event, Field) and event.name == FILE_FIELD:
            # A text field named `file` (no filename): not a file, as an empty one is not.
            break
    return FileStream(None, iter(()), "form", FILE_FIELD, "form")


def _part_data(events: Iterator[object]) -> Iterator[bytes]:
    """The current part's bytes; the rest of the body is read (and dropped) after it."""
    for event in events:
        if isinstance(event, Data):
            if event.data:
                yield event.data
            if not event.more_data:
                break
    for _ in events:
        pass
