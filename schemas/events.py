"""Event shapes: the sync feed's, and the webhook payloads that carry the same events."""

from __future__ import annotations

import re
from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import RAISE
from marshmallow import Schema as MarshmallowSchema

from api.models import MAX_ID, EventType
from api.services.events import CURSOR_PATTERN, event_cursor
from schemas.attachments import AttachmentOut
from schemas.common import EXAMPLE_TIME, MAX_PER_PAGE, Enum, Pattern
from schemas.tasks import TaskOut

_CURSOR_EXAMPLE = "000000000000002a006929a5c0"


class EventQuery(Schema):
    class Meta:
        unknown = RAISE

    after = fields.String(
        validate=[
            validators.Length(min=26, max=26),
            Pattern(CURSOR_PATTERN, error="Not a cursor of this feed."),
        ],
        metadata={
            "description": "Continue after this position: the `next_cursor` of the last "
            "answer, or an event's `id`. Left out: from the oldest event kept. A cursor older "
            "than the retention window is a 410 (resync in full).",
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
            "examples": [_CURSOR_EXAMPLE],
        },
    )
    type = Enum(EventType, required=True, metadata={"examples": [EventType.TASK_UPDATED.value]})
    occurred_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    data = fields.Dict(
        required=True,
        metadata={
            "description": "The resource as its `...Out` schema shows it (`TaskOut` for task "
            'events), or `{"id": ...}` for a deletion.',
            "examples": [{"id": 42, "title": "Write the report", "status": "completed"}],
        },
    )


class EventList(Schema):
    data = fields.List(fields.Nested(EventOut), required=True)
    next_cursor = fields.String(
        required=True,
        metadata={
            "description": "Send as `after` next time: every change is seen once, in order.",
            "examples": [_CURSOR_EXAMPLE],
        },
    )
    has_more = fields.Boolean(
        required=True,
        metadata={"description": "More events follow at once: call again.", "examples": [False]},
    )


class DeletedResource(Schema):
    id = fields.Integer(required=True, metadata={"examples": [42]})


class PingData(Schema):
    webhook_id = fields.Integer(required=True, metadata={"examples": [3]})


PING = "webhook.ping"

# The `data` of each type of webhook payload, as the API shows that resource elsewhere.
EVENT_DATA: dict[str, type[Schema]] = {
    EventType.TASK_CREATED.value: TaskOut,
    EventType.TASK_UPDATED.value: TaskOut,
    EventType.TASK_STATUS_CHANGED.value: TaskOut,
    EventType.TASK_DELETED.value: DeletedResource,
    EventType.ATTACHMENT_CREATED.value: AttachmentOut,
    EventType.ATTACHMENT_DELETED.value: DeletedResource,
    PING: PingData,
}


def payload_name(event_type: str) -> str:
    """`task.status_changed` -> `TaskStatusChangedEvent`."""
    return "".join(part.title() for part in re.split(r"[._]", event_type)) + "Event"


def payload_schema(event_type: str) -> type[MarshmallowSchema]:
    """The body of a delivery of `event_type`: `{type, timestamp, event_id, data}`."""
    fields_: dict[str, Any] = {
        "type": fields.String(
            required=True,
            validate=validators.OneOf([event_type]),
            metadata={"examples": [event_type]},
        ),
        "timestamp": fields.DateTime(
            required=True,
            metadata={"description": "When the event occurred.", "examples": [EXAMPLE_TIME]},
        ),
        "event_id": fields.String(
            required=True,
            allow_none=True,
            metadata={
                "description": "The event's `id` in `listEvents` (a cursor); null for a ping.",
                "examples": [_CURSOR_EXAMPLE],
            },
        ),
        "data": fields.Nested(EVENT_DATA[event_type], required=True),
    }
    return Schema.from_dict(fields_, name=payload_name(event_type))
