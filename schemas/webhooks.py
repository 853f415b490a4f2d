"""Webhook shapes. The secret appears in `WebhookCreatedOut` only (create and rotate)."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import ValidationError

from api.models import DeliveryStatus, EventType
from schemas.common import (
    EXAMPLE_TIME,
    NO_NUL,
    Enum,
    Pagination,
    PatchSchema,
    Pattern,
    StrictBoolean,
)

_URL_EXAMPLE = "https://hooks.example.com/tasks"


# An http(s) URL with a host and no credentials (the spec states the same `pattern`); the
# SSRF guard then decides whether its host may be called (a 422 naming `url` if not).
URL = Pattern(
    r"^https?://[^\s/?#@\x00]+(?:[/?#][^\s\x00]*)?$",
    error="Must be an http or https URL with a host (and no user or password).",
)


def _distinct(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("List each event type once.")


class WebhookIn(Schema):
    url = fields.String(
        required=True,
        validate=[validators.Length(max=2000), URL],
        metadata={
            "description": "Where to POST the events: http or https, on a public address.",
            "examples": [_URL_EXAMPLE],
        },
    )
    events = fields.List(
        Enum(EventType),
        required=True,
        validate=[validators.Length(min=1, max=len(EventType)), _distinct],
        metadata={
            "description": "The event types to receive, each once.",
            "examples": [["task.created", "task.status_changed"]],
            "uniqueItems": True,
        },
    )
    description = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validators.Length(max=500), NO_NUL],
        metadata={"description": "What it is for.", "examples": ["Sync to the CRM"]},
    )


class WebhookPatchIn(PatchSchema, WebhookIn):
    """Any of the fields; `is_active: true` switches a disabled webhook back on."""

    url = fields.String(
        validate=[validators.Length(max=2000), URL],
        metadata={"examples": [_URL_EXAMPLE]},
    )
    events = fields.List(
        Enum(EventType),
        validate=[validators.Length(min=1, max=len(EventType)), _distinct],
        metadata={"examples": [["task.created"]], "uniqueItems": True},
    )
    description = fields.String(
        allow_none=True,
        validate=[validators.Length(max=500), NO_NUL],
        metadata={"examples": ["CRM"]},
    )
    is_active = StrictBoolean(
        metadata={
            "description": "`true` re-enables (and forgets past failures).",
            "examples": [True],
        }
    )


class WebhookOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [3]})
    url = fields.String(required=True, metadata={"examples": [_URL_EXAMPLE]})
    events = fields.List(Enum(EventType), required=True, metadata={"examples": [["task.created"]]})
    description = fields.String(required=True, allow_none=True, metadata={"examples": ["CRM"]})
    is_active = fields.Boolean(required=True, metadata={"examples": [True]})
    disabled_reason = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Why the server disabled it (a 410, too many failures).",
            "examples": [None],
        },
    )
    consecutive_failures = fields.Integer(required=True, metadata={"examples": [0]})
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    updated_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})


class WebhookCreatedOut(WebhookOut):
    """A webhook with its signing secret. Store the secret now: it is not shown again."""

    secret = fields.String(
        required=True,
        metadata={
            "description": "Verify each delivery's `webhook-signature` with it (any Standard "
            "Webhooks library). Shown only in this response.",
            "examples": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        },
    )

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Read from an `IssuedWebhook`: the secret from it, the rest from its webhook."""
        if attr == "secret":
            return obj.secret
        return super().get_attribute(obj.webhook, attr, default)


class WebhookList(Schema):
    data = fields.List(fields.Nested(WebhookOut), required=True)
    pagination = fields.Nested(Pagination, required=True)


class DeliveryOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [12]})
    webhook_id = fields.Integer(required=True, metadata={"examples": [3]})
    message_id = fields.String(
        required=True,
        metadata={
            "description": "The `webhook-id` header: the same on every attempt.",
            "examples": ["msg_2Yx0c1G4xVq3Yb9mA6cQ8JpN"],
        },
    )
    event_type = fields.String(required=True, metadata={"examples": ["task.created"]})
    status = Enum(DeliveryStatus, required=True, metadata={"examples": ["delivered"]})
    attempts = fields.Integer(required=True, metadata={"examples": [1]})
    last_attempt_at = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": [EXAMPLE_TIME]}
    )
    last_status_code = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "None: no answer.", "examples": [200]},
    )
    last_error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Why the last attempt failed.", "examples": [None]},
    )
    last_response_body = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "At most 1 KiB of the last answer.", "examples": ["ok"]},
    )
    next_attempt_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When it is retried, if it is.", "examples": [EXAMPLE_TIME]},
    )
    delivered_at = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": [EXAMPLE_TIME]}
    )
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})


class DeliveryList(Schema):
    data = fields.List(fields.Nested(DeliveryOut), required=True)
    pagination = fields.Nested(Pagination, required=True)
