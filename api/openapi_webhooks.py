"""The spec's top-level `webhooks` (OpenAPI 3.1): one entry per event type that a webhook
can receive, with its payload schema (built from the same marshmallow schemas as the
API's responses) and the Standard Webhooks signature headers.

APIFlask documents routes only, so this adds the section to the finished document: the
payload schemas go through apispec's marshmallow converter like every other schema.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas.events import EVENT_DATA, payload_name, payload_schema

# name: (description, JSON schema): the signature headers, as the server sends them.
_HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "webhook-id": (
        "The message id: the same on every attempt of this delivery (drop duplicates by it).",
        {"maxLength": 64, "pattern": "^msg_[A-Za-z0-9_-]{24}$"},
    ),
    "webhook-timestamp": (
        "When this attempt was sent (Unix seconds).",
        {"maxLength": 12, "pattern": "^[0-9]{1,12}$"},
    ),
    "webhook-signature": (
        "`v1,` and the base64 HMAC-SHA256, under your secret, of "
        "`<webhook-id>.<webhook-timestamp>.<body>`; space-separated when two secrets sign "
        "(for 24 h after a rotation). Verify with any Standard Webhooks library.",
        {
            "maxLength": 95,
            "pattern": "^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)?$",
        },
    ),
}
_EXAMPLES = {
    "webhook-id": "msg_2Yx0c1G4xVq3Yb9mA6cQ8JpN",
    "webhook-timestamp": "1764670000",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}
_DESCRIPTION = (
    "Sent to each of your webhooks subscribed to `{type}`, as a JSON POST signed per "
    "[Standard Webhooks](https://www.standardwebhooks.com/). Answer any 2xx within 10 s: "
    "anything else is retried with exponential backoff for about a day (same `webhook-id`); "
    "410 disables the webhook."
)


def _payload_components() -> dict[str, Any]:
    """Every payload schema (and the schemas it nests) as JSON Schema components."""
    spec = APISpec("webhooks", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    for event_type in EVENT_DATA:
        spec.components.schema(payload_name(event_type), schema=payload_schema(event_type))
    schemas: dict[str, Any] = spec.to_dict()["components"]["schemas"]
    return schemas


def _entry(event_type: str) -> dict[str, Any]:
    name = payload_name(event_type)
    return {
        "post": {
            "operationId": name[0].lower() + name[1:],
            "summary": f"{event_type} (webhook)",
            "description": _DESCRIPTION.format(type=event_type),
            "tags": ["Webhooks"],
            # Your receiver authenticates the sender by the signature headers below, not by
            # a scheme of this document's.
            "security": [],
            "parameters": [
                {
                    "in": "header",
                    "name": header,
                    "required": True,
                    "description": description,
                    "schema": {"type": "string", **schema, "examples": [_EXAMPLES[header]]},
                }
                for header, (description, schema) in _HEADERS.items()
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            },
            "responses": {
                "200": {"description": "Any 2xx: delivered."},
                "410": {"description": "Gone: the webhook is disabled, nothing more is sent."},
            },
        }
    }


def add_webhooks(spec: dict[str, Any]) -> None:
    """Add `webhooks` and the payload components (the API's own components win: the
    nested ones, such as `TaskOut`, come from the same schema)."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _payload_components().items():
        components.setdefault(name, schema)
    spec["webhooks"] = {event_type: _entry(event_type) for event_type in EVENT_DATA}
