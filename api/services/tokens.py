"""The revocation store: revoked tokens, token families and token generations.

Every token carries its own `jti`, its family's id (`fam`: the family starts at login and
follows the refresh-token rotations) and its user's token generation (`gen`). An entry
under any of the three keys revokes it:

- `refresh`: one refresh token, exchanged at /auth/refresh (still good for the grace window);
- `family`: every token of a login session (logout, a rotated refresh token used again);
- `user`: every token of one generation of a user's tokens (password change or reset,
  deactivation), so "revoke all of this user's tokens" is one entry, not one per token.

The database is the source of truth. With `REDIS_URL` set, each revocation is also written
to Redis once the database has committed it, as a key that expires when the tokens it
revokes would have expired anyway, and checks read Redis alone: one round trip, no SQL.
Checks read the database instead when Redis does not answer, and when Redis is not known
to hold every revocation (its `synced` marker is missing, as after a restart that lost its
data, or older than `REVOCATION_SYNC_SECONDS`); that request then copies what Redis lacks
from the database. So a revoked token is never accepted because of Redis, except for a
revocation whose Redis write failed while Redis kept its data, and only until the next
catch-up, at most `REVOCATION_SYNC_SECONDS` later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from flask import current_app
from redis import Redis, RedisError
from sqlalchemy import bindparam, delete, event, select
from sqlalchemy.orm import Session

from api import clock
from api.extensions import db, redis_client
from api.models import RevokedToken, User
from api.outage import outage
from api.services.sql import insert_missing

_PENDING = "pending_revocations"  # Session.info key: entries to write to Redis on commit
_SYNCED = "synced"  # epoch seconds: Redis holds every revocation up to then
_SYNC_LOCK = "sync-lock"
_BATCH = 1000
_OUTAGE = "revocation store (Redis; the database answers meanwhile)"


class Revocation(StrEnum):
    ROTATED = "refresh"
    FAMILY = "family"
    USER = "user"


class Entry(NamedTuple):
    key: str
    kind: Revocation
    revoked_at: datetime
    expires_at: datetime


def expiry(claims: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], UTC)


def _user_key(user_id: Any, generation: Any) -> str:
    return f"user:{user_id}:{generation}"


def _session_lifetime() -> timedelta:
    """How long a token issued now can live (a refresh token's lifetime)."""
    lifetime: timedelta = current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    return lifetime


# --- writing ---------------------------------------------------------------------------


def revoke(key: str, kind: Revocation, user_id: int, expires_at: datetime) -> None:
    """Record a revocation (idempotent: the first one stands). Not committed; it reaches
    Redis when the session commits."""
    entry = Entry(key, kind, clock.now(), expires_at)
    row = {
        "jti": key,
        "token_type": kind.value,
        "user_id": user_id,
        "expires_at": expires_at,
        "revoked_at": entry.revoked_at,
    }
    insert_missing(RevokedToken, [row], "jti")
    db.session.info.setdefault(_PENDING, []).append(entry)


def revoke_family(claims: Mapping[str, Any]) -> None:
    """Revoke every token of the family of `claims`. The entry lives as long as a token
    issued now would: every token of the family was issued earlier (rotations included,
    so not from `claims["iat"]`: a later refresh token would outlive that)."""
    family_expiry = clock.now() + _session_lifetime()
    revoke(claims["fam"], Revocation.FAMILY, int(claims["sub"]), family_expiry)


def purge_expired() -> int:
    """Forget revocations of tokens that have expired anyway; returns how many."""
    result = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= clock.now()))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def revoke_user_tokens(user: User) -> None:
    """Revoke every token `user` holds: they all carry the current generation, and tokens
    issued from now on carry the next one. Not committed."""
    key = _user_key(user.id, user.token_generation)
    revoke(key, Revocation.USER, user.id, clock.now() + _session_lifetime())
    user.token_generation += 1


@event.listens_for(db.session, "after_commit")
def _publish(session: Session) -> None:
    """Copy the revocations just committed to Redis (the database stays the truth)."""
    entries: list[Entry] = session.info.pop(_PENDING, [])
    client = redis_client() if entries else None
    if client is None:
        return
    try:
        _write(client, entries)
    except RedisError as error:
        _unavailable(error)


@event.listens_for(db.session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _name(key: str) -> str:
    prefix: str = current_app.config["REVOCATION_KEY_PREFIX"]
    return prefix + key


def _write(client: Redis, entries: Iterable[Entry]) -> None:
    """SET each entry, expiring with the tokens it revokes; NX keeps the first revocation
    time, as the database does."""
    cutoff = clock.now()
    with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            if entry.expires_at > cutoff:
                value = f"{entry.kind.value} {entry.revoked_at.timestamp()}"
                expires_ms = int(entry.expires_at.timestamp() * 1000)
                pipe.set(_name(f"entry:{entry.key}"), value, pxat=expires_ms, nx=True)
        pipe.execute()


# --- checking --------------------------------------------------------------------------


def token_keys(claims: Mapping[str, Any]) -> list[str]:
    """The blocklist keys that can revoke a token with these claims."""
    keys = [claims.get("jti"), claims.get("fam")]
    if "sub" in claims:
        # Tokens from before generations existed count as generation 0.
        keys.append(_user_key(claims["sub"], claims.get("gen", 0)))
    return [key for key in keys if isinstance(key, str) and key]


# Built once: this runs on every authenticated request (without Redis).
_TOKEN_USER = (
    select(User, RevokedToken.token_type, RevokedToken.revoked_at)
    .outerjoin(RevokedToken, RevokedToken.jti.in_(bindparam("keys", expanding=True)))
    .where(User.id == bindparam("user_id"))
)


def token_user(user_id: int, claims: Mapping[str, Any]) -> tuple[User | None, bool]:
    """The user a verified token names and whether the token is revoked, in one round
    trip: the user row with its revocation entries joined, or the user alone when Redis
    answers for the revocations."""
    keys = token_keys(claims)
    found = _from_redis(keys)
    if found is not None:
        return db.session.get(User, user_id), _revokes(found)
    rows = db.session.execute(_TOKEN_USER, {"user_id": user_id, "keys": keys}).all()
    if not rows:
        return None, False
    entries = [(Revocation(kind), at) for _, kind, at in rows if kind is not None]
    return rows[0][0], _revokes(entries)


Found = list[tuple[Revocation, datetime]]


def _revokes(found: Found) -> bool:
    """Whether any of these entries revokes the token. A refresh token rotated moments
    ago still counts as live for `REFRESH_REUSE_GRACE_SECONDS`, so two tabs refreshing at
    once both succeed."""
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    return any(
        kind != Revocation.ROTATED or clock.now() - revoked_at > grace for kind, revoked_at in found
    )


def _from_redis(keys: list[str]) -> Found | None:
    """The entries Redis holds for `keys`; None when Redis cannot be trusted to answer."""
    client = redis_client()
    if client is None:
        return None
    try:
        synced, *values = client.mget([_name(_SYNCED)] + [_name(f"entry:{k}") for k in keys])
        if synced is None or clock.now().timestamp() - float(synced) > _sync_seconds():
            _catch_up(client, None if synced is None else float(synced))
            return None
    except RedisError as error:
        _unavailable(error)
        return None
    outage(_OUTAGE).recovered()
    found: Found = []
    for value in values:
        if value is not None:
            text = value.decode() if isinstance(value, bytes) else value
            kind, revoked_at = text.split(" ", 1)
            found.append((Revocation(kind), datetime.fromtimestamp(float(revoked_at), UTC)))
    return found


def _sync_seconds() -> int:
    seconds: int = current_app.config["REVOCATION_SYNC_SECONDS"]
    return seconds


def _catch_up(client: Redis, synced: float | None) -> None:
    """Copy to Redis the revocations it may lack: all live ones when it has none (`synced`
    is None), else those since a sync interval before the last catch-up (which covers
    transactions that were in flight then). One worker at a time does it."""
    lock = _name(_SYNC_LOCK)
    if not client.set(lock, "1", nx=True, ex=30):
        return
    try:
        started = clock.now()
        query = select(RevokedToken).where(RevokedToken.expires_at > started)
        if synced is not None:
            since = datetime.fromtimestamp(synced - _sync_seconds(), UTC)
            query = query.where(RevokedToken.revoked_at >= since)
        rows = db.session.execute(query.execution_options(yield_per=_BATCH)).scalars()
        for batch in rows.partitions():
            _write(
                client,
                (Entry(r.jti, Revocation(r.token_type), r.revoked_at, r.expires_at) for r in batch),
            )
        client.set(_name(_SYNCED), str(started.timestamp()))
    finally:
        client.delete(lock)


def _unavailable(error: RedisError) -> None:
    """Redis failed: the database answers instead (logged once, then reminders)."""
    outage(_OUTAGE).failed(error)
