"""FastAPI + uvicorn with a pydantic response model: the same query and JSON as
`listTasks`, no auth or limits."""

from __future__ import annotations

import os
from datetime import datetime

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import create_engine

from bench.baselines import COUNT, TAGS, TASKS

engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
app = FastAPI()


class TaskOut(BaseModel):
    id: int
    title: str
    description: str | None
    status: str
    priority: str
    due_date: datetime | None
    tags: list[str]
    owner_id: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


class Pagination(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int
    next: str | None
    prev: str | None


class TaskList(BaseModel):
    data: list[TaskOut]
    pagination: Pagination


@app.get("/tasks", response_model=TaskList)
def list_tasks(owner: int = 1, page: int = 1, per_page: int = 20) -> TaskList:
    # A sync endpoint: FastAPI runs it in its thread pool, as a blocking driver needs.
    with engine.connect() as conn:
        rows = conn.execute(
            TASKS, {"owner": owner, "limit": per_page, "offset": (page - 1) * per_page}
        ).all()
        tags: dict[int, list[str]] = {}
        for task_id, name in conn.execute(TAGS, {"ids": [row.id for row in rows]}):
            tags.setdefault(task_id, []).append(name)
        total = conn.execute(COUNT, {"owner": owner}).scalar_one()
    data = [TaskOut(**row._mapping, tags=tags.get(row.id, [])) for row in rows]
    pages = -(-total // per_page)
    return TaskList(
        data=data,
        pagination=Pagination(
            page=page, per_page=per_page, total=total, pages=pages, next=None, prev=None
        ),
    )
