"""Idempotency-key records: claim a key, finish it with the answer, or release it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from api import clock
from api.extensions import db
from api.models import IdempotencyRecord
from api.services.sql import insert_missing


@dataclass(frozen=True)
class Replay:
    status_code: int
    headers: dict[str, str]
    body: bytes


class KeyReusedError(Exception):
    """The key was used before with a different request."""


class KeyInFlightError(Exception):
    """The first request with this key is still running."""


def claim(user_id: int, key: str, fingerprint: str) -> Replay | None:
    """Claim `key` for this request (None), or return the answer to replay.

    Raises KeyReusedError or KeyInFlightError. The claim is committed at once, so a
    concurrent request with the same key sees it (a unique constraint decides races).
    """
    now = clock.now()
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    ttl = timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    row = {"user_id": user_id, "key": key, "fingerprint": fingerprint, "expires_at": now + ttl}
    claimed = insert_missing(IdempotencyRecord, [row], ("user_id", "key"))
    db.session.commit()
    if claimed:
        return None
    record = db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
    if record is None:  # released by its owner a moment ago: claim it afresh
        return claim(user_id, key, fingerprint)
    if record.fingerprint != fingerprint:
        raise KeyReusedError
    if record.status_code is None:
        raise KeyInFlightError
    return Replay(record.status_code, dict(record.headers or {}), record.body or b"")


def finish(user_id: int, key: str, answer: Replay) -> None:
    record = db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
    if record is not None:
        record.status_code = answer.status_code
        record.headers = answer.headers
        record.body = answer.body
        db.session.commit()


def release(user_id: int, key: str) -> None:
    """Forget the claim (the request failed): a retry runs afresh."""
    db.session.rollback()
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status_code.is_(None),
        )
    )
    db.session.commit()


def purge_expired() -> int:
    """Delete records past their retention; returns how many."""
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= clock.now())
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
