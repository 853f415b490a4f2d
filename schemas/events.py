"""Event shapes: the sync feed's, and the webhook payloads that carry the same events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import RAISE
from marshmallow import Schema as MarshmallowSchema

from api.models import MAX_ID, Event, EventType
from schemas.attachments import AttachmentOut
from schemas.common import EXAMPLE_TIME, MAX_PER_PAGE, Enum, Pattern
from schemas.tasks import TaskOut

# A cursor is the last event id seen and when that position was current (Unix seconds),
# in fixed-width hex: opaque to clients, yet ordered like the events. The feed
# (api.services.events) reads and writes it; here, because the schemas show it as `id`.
CURSOR_PATTERN = "^[0-9a-f]{26}$"
# Ids are 64-bit (BIGINT): a larger one in a cursor cannot exist.
_MAX_EVENT_ID = 2**63 - 1
_CURSOR_EXAMPLE = "000000000000002a006929a5c0"


def encode_cursor(event_id: int, at: datetime) -> str:
    return f"{event_id:016x}{int(at.timestamp()):010x}"


def event_cursor(event: Event) -> str:
    """An event's public `id`: a cursor for "the events after this one"."""
    return encode_cursor(event.id, event.occurred_at)


def decode_cursor(cursor: str) -> tuple[int, datetime]:
    """The event id and the time a cursor holds; ValueError when it is not a cursor."""
    try:
        event_id = int(cursor[:16], 16)
        if event_id > _MAX_EVENT_ID:
            raise ValueError(event_id)
        return event_id, datetime.fromtimestamp(int(cursor[16:], 16), tz=UTC)
    except (OverflowError, OSError) as error:  # a time out of the platform's range
        raise ValueError(cursor) from error


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
