"""SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from api.extensions import db


def insert_missing(model: Any, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert `rows`, skipping those whose unique `key` exists already.

    Safe against a concurrent insert of the same key: the loser of the race skips the
    row instead of failing the request (`ON CONFLICT DO NOTHING`).
    """
    if not rows:
        return
    # One key order for every caller, so two transactions never wait on each other in
    # opposite orders (deadlock).
    rows = sorted(rows, key=lambda row: row[key])
    dialect = db.session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        db.session.execute(
            insert(model).values(list(rows)).on_conflict_do_nothing(index_elements=[key])
        )
        return
    column = getattr(model, key)  # pragma: no cover - other backends: a savepoint per row
    for row in rows:  # pragma: no cover
        if db.session.scalar(select(column).where(column == row[key])) is None:
            with db.session.begin_nested():
                db.session.add(model(**row))
