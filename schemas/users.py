"""User shapes. `password_hash` never leaves the server."""

from __future__ import annotations

from apiflask import Schema, fields

from api.models import Role, Tier
from schemas.common import Enum


class UserOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 1})
    username = fields.String(required=True, metadata={"example": "alice"})
    email = fields.String(required=True, metadata={"example": "alice@example.com"})
    role = Enum(Role, required=True)
    tier = Enum(Tier, required=True)
    is_active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
