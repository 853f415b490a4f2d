"""Registration, credentials and tokens."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from api.errors import ConflictError
from api.extensions import db
from api.models import Role, User
from api.security import hash_password, verify_password
from api.services import tokens
from schemas.common import lower


def register_user(username: str, email: str, password: str, role: str = Role.USER.value) -> User:
    """Create a user; 409 if the username or email is taken (checked by the DB)."""
    user = User(username=username, email=email, password_hash=hash_password(password), role=role)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ConflictError("That username or email is already registered.") from None
    return user


def authenticate(login: str, password: str) -> User | None:
    """The active user with this username or email and password, else None.

    Unknown user, wrong password and inactive user take the same time and give the
    same answer, so login cannot be used to find out which accounts exist.
    """
    login = lower(login.strip())  # as usernames and emails are stored
    user = None
    if "\x00" not in login:  # no account has one, and PostgreSQL cannot compare with it
        user = db.session.scalar(
            select(User).where(or_(User.username == login, User.email == login))
        )
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    return user


def issue_tokens(user: User, *, fresh: bool = True, family: str | None = None) -> dict[str, Any]:
    """A new access + refresh pair in `family` (a new family: a new login session)."""
    claims = {"fam": family or str(uuid.uuid4())}
    identity = str(user.id)
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": create_access_token(identity, fresh=fresh, additional_claims=claims),
        "refresh_token": create_refresh_token(identity, additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def rotate_refresh_token(user: User) -> dict[str, Any]:
    """Exchange the current refresh token for a new pair in the same family.

    The presented token is revoked; presenting it again later is treated as theft
    (see `api.security`) and ends the whole family.
    """
    claims = get_jwt()
    tokens.revoke(claims["jti"], tokens.Revocation.ROTATED, user.id, tokens.expiry(claims))
    db.session.commit()
    return issue_tokens(user, fresh=False, family=claims["fam"])


def logout() -> None:
    """End this login session: its access and refresh tokens, rotated or not."""
    tokens.revoke_family(get_jwt())
    db.session.commit()
