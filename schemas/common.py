"""Shapes shared by every resource: problems, pagination, strict fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from apiflask import Schema, fields, validators
from marshmallow import RAISE, ValidationError, validates_schema

from api.models import MAX_ID

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100

# Blank means these six characters only. `str.strip()` alone also strips \x1c-\x1f and
# more, which JSON Schema's `\s` does not: validation, the spec and normalisation must agree.
BLANK = " \t\n\r\f\v"

# A moment in the examples of every date-time field (the docs and mock servers show it).
EXAMPLE_TIME = "2026-11-30T09:15:00Z"


class Pattern(validators.Validator):
    """A regular expression that means the same here and as the spec's `pattern`.

    JSON Schema searches with ECMA-262 rules, where `$` is the end of the string; Python's
    `$` also matches before a final newline. Patterns here are anchored (`^...$`) and
    checked with `fullmatch`, which gives ECMA's answer (`"id\n"` is refused by both).
    apispec writes `regex.pattern` into the spec.
    """

    def __init__(self, pattern: str, *, error: str) -> None:
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError(f"anchor the pattern with ^...$: {pattern!r}")
        self.regex = re.compile(pattern)
        self.message = error

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self.message)
        return value


# PostgreSQL cannot store NUL in text (nor compare with it): refuse it in every free-text
# input, and say so in the spec.
NO_NUL = Pattern(r"^[^\x00]*$", error="Must not contain NUL characters.")
NOT_BLANK = Pattern(
    r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$",
    error="Must contain a non-space character (and no NUL characters).",
)


def lower(value: str) -> str:
    """Lower-case each character whose lower case is one character (`"İ".lower()` is two),
    so normalising never makes a value longer than its validated maximum."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in value)


class StrictBoolean(fields.Boolean):
    """A JSON boolean and nothing else: `0`, `"true"` and `null` are rejected."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


MAX_DATETIME_LENGTH = 64
# Every date-time must lie within these once converted to UTC. A day inside Python's and
# the databases' own limits on each side: `0001-01-01T00:00:00+14:00` passes RFC 3339 but
# is in year 0 in UTC, and a database session in another time zone would shift an edge
# value out of range when reading it back.
EARLIEST_DATETIME = datetime(1, 1, 2, tzinfo=UTC)
LATEST_DATETIME = datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC)
DATETIME_BOUNDS = (
    f"Between {EARLIEST_DATETIME.isoformat().replace('+00:00', 'Z')} and "
    f"{LATEST_DATETIME.isoformat().replace('+00:00', 'Z')} once converted to UTC."
)


class DateTime(fields.AwareDateTime):
    """An RFC 3339 date-time with an offset, of at most 64 characters (a bound the spec
    states as `maxLength`, so no client can make the server parse an endless string),
    within `DATETIME_BOUNDS` (stated in the field's description); returned in UTC."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"maxLength": MAX_DATETIME_LENGTH, **kwargs.pop("metadata", {})}
        description = metadata.get("description")
        metadata["description"] = (
            f"{description} {DATETIME_BOUNDS}" if description else (DATETIME_BOUNDS)
        )
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_DATETIME_LENGTH:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc = parsed.astimezone(UTC)
        except OverflowError:  # the offset takes it past year 1 or 9999
            raise ValidationError(DATETIME_BOUNDS) from None
        if not EARLIEST_DATETIME <= in_utc <= LATEST_DATETIME:
            raise ValidationError(DATETIME_BOUNDS)
        return in_utc


class PatchSchema(Schema):
    """A partial update: any of the fields, at least one (`minProperties` in the spec)."""

    class Meta:
        json_schema: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @validates_schema
    def not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Send at least one field to change.")


def Enum(values: Any, **kwargs: Any) -> fields.String:  # noqa: N802 - reads as a field type
    """A string field restricted to the values of a `StrEnum` (listed in the spec)."""
    choices = [member.value for member in values]
    return fields.String(validate=validators.OneOf(choices), **kwargs)


class Problem(Schema):
    """RFC 9457 problem details; every error response has this shape."""

    type = fields.String(
        required=True,
        metadata={
            "description": "A URI reference naming the problem type.",
            "examples": ["about:blank"],
        },
    )
    title = fields.String(required=True, metadata={"examples": ["Not Found"]})
    status = fields.Integer(required=True, metadata={"examples": [404]})
    detail = fields.String(
        required=True, metadata={"examples": ["Task 42 does not exist or is not yours."]}
    )
    instance = fields.String(required=True, metadata={"examples": ["/api/v1/tasks/42"]})
    request_id = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Also sent as the X-Request-ID header; quote it in reports.",
            "examples": ["9f1c2e7a4b3d4f0e8a6b5c4d3e2f1a0b"],
        },
    )


class FieldError(Schema):
    location = fields.String(
        required=True,
        # `form` and `body`: the multipart and raw bodies of an attachment upload.
        validate=validators.OneOf(["json", "query", "path", "header", "form", "body"]),
        metadata={"examples": ["json"]},
    )
    field = fields.String(
        required=True,
        metadata={
            "description": "Dotted path to the field; empty for the body.",
            "examples": ["title"],
        },
    )
    message = fields.String(
        required=True, metadata={"examples": ["Length must be between 1 and 200."]}
    )


class ValidationProblem(Problem):
    """A problem whose `errors` lists each invalid field."""

    errors = fields.List(
        fields.Nested(FieldError),
        required=True,
        metadata={
            "examples": [
                [
                    {
                        "location": "json",
                        "field": "title",
                        "message": "Missing data for required field.",
                    }
                ]
            ]
        },
    )


class Pagination(Schema):
    page = fields.Integer(required=True, metadata={"examples": [1]})
    per_page = fields.Integer(required=True, metadata={"examples": [DEFAULT_PER_PAGE]})
    total = fields.Integer(
        required=True, metadata={"description": "Items matching the query.", "examples": [42]}
    )
    pages = fields.Integer(
        required=True, metadata={"description": "Number of pages.", "examples": [3]}
    )
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "URL of the next page.",
            "examples": ["/api/v1/tasks?page=2&per_page=20"],
        },
    )
    prev = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "URL of the previous page.", "examples": [None]},
    )
    next_cursor = fields.String(
        allow_none=True,
        metadata={
            "description": "Lists with keyset paging: send as `after` for the next page "
            "(null on the last page).",
            "examples": ["eyJpZCI6NDJ9"],
        },
    )


class PageQuery(Schema):
    """`page` and `per_page`, shared by every collection. Unknown parameters are refused."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(
        load_default=1,
        # Bounded so that the row offset fits the database's integers.
        validate=validators.Range(min=1, max=MAX_ID),
        metadata={"description": "1-based; past the last page is an empty page."},
    )
    per_page = fields.Integer(
        load_default=DEFAULT_PER_PAGE,
        validate=validators.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"Items per page, 1..{MAX_PER_PAGE}."},
    )


class HealthCheck(Schema):
    status = fields.String(
        required=True,
        validate=validators.OneOf(["ok", "degraded", "fail"]),
        metadata={
            "description": "`fail`: unreachable; `degraded`: answers, but stalled.",
            "examples": ["fail"],
        },
    )
    detail = fields.String(
        metadata={
            "description": "Why the check failed or is degraded.",
            "examples": ["a queued job has waited 312 s; no worker heartbeat for 305 s"],
        }
    )
    oldest_queued_seconds = fields.Float(
        metadata={
            "description": "`jobs`: how long the oldest due queued job has waited.",
            "examples": [1.5],
        }
    )
    last_heartbeat_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "`jobs`: age of the newest worker heartbeat; null: none ever.",
            "examples": [3.2],
        },
    )


class HealthOut(Schema):
    status = fields.String(
        required=True,
        validate=validators.OneOf(["ok", "degraded"]),
        metadata={
            "description": "`degraded`: serving around a failing check (named in `checks`).",
            "examples": ["ok"],
        },
    )
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(HealthCheck),
        metadata={
            "examples": [
                {
                    "database": {"status": "ok"},
                    "redis": {"status": "fail", "detail": "ConnectionError"},
                    "jobs": {
                        "status": "ok",
                        "oldest_queued_seconds": 0.0,
                        "last_heartbeat_seconds": 1.2,
                    },
                }
            ]
        },
    )


class ReadinessProblem(Problem):
    """503 from `/health/ready`: which dependency failed."""

    checks = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(HealthCheck),
        required=True,
        metadata={"examples": [{"database": {"status": "fail", "detail": "Connection refused."}}]},
    )


class LocationHeader(Schema):
    """A created resource's URL (the spec describes it once: `api.openapi`'s shared headers)."""

    location = fields.String(data_key="Location", required=True)
