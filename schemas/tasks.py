"""Task and tag shapes, and the task list's query parameters."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import ValidationError, post_load

from api.models import MAX_ID, TaskPriority, TaskStatus
from schemas.common import (
    BLANK,
    EXAMPLE_TIME,
    NO_NUL,
    NOT_BLANK,
    DateTime,
    Enum,
    PageQuery,
    Pagination,
    PatchSchema,
    Pattern,
    lower,
)

TITLE_LENGTH = validators.Length(min=1, max=200)
MAX_TAGS = 20
SORT_FIELDS = ("id", "title", "status", "priority", "due_date", "created_at", "updated_at")
DEFAULT_SORT = "-created_at"
# A signed cursor's alphabet (base64url and the signature's separator).
CURSOR_PATTERN = "^[A-Za-z0-9_.-]+$"


def _normalise_tags(tags: list[str]) -> list[str]:
    """Lower-case, trimmed, de-duplicated, in first-seen order."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(lower(tag.strip(BLANK)), None)
    return list(seen)


def _tag_field() -> fields.String:
    return fields.String(validate=[validators.Length(min=1, max=50), NOT_BLANK])


class TaskIn(Schema):
    """A whole task, for `createTask` and `replaceTask` (omitted fields take defaults)."""

    title = fields.String(
        required=True, validate=[TITLE_LENGTH, NOT_BLANK], metadata={"examples": ["Write report"]}
    )
    description = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validators.Length(max=10_000), NO_NUL],
        metadata={"examples": ["Quarterly numbers for the board."]},
    )
    status = Enum(
        TaskStatus, load_default=TaskStatus.PENDING.value, metadata={"examples": ["in_progress"]}
    )
    priority = Enum(
        TaskPriority, load_default=TaskPriority.MEDIUM.value, metadata={"examples": ["high"]}
    )
    due_date = DateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "RFC 3339 with an offset.", "examples": ["2026-12-01T17:00:00Z"]},
    )
    tags = fields.List(
        _tag_field(),
        load_default=list,
        validate=validators.Length(max=MAX_TAGS),
        metadata={
            "description": f"Up to {MAX_TAGS} tags of 1..50 characters, stored lower-case.",
            "examples": [["work", "q4"]],
        },
    )

    @post_load
    def normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("tags") is not None:
            data["tags"] = _normalise_tags(data["tags"])
        return data


class TaskPatchIn(PatchSchema, TaskIn):
    """Some fields of a task, for `updateTask`; at least one."""

    title = fields.String(validate=[TITLE_LENGTH, NOT_BLANK], metadata={"examples": ["New title"]})
    description = fields.String(
        allow_none=True,
        validate=[validators.Length(max=10_000), NO_NUL],
        metadata={"examples": ["Now with the Q4 figures."]},
    )
    status = Enum(TaskStatus, metadata={"examples": ["completed"]})
    priority = Enum(TaskPriority, metadata={"examples": ["urgent"]})
    due_date = DateTime(allow_none=True, metadata={"examples": ["2026-12-15T17:00:00Z"]})
    tags = fields.List(
        _tag_field(), validate=validators.Length(max=MAX_TAGS), metadata={"examples": [["work"]]}
    )


class TaskStatusIn(Schema):
    status = Enum(TaskStatus, required=True, metadata={"examples": ["completed"]})


class TaskOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [42]})
    title = fields.String(required=True, metadata={"examples": ["Write report"]})
    description = fields.String(
        required=True, allow_none=True, metadata={"examples": ["Quarterly numbers for the board."]}
    )
    status = Enum(TaskStatus, required=True, metadata={"examples": ["in_progress"]})
    priority = Enum(TaskPriority, required=True, metadata={"examples": ["high"]})
    due_date = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": ["2026-12-01T17:00:00Z"]}
    )
    tags = fields.List(
        fields.String(),
        required=True,
        attribute="tag_names",
        metadata={"examples": [["work", "q4"]]},
    )
    owner_id = fields.Integer(required=True, metadata={"examples": [1]})
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    updated_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    completed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "Set when status is completed.", "examples": [None]},
    )
    version = fields.Integer(
        required=True, metadata={"description": "Increments on every change.", "examples": [1]}
    )


class TaskList(Schema):
    data = fields.List(fields.Nested(TaskOut), required=True)
    pagination = fields.Nested(Pagination, required=True)


_SORT_KEY = f"-?(?:{'|'.join(SORT_FIELDS)})"
# The same rule as `_validate_sort`, for the spec (clients and fuzzers read it).
SORT_PATTERN = f"^{_SORT_KEY}(?:,{_SORT_KEY})*$"


def _validate_sort(value: str) -> None:
    for part in value.split(","):
        name = part.removeprefix("-")
        if name not in SORT_FIELDS:
            raise ValidationError(f"Cannot sort by {name!r}; allowed: {', '.join(SORT_FIELDS)}.")


class TaskFilters(Schema):
    """Which tasks: shared by `listTasks` (query) and `createReport` (`filters`)."""

    status = fields.List(
        Enum(TaskStatus),
        validate=validators.Length(max=len(TaskStatus)),
        metadata={
            "description": "Any of these statuses.",
            "examples": [["pending", "in_progress"]],
        },
    )
    priority = fields.List(
        Enum(TaskPriority),
        validate=validators.Length(max=len(TaskPriority)),
        metadata={"description": "Any of these priorities.", "examples": [["high", "urgent"]]},
    )
    tag = fields.String(
        validate=[validators.Length(min=1, max=50), NOT_BLANK],
        metadata={"description": "Has this tag.", "examples": ["work"]},
    )
    q = fields.String(
        validate=[validators.Length(min=1, max=200), NO_NUL],
        metadata={
            "description": "Case-insensitive text in title or description.",
            "examples": ["report"],
        },
    )
    due_before = DateTime(
        metadata={
            "description": "Due strictly before (RFC 3339).",
            "examples": ["2026-12-31T23:59:59Z"],
        }
    )
    due_after = DateTime(
        metadata={
            "description": "Due strictly after (RFC 3339).",
            "examples": ["2026-12-01T00:00:00Z"],
        }
    )
    overdue = fields.Boolean(
        metadata={
            "description": "`true`: past due and not completed; `false`: the others.",
            "examples": [True],
        }
    )

    @post_load
    def normalise_tag(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "tag" in data:
            data["tag"] = lower(data["tag"].strip(BLANK))
        return data


class TaskQuery(PageQuery, TaskFilters):
    """`listTasks`' parameters; repeat `status` or `priority` to match any of several."""

    sort = fields.String(
        load_default=DEFAULT_SORT,
        validate=[validators.Length(max=200), _validate_sort],
        metadata={
            "description": "Comma-separated fields, `-` for descending. Allowed: "
            + ", ".join(SORT_FIELDS)
            + ". Ties are broken by id.",
            "examples": ["-due_date,priority"],
            "pattern": SORT_PATTERN,
        },
    )
    owner_id = fields.Integer(
        validate=validators.Range(min=1, max=MAX_ID), metadata={"description": "Admins only."}
    )
    after = fields.String(
        validate=[
            validators.Length(min=1, max=1000),
            Pattern(CURSOR_PATTERN, error="Not a cursor: send `pagination.next_cursor` as is."),
        ],
        metadata={
            "description": "Keyset paging: `pagination.next_cursor` of the previous page, with "
            "the same filters and sort (not with a sort by `due_date`); `page` is then "
            "ignored. Every page costs the same however deep it is. Cursors are signed by "
            "the server and bound to their sort: a cursor made by hand, or one from another "
            "sort, is a 422 naming `after`."
        },
    )

    @post_load
    def parse_sort(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["sort"] = [
            (part.removeprefix("-"), part.startswith("-")) for part in data["sort"].split(",")
        ]
        return data


class TagOut(Schema):
    name = fields.String(required=True, metadata={"examples": ["work"]})
    task_count = fields.Integer(required=True, metadata={"examples": [3]})


class TagList(Schema):
    data = fields.List(fields.Nested(TagOut), required=True)
