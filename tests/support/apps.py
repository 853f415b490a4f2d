"""Apps built inside a test (not the session `app` fixture), and undoing what they change.

`create_app` changes one piece of process-wide state: logging goes through one root
handler. `isolated_process_state` puts it back, so an app made for one test never leaks
into the tests after it. (Rate limits need no such care: each app has its own limiter.)
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api import create_app
from api.extensions import db
from api.models import Role, User
from api.openapi import TasksAPI
from api.services.passwords import hash_password
from tests.support.auth import PASSWORD
from tests.support.operations import RecordingClient


@contextmanager
def isolated_process_state() -> Iterator[None]:
    """Restore the root logger after the block."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'tasks.db'}"


def app_with_schema(database_url: str, **config: Any) -> TasksAPI:
    """An app (testing profile) on `database_url`, with the tables created."""
    application = make_app(database_url, **config)
    with application.app_context():
        db.create_all()
    return application


def add_user(application: TasksAPI, username: str, **fields: Any) -> int:
    """Insert an active user with the tests' password; return its id."""
    with application.app_context():
        user = User(
            username=username,
            email=f"{username}@example.com",
            password_hash=hash_password(PASSWORD),
            role=fields.pop("role", Role.USER.value),
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        return user.id


def make_app(database_url: str, **config: Any) -> TasksAPI:
    """An app with the testing profile on `database_url` (no tables created). Its test
    clients record the operations they are served (tests/support/operations.py)."""
    application = create_app(
        {"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, **config}
    )
    application.test_client_class = RecordingClient
    return application


@event.listens_for(Engine, "connect")
def _sqlite_commits_without_fsync(dbapi_connection: Any, connection_record: Any) -> None:
    """Test databases are thrown away: SQLite commits need not wait for the disk (as with
    `synchronous_commit=off` on PostgreSQL below). On a busy disk each fsync cost ~10 ms,
    and most tests commit several times."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


# Commits do not wait for the WAL to reach the disk: a crash could lose the last
# transactions of a test database, which is thrown away anyway. Tests run much faster.
POSTGRES_TEST_OPTIONS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {
        "pool_pre_ping": True,
        "connect_args": {"options": "-c synchronous_commit=off"},
    }
}


def redis_config(url: str) -> dict[str, Any]:
    """Settings for the Redis revocation store, under a key prefix no one else uses
    (other test runs may share this Redis)."""
    prefix = f"tasks-api-test-{uuid.uuid4().hex[:10]}:"
    # Only the revocation store: limits and the response cache stay in memory here
    # (their Redis tiers live in tests/test_limits.py and tests/test_cache.py).
    return {
        "REDIS_URL": url,
        "REVOCATION_KEY_PREFIX": prefix,
        "RATELIMIT_STORAGE_URI": "memory://",
        "CACHE_TYPE": "SimpleCache",
    }


# A Redis URL where nothing listens: Redis "down" without stopping the shared server.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"

# Nothing listens on port 1: connections are refused at once.
# (The revocation store's; limits and cache keep to memory, as in `redis_config`.)
UNREACHABLE_REDIS = {
    "REDIS_URL": UNREACHABLE_REDIS_URL,
    "REDIS_SOCKET_TIMEOUT": 0.2,
    "RATELIMIT_STORAGE_URI": "memory://",
    "CACHE_TYPE": "SimpleCache",
}


def clear_redis(app: TasksAPI) -> None:
    """Delete every key of `app`'s prefix (never the whole Redis database)."""
    client: Redis | None = app.extensions.get("redis")
    if client is not None:
        keys = list(client.scan_iter(match=app.config["REVOCATION_KEY_PREFIX"] + "*", count=1000))
        if keys:
            client.delete(*keys)


def dispose(application: TasksAPI) -> None:
    """Close the app's connections: its Redis client and pooled database connections
    (pytest turns unclosed sockets into errors)."""
    client: Redis | None = application.extensions.get("redis")
    if client is not None:
        client.close()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass(frozen=True)
class LiveServer:
    """A real HTTP server on a loopback port, for clients that need one (SDK, browser)."""

    url: str
    app: TasksAPI


# Builds another app on the session app's database: `build(**config)`.
AppFactory = Callable[..., TasksAPI]


@contextmanager
def separate_app(base: TasksAPI, **config: Any) -> Iterator[TasksAPI]:
    """Another app (a "worker") on the database of `base`, with `config` and a limiter
    of its own, as a fresh worker process would have."""
    other = make_app(base.config["SQLALCHEMY_DATABASE_URI"], **config)
    try:
        yield other
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@contextmanager
def app_factory(base: TasksAPI) -> Iterator[AppFactory]:
    """`build(**config)` makes separate apps, all undone when the block ends."""
    with ExitStack() as stack:
        yield lambda **config: stack.enter_context(separate_app(base, **config))


def redis_worker(build: AppFactory, redis_url: str, prefix: str, **config: Any) -> TasksAPI:
    """A worker app whose limits and cache live in Redis under `prefix`."""
    return build(
        REDIS_URL=redis_url,
        RATELIMIT_KEY_PREFIX=prefix,
        CACHE_KEY_PREFIX=f"{prefix}:",
        **config,
    )
