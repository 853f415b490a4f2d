"""API key shapes. The secret appears once, in `ApiKeyCreatedOut`, and never again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import ValidationError

from api import clock
from api.models import Scope
from schemas.common import EXAMPLE_TIME, NOT_BLANK, DateTime, Enum, Pagination


def _in_the_future(value: datetime) -> None:
    if value <= clock.now():
        raise ValidationError("Must be in the future.")


def _distinct(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("List each scope once.")


class ApiKeyIn(Schema):
    name = fields.String(
        required=True,
        validate=[validators.Length(min=1, max=100), NOT_BLANK],
        metadata={"description": "What the key is for.", "examples": ["CI reporter"]},
    )
    scopes = fields.List(
        Enum(Scope),
        required=True,
        validate=[validators.Length(min=1, max=len(Scope)), _distinct],
        metadata={
            "description": "What the key may do, each scope once; at most what your role allows.",
            "examples": [["tasks:read"]],
            "uniqueItems": True,
        },
    )
    expires_at = DateTime(
        load_default=None,
        allow_none=True,
        validate=_in_the_future,
        metadata={
            "description": "RFC 3339 with an offset, in the future; `null` or left out: "
            "never expires.",
            "examples": ["2030-01-01T00:00:00Z"],
        },
    )


class ApiKeyOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [7]})
    name = fields.String(required=True, metadata={"examples": ["CI reporter"]})
    prefix = fields.String(
        required=True,
        metadata={"description": "The secret's first characters.", "examples": ["tk_Xq3v9LmA"]},
    )
    scopes = fields.List(
        Enum(Scope), required=True, attribute="scope_list", metadata={"examples": [["tasks:read"]]}
    )
    expires_at = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": ["2030-01-01T00:00:00Z"]}
    )
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    last_used_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "Updated at most once a minute.", "examples": [EXAMPLE_TIME]},
    )


class ApiKeyCreatedOut(ApiKeyOut):
    """A new key with its secret. Store the secret now: it is not shown again."""

    secret = fields.String(
        required=True,
        metadata={
            "description": "Send it as `X-API-Key`. Shown only in this response.",
            "examples": ["tk_Xq3v9LmA..."],
        },
    )

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Read from an `IssuedKey`: the secret from it, the rest from its key."""
        if attr == "secret":
            return obj.secret
        return super().get_attribute(obj.key, attr, default)


class ApiKeyList(Schema):
    data = fields.List(fields.Nested(ApiKeyOut), required=True)
    pagination = fields.Nested(Pagination, required=True)
