"""Apps built inside a test (not the session `app` fixture), and undoing what they change.

`create_app` changes process-wide state: Flask-Limiter's `limiter` is one object for
every app in the process (each `init_app` points its storage at the newest app's
backend and merges its storage options), and logging goes through one root handler.
`isolated_process_state` puts both back, so an app made for one test (say, on a Redis
that the test then kills) never leaks into the tests after it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.extensions import db, limiter
from api.models import Role, User
from api.openapi import TasksAPI
from api.security import hash_password
from tests.conftest import PASSWORD, make_app

# What `Limiter.init_app` and a storage outage change on the shared limiter: where the
# counters live, the in-memory fallback and its health-check state. (Not the limits,
# filters and exemptions that modules register on it at import time.)
_LIMITER_STORAGE = (
    "_storage",
    "_storage_options",
    "_limiter",
    "_storage_dead",
    "_in_memory_fallback_enabled",
    "_fallback_storage",
    "_fallback_limiter",
    "_Limiter__check_backend_count",
    "_Limiter__last_check_backend",
)


@contextmanager
def isolated_process_state() -> Iterator[None]:
    """Restore the shared limiter and the root logger after the block."""
    saved_limiter = {
        key: copy.copy(value) for key, value in vars(limiter).items() if key in _LIMITER_STORAGE
    }
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        yield
    finally:
        for key in _LIMITER_STORAGE:
            if key in saved_limiter:
                setattr(limiter, key, saved_limiter[key])
            else:
                vars(limiter).pop(key, None)
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


def dispose(application: TasksAPI) -> None:
    """Close the app's pooled database connections."""
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
