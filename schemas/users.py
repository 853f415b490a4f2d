"""User shapes. `password_hash` never leaves the server; nobody sets their own role."""

from __future__ import annotations

from typing import Any, ClassVar

from apiflask import Schema, fields, validators
from marshmallow import ValidationError, post_load, validates_schema

from api.models import Role, Tier
from schemas.common import (
    EXAMPLE_TIME,
    NO_NUL,
    Enum,
    PageQuery,
    Pagination,
    PatchSchema,
    Pattern,
    StrictBoolean,
    lower,
)

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
PASSWORD_LENGTH = validators.Length(min=8, max=128)


def username_field(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[
            validators.Length(min=3, max=32),
            Pattern(
                USERNAME_PATTERN,
                error="3..32 characters: letters, digits, '_', '.', '-'; starts with a letter "
                "or digit.",
            ),
        ],
        metadata={"description": "Case-insensitive; stored lower-case.", "examples": ["alice"]},
        **kwargs,
    )


def email_field(**kwargs: Any) -> fields.Email:
    return fields.Email(
        validate=validators.Length(max=254),
        metadata={"description": "Case-insensitive.", "examples": ["alice@example.com"]},
        **kwargs,
    )


WEAK_PASSWORDS = (
    " Common and trivially weak passwords (`password`, `12345678`, repeats, keyboard runs, "
    "your username or email) are refused with a 422 saying why."
)


def password_field(description: str = "8..128 characters.", **kwargs: Any) -> fields.String:
    return fields.String(
        load_only=True,
        validate=PASSWORD_LENGTH,
        metadata={
            "description": description + WEAK_PASSWORDS,
            "examples": ["correct horse battery"],
        },
        **kwargs,
    )


def current_password_field(description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        load_only=True,
        validate=validators.Length(min=1, max=128),
        metadata={"description": description, "examples": ["old horse battery"]},
        **kwargs,
    )


class LowerCaseIdentity(Schema):
    """Usernames and emails are case-insensitive: stored and compared lower-case."""

    @post_load
    def normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        for name in ("username", "email"):
            if name in data:
                data[name] = lower(data[name])
        return data


class UserOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [1]})
    username = fields.String(required=True, metadata={"examples": ["alice"]})
    email = fields.String(required=True, metadata={"examples": ["alice@example.com"]})
    role = Enum(Role, required=True, metadata={"examples": ["user"]})
    tier = Enum(Tier, required=True, metadata={"examples": ["free"]})
    is_active = fields.Boolean(required=True, metadata={"examples": [True]})
    notify_on_task_created = fields.Boolean(
        required=True,
        metadata={"description": "Email a confirmation of each new task.", "examples": [False]},
    )
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    updated_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})


class UserPatchIn(LowerCaseIdentity):
    """Your own username, email and preferences; changing the email needs your current
    password."""

    class Meta:
        # What `check` below enforces, for the spec: `username` or `email` (or both), and
        # `current_password` whenever `email` is sent.
        json_schema: ClassVar[dict[str, Any]] = {
            "anyOf": [{"required": ["username"]}, {"required": ["email"]}],
            "dependentRequired": {"email": ["current_password"]},
        }

    username = username_field()
    email = email_field()
    notify_on_task_created = StrictBoolean(
        metadata={
            "description": "`true`: email me a confirmation of each task I create.",
            "examples": [True],
        }
    )
    current_password = current_password_field("Required with `email`.")

    @validates_schema
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.keys() - {"current_password"}:
            raise ValidationError("Send `username`, `email` or `notify_on_task_created` to change.")
        if "email" in data and "current_password" not in data:
            raise ValidationError("Required to change the email.", "current_password")


class PasswordChangeIn(Schema):
    password = password_field("The new password, 8..128 characters.", required=True)
    current_password = current_password_field("Your password now; always required.", required=True)


class UserAdminPatchIn(PatchSchema):
    """What an admin changes about an account."""

    role = Enum(Role, metadata={"examples": ["admin"]})
    tier = Enum(Tier, metadata={"examples": ["pro"]})
    is_active = StrictBoolean(
        metadata={
            "description": "`false` ends the user's sessions and API keys at once.",
            "examples": [False],
        }
    )


class UserQuery(PageQuery):
    role = Enum(Role)
    tier = Enum(Tier)
    is_active = fields.Boolean()
    q = fields.String(
        validate=[validators.Length(min=1, max=254), NO_NUL],
        metadata={"description": "Case-insensitive text in the username or email."},
    )


class UserList(Schema):
    data = fields.List(fields.Nested(UserOut), required=True)
    pagination = fields.Nested(Pagination, required=True)
