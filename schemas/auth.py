"""Registration, login, token and password reset shapes."""

from __future__ import annotations

from apiflask import Schema, fields, validators

from schemas.common import NO_NUL, Pattern
from schemas.users import LowerCaseIdentity, email_field, password_field, username_field


class RegisterIn(LowerCaseIdentity):
    username = username_field(required=True)
    email = email_field(required=True)
    password = password_field(required=True)


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


class PasswordResetIn(Schema):
    email = email_field(required=True)


class PasswordResetRequestedOut(Schema):
    detail = fields.String(required=True)
    expires_in = fields.Integer(
        required=True, metadata={"description": "Lifetime of an emailed token, in seconds."}
    )


class PasswordResetConfirmIn(Schema):
    token = fields.String(
        required=True,
        validate=[
            validators.Length(min=1, max=200),
            # What `api.services.secret_tokens.new_secret` makes: URL-safe base64.
            Pattern(r"^[A-Za-z0-9_-]+$", error="Not a reset token: letters, digits, '-', '_'."),
        ],
        metadata={"description": "The token from the email."},
    )
    password = password_field("The new password, 8..128 characters.", required=True)
