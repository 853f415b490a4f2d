"""Dependency checks for the readiness probe, each bounded by a short timeout."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.extensions import db

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


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


def check_redis(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return _failed("redis", error)
    finally:
        client.close()
    return {"status": "ok"}


def check_dependencies() -> dict[str, dict[str, Any]]:
    """Every configured dependency: the database, and Redis when REDIS_URL is set."""
    checks = {"database": check_database()}
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = check_redis(current_app.config["REDIS_URL"])
    return checks
