"""Apps built inside a test (not the session `app` fixture), and undoing what they change.

`create_app` changes one piece of process-wide state: logging goes through one root
handler. `isolated_process_state` puts it back, so an app made for one test never leaks
into the tests after it. (Rate limits need no such care: each app has its own limiter.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.extensions import db
from api.models import Role, User
from api.openapi import TasksAPI
from api.security import hash_password
from tests.conftest import PASSWORD, make_app


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


def dispose(application: TasksAPI) -> None:
    """Close the app's pooled database connections."""
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
