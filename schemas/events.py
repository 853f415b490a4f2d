"""Event shapes: the sync feed's, and the webhook payloads that carry the same events."""

from __future__ import annotations

from apiflask import Schema, fields, validators
from marshmallow import RAISE

from api.models import MAX_ID, EventType
from api.services.events import CURSOR_PATTERN, event_cursor
from schemas.common import MAX_PER_PAGE, Enum, Pattern

_CURSOR_EXAMPLE = "000000000000002a006929a5c0"


class EventQuery(Schema):
    class Meta:
        unknown = RAISE

    after = fields.String(
        validate=Pattern(CURSOR_PATTERN, error="Not a cursor of this feed."),
        metadata={
            "description": "Continue after this position: the `next_cursor` of the last "
            "answer, or an event's `id`. Left out: from the oldest event kept. A cursor older "
            "than the retention window is a 410 (resync in full).",
            "example": _CURSOR_EXAMPLE,
        },
    )
    types = fields.List(
        Enum(EventType),
        validate=validators.Length(min=1, max=len(EventType)),
        metadata={"description": "Only events of these types (repeat the parameter)."},
    )
    per_page = fields.Integer(
        load_default=MAX_PER_PAGE,
        validate=validators.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"Events per answer, 1..{MAX_PER_PAGE}."},
    )
    owner_id = fields.Integer(
        validate=validators.Range(min=1, max=MAX_ID),
        metadata={"description": "Admins only: read this user's events."},
    )


class EventOut(Schema):
    id = fields.Function(
        event_cursor,
        required=True,
        metadata={
            "type": "string",
            "description": "Opaque and ordered; also a cursor (`after`) for the events after it.",
            "example": _CURSOR_EXAMPLE,
        },
    )
    type = Enum(EventType, required=True, metadata={"example": EventType.TASK_UPDATED.value})
    occurred_at = fields.DateTime(required=True)
    data = fields.Dict(
        required=True,
        metadata={
            "description": "The resource as its `...Out` schema shows it (`TaskOut` for task "
            'events), or `{"id": ...}` for a deletion.',
            "example": {"id": 42, "title": "Write the report", "status": "completed"},
        },
    )


class EventList(Schema):
    data = fields.List(fields.Nested(EventOut), required=True)
    next_cursor = fields.String(
        required=True,
        metadata={
            "description": "Send as `after` next time: every change is seen once, in order.",
            "example": _CURSOR_EXAMPLE,
        },
    )
    has_more = fields.Boolean(
        required=True, metadata={"description": "More events follow at once: call again."}
    )


class DeletedResource(Schema):
    id = fields.Integer(required=True, metadata={"example": 42})
