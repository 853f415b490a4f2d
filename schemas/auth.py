"""Registration, login, token and password reset shapes."""

from __future__ import annotations

from apiflask import Schema, fields, validators

from schemas.common import NO_NUL, Pattern
from schemas.users import LowerCaseIdentity, email_field, password_field, username_field

# What a login hands out, as the docs and mock servers show it (made-up signatures).
EXAMPLE_ACCESS_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwidHlwZSI6ImFjY2VzcyJ9"
    ".4Adcj3UFYzPUVaVF43FmMab6RlaQD8A9V8wFzzht-KQ"
)
EXAMPLE_REFRESH_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwidHlwZSI6InJlZnJlc2gifQ"
    ".u0yJ7m4t2bCq1vR9pZ8x6wNf3kLsHdGaEoTiYcVbQ2M"
)


class RegisterIn(LowerCaseIdentity):
    username = username_field(required=True)
    email = email_field(required=True)
    password = password_field(required=True)


class LoginIn(Schema):
    login = fields.String(
        required=True,
        validate=[validators.Length(min=1, max=254), NO_NUL],
        metadata={"description": "Username or email.", "examples": ["alice"]},
    )
    password = fields.String(
        required=True,
        validate=validators.Length(min=1, max=128),
        metadata={"examples": ["correct horse battery"]},
    )


class TokenOut(Schema):
    access_token = fields.String(
        required=True,
        metadata={"description": "JWT for API calls.", "examples": [EXAMPLE_ACCESS_JWT]},
    )
    refresh_token = fields.String(
        required=True,
        metadata={
            "description": "JWT for `POST /auth/refresh` only.",
            "examples": [EXAMPLE_REFRESH_JWT],
        },
    )
    token_type = fields.String(required=True, metadata={"examples": ["Bearer"]})
    expires_in = fields.Integer(
        required=True,
        metadata={"description": "Access token lifetime in seconds.", "examples": [900]},
    )


class PasswordResetIn(Schema):
    email = email_field(required=True)


class PasswordResetRequestedOut(Schema):
    detail = fields.String(
        required=True,
        metadata={
            "examples": [
                "If an active account has this email address, a reset token is on its way."
            ]
        },
    )
    expires_in = fields.Integer(
        required=True,
        metadata={"description": "Lifetime of an emailed token, in seconds.", "examples": [3600]},
    )


class PasswordResetConfirmIn(Schema):
    token = fields.String(
        required=True,
        validate=[
            validators.Length(min=1, max=200),
            # What `api.services.secret_tokens.new_secret` makes: URL-safe base64.
            Pattern(r"^[A-Za-z0-9_-]+$", error="Not a reset token: letters, digits, '-', '_'."),
        ],
        metadata={
            "description": "The token from the email.",
            "examples": ["q3Vb9xLmA2_Tz8kRw-4pYc7NdE1fGh6J"],
        },
    )
    password = password_field("The new password, 8..128 characters.", required=True)
