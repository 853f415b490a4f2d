"""Baseline servers the benchmark compares Tasks API with.

Each baseline does the work `listTasks` does, written the way a small Flask or FastAPI
service usually is: verify the same JWT with PyJWT, look the user up, read the page of
the user's tasks with their tags and the total through a SQLAlchemy ORM session (the
project's own models), and answer the same body, byte for byte (bench/run.py checks).
It skips what the app adds on top (rate limits, the blocklist, query validation, ETags,
headers, logging), so the ratios state what the app's whole stack costs against them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import jwt
from itsdangerous import URLSafeSerializer
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from api.models import Task, User

PATH = "/api/v1/tasks"
engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
sessions = sessionmaker(engine, expire_on_commit=False)


def verified_user(session: Session, authorization: str | None) -> User | None:
    """The active user a valid `Bearer` access token names (PyJWT, the app's secret)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        claims = jwt.decode(
            token,
            os.environ["JWT_SECRET_KEY"],
            algorithms=["HS256"],
            options={"require": ["exp", "jti", "sub", "type"]},
        )
    except jwt.PyJWTError:
        return None
    if claims["type"] != "access":
        return None
    user = session.get(User, int(claims["sub"]))
    return user if user is not None and user.is_active else None


def task_page(session: Session, owner_id: int, page: int, per_page: int) -> tuple[list[Task], int]:
    """The user's tasks, newest first (listTasks' default sort), with tags, and the total."""
    tasks = session.scalars(
        select(Task)
        .options(selectinload(Task.tags))
        .where(Task.owner_id == owner_id)
        .order_by(Task.created_at.desc(), Task.id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    total = session.scalar(select(func.count(Task.id)).where(Task.owner_id == owner_id)) or 0
    return list(tasks), total


def _page_url(args: Sequence[tuple[str, str]], page: int) -> str:
    kept = [(key, value) for key, value in args if key != "page"]
    return f"{PATH}?{urlencode([*kept, ('page', str(page))])}"


def _cursor(task: Task) -> str:
    """The app's keyset cursor: its sort and values, signed with SECRET_KEY (itsdangerous)."""
    payload = ["-created_at,id", [task.created_at.isoformat(), task.id]]
    signer = URLSafeSerializer(os.environ["SECRET_KEY"], salt="tasks-cursor")
    return str(signer.dumps(payload))


def pagination(
    tasks: Sequence[Task], total: int, page: int, per_page: int, args: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """`pagination` exactly as the app builds it (next/prev links, the keyset cursor)."""
    pages = math.ceil(total / per_page)
    return {
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
        "next": _page_url(args, page + 1) if page < pages else None,
        "prev": None if page <= 1 else _page_url(args, min(page - 1, max(pages, 1))),
        "next_cursor": _cursor(tasks[-1]) if len(tasks) == per_page else None,
    }
