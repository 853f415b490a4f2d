"""Registration, login and token shapes."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields, validators
from marshmallow import post_load

from schemas.common import NO_NUL, Pattern, lower

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
PASSWORD_LENGTH = validators.Length(min=8, max=128)


class RegisterIn(Schema):
    username = fields.String(
        required=True,
        validate=[
            validators.Length(min=3, max=32),
            Pattern(
                USERNAME_PATTERN,
                error="3..32 characters: letters, digits, '_', '.', '-'; starts with a letter "
                "or digit.",
            ),
        ],
        metadata={"description": "Case-insensitive; stored lower-case.", "example": "alice"},
    )
    email = fields.Email(
        required=True,
        validate=validators.Length(max=254),
        metadata={"description": "Case-insensitive.", "example": "alice@example.com"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=PASSWORD_LENGTH,
        metadata={"description": "8..128 characters.", "example": "correct horse battery"},
    )

    @post_load
    def normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["username"] = data["username"].lower()
        data["email"] = lower(data["email"])
        return data


class LoginIn(Schema):
    login = fields.String(
        required=True,
        validate=[validators.Length(min=1, max=254), NO_NUL],
        metadata={"description": "Username or email.", "example": "alice"},
    )
    password = fields.String(
        required=True,
        validate=validators.Length(min=1, max=128),
        metadata={"example": "correct horse battery"},
    )


class TokenOut(Schema):
    access_token = fields.String(required=True, metadata={"description": "JWT for API calls."})
    refresh_token = fields.String(
        required=True, metadata={"description": "JWT for `POST /auth/refresh` only."}
    )
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds."}
    )
