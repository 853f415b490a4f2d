"""API keys: issue, list, delete, and authenticate a request by its key."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, or_, select, update

from api import clock
from api.errors import ForbiddenError, NotFoundError, UnauthorizedError
from api.extensions import db
from api.models import MAX_ID, ROLE_SCOPES, ApiKey, Scope, User
from api.pagination import Page
from api.services.paging import Listing, fetch_page
from api.services.secret_tokens import digest, new_secret

log = logging.getLogger(__name__)

SECRET_PREFIX = "tk_"  # noqa: S105  # nosec B105 - a label, not a secret
# Characters of the secret kept in clear, so owners can tell their keys apart.
VISIBLE_PREFIX_LENGTH = len(SECRET_PREFIX) + 8
# `last_used_at` is written at most this often per key: a write per request would turn
# every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class IssuedKey(NamedTuple):
    """A new key and its secret, which exists only in this response."""

    key: ApiKey
    secret: str


def create_key(user: User, data: dict[str, Any]) -> IssuedKey:
    """Issue a key for `user` with scopes their role allows; 403 for any other scope."""
    scopes: set[str] = set(data["scopes"])
    beyond = sorted(scopes - ROLE_SCOPES[user.role])
    if beyond:
        raise ForbiddenError(f"Your role cannot grant {', '.join(beyond)}.")
    secret = new_secret(SECRET_PREFIX)
    key = ApiKey(
        user_id=user.id,
        name=data["name"],
        prefix=secret[:VISIBLE_PREFIX_LENGTH],
        secret_hash=digest(secret),
        scopes=" ".join(scope.value for scope in Scope if scope.value in scopes),
        expires_at=data.get("expires_at"),
        created_at=clock.now(),
    )
    db.session.add(key)
    db.session.commit()
    # Audit lines name keys by id and visible prefix: never the secret.
    log.info("user %s created API key %s (%s)", user.id, key.id, key.prefix)
    return IssuedKey(key, secret)


KEYS = Listing(
    "api_keys", ApiKey, filters={"user_id": lambda value: ApiKey.user_id == value("user_id")}
)


def list_keys(user: User, query: dict[str, Any]) -> Page:
    """`user`'s own keys, oldest first."""
    return fetch_page(KEYS, query, (("id", False),), {"user_id": user.id})


def get_own_key(user: User, key_id: int) -> ApiKey:
    """`user`'s key; another user's key is a 404 like a missing one (no oracle)."""
    key = db.session.get(ApiKey, key_id) if 0 < key_id <= MAX_ID else None
    if key is None or key.user_id != user.id:
        raise NotFoundError(f"API key {key_id} does not exist.")
    return key


def delete_key(key: ApiKey) -> None:
    """Revoke a key: it is deleted, so the next request with it is a 401."""
    log.info("user %s deleted API key %s (%s)", key.user_id, key.id, key.prefix)
    db.session.delete(key)
    db.session.commit()


def delete_user_keys(user: User) -> int:
    """Delete every key of `user` (deactivation: revoked for good); not committed.
    Returns how many."""
    result = db.session.execute(delete(ApiKey).where(ApiKey.user_id == user.id))
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        log.info("user %s deactivated: deleted %s API keys", user.id, count)
    return count


def authenticate(secret: str) -> tuple[User, frozenset[str]]:
    """The owner of the key `secret` and the scopes the key holds now; 401 otherwise."""
    row = db.session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.secret_hash == digest(secret))
    ).first()
    if row is None:
        log.info("refused an unknown API key")
        raise UnauthorizedError("The API key is not valid: it is unknown or was deleted.")
    key, user = row
    used_at = clock.now()
    refusal = None
    if key.expires_at is not None and key.expires_at <= used_at:
        refusal = "The API key has expired."
    elif not user.is_active:
        refusal = "The API key's user is inactive."
    if refusal is not None:
        log.info("refused API key %s (%s): %s", key.id, key.prefix, refusal)
        raise UnauthorizedError(refusal)
    scopes = frozenset(key.scope_list) & ROLE_SCOPES[user.role]
    if key.last_used_at is None or used_at - key.last_used_at >= LAST_USED_RESOLUTION:
        _touch(key.id, used_at)
    return user, scopes


def _touch(key_id: int, used_at: datetime) -> None:
    """Record a use; the condition makes concurrent requests write once between them."""
    stale = used_at - LAST_USED_RESOLUTION
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale))
        .values(last_used_at=used_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
