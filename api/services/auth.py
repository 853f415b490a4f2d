"""Registration, credentials and tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from api.errors import ConflictError, UnauthorizedError
from api.extensions import db
from api.models import RevokedToken, Role, User
from api.security import hash_password, verify_password


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
    login = login.strip().lower()
    user = db.session.scalar(select(User).where(or_(User.username == login, User.email == login)))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    return user


def issue_tokens(user: User, *, fresh: bool = True, family: str | None = None) -> dict[str, Any]:
    """A new access + refresh pair. The access token names its refresh token (`rjti`),
    so logout can revoke both."""
    refresh_jti = str(uuid.uuid4())
    family = family or str(uuid.uuid4())
    identity = str(user.id)
    refresh_token = create_refresh_token(
        identity, additional_claims={"jti": refresh_jti, "fam": family}
    )
    access_token = create_access_token(
        identity, fresh=fresh, additional_claims={"rjti": refresh_jti, "fam": family}
    )
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def _revoke(jti: str, token_type: str, user_id: int, expires_at: datetime) -> None:
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(
            RevokedToken(jti=jti, token_type=token_type, user_id=user_id, expires_at=expires_at)
        )


def rotate_refresh_token(user: User) -> dict[str, Any]:
    """Exchange the current refresh token for a new pair; the presented one dies."""
    claims = get_jwt()
    _revoke(claims["jti"], "refresh", user.id, datetime.fromtimestamp(claims["exp"], UTC))
    tokens = issue_tokens(user, fresh=False, family=claims.get("fam"))
    _commit_revocations()
    return tokens


def logout(user: User) -> None:
    """Revoke the current access token and the refresh token issued with it."""
    claims = get_jwt()
    _revoke(claims["jti"], "access", user.id, datetime.fromtimestamp(claims["exp"], UTC))
    if claims.get("rjti"):
        refresh_expiry = (
            datetime.fromtimestamp(claims["iat"], UTC)
            + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
        )
        _revoke(claims["rjti"], "refresh", user.id, refresh_expiry)
    _commit_revocations()


def _commit_revocations() -> None:
    """Commit; a concurrent request that revoked the same token first wins."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise UnauthorizedError("The token has been revoked.") from None
