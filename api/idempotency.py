"""`Idempotency-Key` on POST (IETF httpapi draft semantics, Stripe's practice).

A retry with the same key and body replays the first answer byte for byte, with
`Idempotency-Replayed: true`; the same key with another body is a 422; a retry while
the first request still runs is a 409. Keys are per user and kept
`IDEMPOTENCY_TTL_SECONDS` (24 h). Only successful answers are kept: after an error the
key is released and a retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from apiflask import APIFlask, Schema, fields, validators
from flask import Response, current_app, g, request
from marshmallow import EXCLUDE
from werkzeug.http import quote_etag, unquote_etag

from api.conditional import use_etag
from api.errors import (
    PROBLEM_REF,
    VALIDATION_PROBLEM_REF,
    ConflictError,
    InvalidFieldError,
    problem_response,
)
from api.security import current_user
from api.services import idempotency
from api.spec_parts import Spec, add_part, describe_header, header_ref, operations
from schemas.common import Pattern

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
# Headers of the first answer that a replay repeats, and its entity tag (declared again
# on a replay: `api.conditional` writes the header).
_REPLAYED_HEADERS = ("Content-Type", "Location")


class IdempotencyKeyHeader(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key=HEADER,
        validate=[
            validators.Length(min=1, max=255),
            Pattern(r"^[!-~]+$", error="Visible ASCII characters only, no spaces."),
        ],
        metadata={
            "description": "A unique value (e.g. a UUID) per intended operation, of visible "
            "ASCII characters. A retry with the same key and body replays the first answer; "
            "the same key with another body is a 422. Kept 24 h.",
            "examples": ["6f1c2f5e-3c4b-4d39-9c53-2f1d7d0f5a11"],
        },
    )


class IdempotencyKeyReusedError(InvalidFieldError):
    """The key came with another request: a validation problem naming the header."""

    def __init__(self) -> None:
        message = "This Idempotency-Key was used with a different request; use a new key."
        super().__init__(HEADER, message, location="header", detail=message)


def _fingerprint() -> str:
    raw = request.get_data()
    try:  # the same JSON spelled with other spacing or key order is the same request
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def idempotent(view: F) -> F:
    """Make a POST view honour `Idempotency-Key` (place it above `@output`)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        return answer_once(key, _fingerprint, lambda: view(*args, **kwargs))

    return wrapper  # type: ignore[return-value]


def answer_once(key: str | None, fingerprint: Callable[[], str], answer: Callable[[], Any]) -> Any:
    """`answer()`, or the replay of the first answer to `key` (None: no key, just answer).

    `fingerprint` names the request; views whose body is not JSON (a file upload, which
    cannot be read twice) pass their own, made from what they received.
    """
    if key is None:
        return answer()
    user_id = current_user().id
    try:
        replay = idempotency.claim(user_id, key, fingerprint())
    except idempotency.KeyReusedError:
        raise IdempotencyKeyReusedError from None
    except idempotency.KeyInFlightError:
        raise ConflictError(
            "A request with this Idempotency-Key is still in progress; retry later."
        ) from None
    if replay is not None:
        headers = dict(replay.headers)
        etag = headers.pop("ETag", None)
        if etag is not None:  # declared again: `api.conditional` writes the header
            use_etag(unquote_etag(etag)[0])
        response = Response(replay.body, status=replay.status_code, headers=headers)
        response.headers["Idempotency-Replayed"] = "true"
        return response
    try:
        response = current_app.make_response(answer())
    except BaseException:
        idempotency.release(user_id, key)
        raise
    if 200 <= response.status_code < 300:
        headers = {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}
        if g.get("etag") is not None:
            headers["ETag"] = quote_etag(g.etag)
        replayed = idempotency.Replay(response.status_code, headers, response.get_data())
        idempotency.finish(user_id, key, replayed)
    else:
        idempotency.release(user_id, key)
    return response


def request_fingerprint(*parts: str) -> str:
    """A fingerprint of this request's method and path and `parts` (what a view read)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update("\n".join(parts).encode())
    return digest.hexdigest()


# What `answer_once` adds to an operation that takes the key, in the spec: (schema, text).
_KEY_ANSWERS = {
    "409": (PROBLEM_REF, "A request with this Idempotency-Key is still in progress."),
    "422": (VALIDATION_PROBLEM_REF, "The Idempotency-Key was used with a different request."),
}


def _document(spec: Spec) -> None:
    """What `answer_once` does, in the spec, on every operation that takes the key: a
    replay says so (`Idempotency-Replayed`), a key still running is a 409, a key reused
    with another request a 422."""
    describe_header(
        spec,
        "Idempotency-Replayed",
        "`true` when this answer replays the first answer to the request's Idempotency-Key "
        "(nothing was done again); absent otherwise.",
        {"type": "string", "enum": ["true"], "examples": ["true"]},
        required=False,
    )
    for _path, _method, operation in operations(spec):
        parameters = operation.get("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            continue
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith("2"):
                headers = response.setdefault("headers", {})
                headers["Idempotency-Replayed"] = header_ref("Idempotency-Replayed")
        for status, (schema, text) in _KEY_ANSWERS.items():
            if status not in responses:
                responses[status] = problem_response(text, schema=schema)
            elif HEADER not in responses[status]["description"]:
                described = responses[status]["description"].rstrip(".")
                responses[status]["description"] = f"{described}. {text}"


def init_app(app: APIFlask) -> None:
    add_part(app, _document)
