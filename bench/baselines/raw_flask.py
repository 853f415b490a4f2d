"""Raw Flask + SQLAlchemy: `GET /api/v1/tasks` with the same token check, user lookup,
data and body as the app's `listTasks` (see bench.baselines), nothing else."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request

from bench.baselines import PATH, pagination, sessions, task_page, verified_user

app = Flask(__name__)


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


@app.get(PATH)
def list_tasks() -> Response:
    page, per_page = int(request.args.get("page", "1")), int(request.args.get("per_page", "20"))
    with sessions() as session:
        user = verified_user(session, request.headers.get("Authorization"))
        if user is None:
            return Response(status=401)
        tasks, total = task_page(session, user.id, page, per_page)
        data = [
            {
                "id": task.id,
                "title": task.title,
                "description": task.description,
                "status": task.status,
                "priority": task.priority,
                "due_date": _iso(task.due_date),
                "tags": [tag.name for tag in task.tags],
                "owner_id": task.owner_id,
                "created_at": _iso(task.created_at),
                "updated_at": _iso(task.updated_at),
                "completed_at": _iso(task.completed_at),
                "version": task.version,
            }
            for task in tasks
        ]
        body = {
            "data": data,
            "pagination": pagination(
                tasks, total, page, per_page, list(request.args.items(multi=True))
            ),
        }
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(payload, mimetype="application/json")
