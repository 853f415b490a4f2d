"""FastAPI + pydantic: `GET /api/v1/tasks` with the same token check, user lookup, data
and body as the app's `listTasks` (see bench.baselines), as a response model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from bench.baselines import PATH, pagination, sessions, task_page, verified_user

app = FastAPI()
# The app writes RFC 3339 with `+00:00`, as `datetime.isoformat` does (pydantic: `Z`).
Moment = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    status: str
    priority: str
    due_date: Moment | None
    tags: list[str] = Field(validation_alias="tag_names")
    owner_id: int
    created_at: Moment
    updated_at: Moment
    completed_at: Moment | None
    version: int


class Pagination(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int
    next: str | None
    prev: str | None
    next_cursor: str | None


class TaskList(BaseModel):
    data: list[TaskOut]
    pagination: Pagination


@app.get(PATH, response_model=TaskList)
def list_tasks(
    request: Request,
    page: int = 1,
    per_page: int = 20,
    authorization: Annotated[str | None, Header()] = None,
) -> TaskList:
    # A sync endpoint: FastAPI runs it in its thread pool, as a blocking driver needs.
    with sessions() as session:
        user = verified_user(session, authorization)
        if user is None:
            raise HTTPException(401)
        tasks, total = task_page(session, user.id, page, per_page)
        return TaskList(
            data=[TaskOut.model_validate(task) for task in tasks],
            pagination=Pagination(
                **pagination(tasks, total, page, per_page, request.query_params.multi_items())
            ),
        )
