"""Dependency checks for the readiness probe, each bounded by a short timeout
(the database's connect timeout, the Redis client's `REDIS_SOCKET_TIMEOUT`)."""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis, RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.extensions import db, redis_client

log = logging.getLogger(__name__)


def _failed(name: str, error: Exception) -> dict[str, Any]:
    log.warning("readiness: %s check failed: %s", name, error)
    return {"status": "fail", "detail": type(error).__name__}


def check_database() -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        return _failed("database", error)
    return {"status": "ok"}


def check_redis(client: Redis, name: str = "redis") -> dict[str, Any]:
    try:
        client.ping()
    except RedisError as error:
        return _failed(name, error)
    return {"status": "ok"}


def check_dependencies() -> dict[str, dict[str, Any]]:
    """Each configured dependency's state: the database, Redis when configured, and the
    job executor (its broker, for Celery)."""
    from api.jobs import executor

    checks = {"database": check_database()}
    client = redis_client()
    if client is not None:
        checks["redis"] = check_redis(client)
    checks["jobs"] = executor().check()
    return checks
