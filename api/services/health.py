"""Dependency checks for the readiness probe, each bounded by a short timeout
(the database's connect timeout, the Redis client's `REDIS_SOCKET_TIMEOUT`).

The database is the one dependency the app cannot serve without (`CRITICAL`): its
failure makes readiness 503. Redis, the broker and the jobs are served around (in-memory
limits, uncached reads, jobs kept queued): their failure makes readiness 200 `degraded`,
so that a load balancer does not pull every instance out during an outage they survive.
"""

from __future__ import annotations

from typing import Any

from redis import Redis, RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.extensions import db, redis_client
from api.outage import checked, failed_check

CRITICAL = frozenset({"database"})


def check_database() -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        return failed_check("database", error)
    return checked("database")


def check_redis(client: Redis, name: str = "redis") -> dict[str, Any]:
    try:
        client.ping()
    except RedisError as error:
        return failed_check(name, error)
    return checked(name)


def check_jobs() -> dict[str, Any]:
    """The queue's health (`api.jobs.workers.jobs_health`), or `fail` without a database."""
    from api.jobs import executor
    from api.jobs.workers import jobs_health

    try:
        return jobs_health(needs_worker=executor().needs_worker())
    except SQLAlchemyError as error:
        db.session.rollback()
        return {"status": "fail", "detail": type(error).__name__}


def check_dependencies() -> dict[str, dict[str, Any]]:
    """Each configured dependency's state: the database, Redis when configured, the job
    executor's own (the broker, for Celery) and the queue's."""
    from api.jobs import executor

    checks = {"database": check_database()}
    client = redis_client()
    if client is not None:
        checks["redis"] = check_redis(client)
    checks.update(executor().checks())
    checks["jobs"] = check_jobs()
    return checks


def readiness(checks: dict[str, dict[str, Any]]) -> str:
    """`ok`, `degraded` (a dependency the app serves around is failing) or `fail`."""
    if any(checks[name]["status"] != "ok" for name in CRITICAL if name in checks):
        return "fail"
    return "ok" if all(check["status"] == "ok" for check in checks.values()) else "degraded"
