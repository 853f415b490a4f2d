"""The revocation store: revoked tokens and revoked token families.

Every token carries its own `jti` and its family's id (`fam`): the family starts at
login and follows the refresh-token rotations. Logout revokes the family; a rotation
revokes the refresh token it consumed. One primary-key lookup answers "is this token
revoked?" for both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from api.extensions import db
from api.models import RevokedToken
from api.services.sql import insert_missing


class Revocation(StrEnum):
    ROTATED = "refresh"  # a refresh token exchanged at /auth/refresh
    FAMILY = "family"  # every token of a login session (logout, reuse, password change)


def expiry(claims: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], UTC)


def revoke(key: str, kind: Revocation, user_id: int, expires_at: datetime) -> None:
    """Record a revocation (idempotent: revoking twice is not an error). Not committed."""
    row = {"jti": key, "token_type": kind.value, "user_id": user_id, "expires_at": expires_at}
    insert_missing(RevokedToken, [row], "jti")


def revoke_family(claims: dict[str, Any]) -> None:
    """Revoke every token of the family of `claims` (outlives any token in it)."""
    family_expiry = (
        datetime.fromtimestamp(claims["iat"], UTC) + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    )
    revoke(claims["fam"], Revocation.FAMILY, int(claims["sub"]), family_expiry)


def purge_expired() -> int:
    """Forget revocations of tokens that have expired anyway; returns how many."""
    result = db.session.execute(
        delete(RevokedToken).where(RevokedToken.expires_at <= datetime.now(UTC))
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def is_revoked(claims: dict[str, Any]) -> bool:
    """True if the token or its family is revoked.

    A refresh token rotated moments ago still counts as live for
    `REFRESH_REUSE_GRACE_SECONDS`, so two tabs refreshing at once both succeed.
    """
    keys = [claims.get("jti", ""), claims.get("fam", "")]
    rows = db.session.scalars(select(RevokedToken).where(RevokedToken.jti.in_(keys))).all()
    for row in rows:
        if row.token_type != Revocation.ROTATED.value:
            return True
        grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
        if datetime.now(UTC) - row.revoked_at > grace:
            return True
    return False
