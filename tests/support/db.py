"""The database behind the API: reading it to assert a request's effect, counting the SQL a
request runs, and throwaway PostgreSQL databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from api.extensions import db
from api.models import User
from api.openapi import TasksAPI


def count(app: TasksAPI, model: type[Any]) -> int:
    """How many rows `model`'s table holds."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def user_id(app: TasksAPI, username: str) -> int:
    """The id of the user `username`, who must exist."""
    with app.app_context():
        found = db.session.scalar(select(User.id).where(User.username == username))
    assert found is not None, f"no user {username!r}"
    return found


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create an empty database on the server of `base_url`; drop it afterwards."""
    name = f"tasks_api_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sql_statements(app: TasksAPI) -> Iterator[list[str]]:
    """Every SQL statement `app`'s engine runs while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
