"""SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from api.extensions import db


def insert_missing(model: Any, rows: Sequence[dict[str, Any]], key: str | tuple[str, ...]) -> int:
    """Insert `rows`, skipping those whose unique `key` (a column or columns) exists
    already; return how many were inserted.

    Safe against a concurrent insert of the same key: the loser of the race skips the
    row instead of failing the request (`ON CONFLICT DO NOTHING`).
    """
    if not rows:
        return 0
    columns = (key,) if isinstance(key, str) else key
    # One key order for every caller, so two transactions never wait on each other in
    # opposite orders (deadlock).
    rows = sorted(rows, key=lambda row: tuple(row[column] for column in columns))
    dialect = db.session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(model)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=list(columns))
            # psycopg reports -1 for an INSERT unless SQLAlchemy is asked to keep the count
            .execution_options(preserve_rowcount=True)
        )
        result = db.session.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    inserted = 0  # pragma: no cover - other backends: a savepoint per missing row
    for row in rows:  # pragma: no cover
        match = [getattr(model, column) == row[column] for column in columns]
        if db.session.scalar(select(model).where(*match)) is None:
            with db.session.begin_nested():
                db.session.add(model(**row))
            inserted += 1
    return inserted  # pragma: no cover
