"""Raw Flask + SQLAlchemy Core: the same list query and JSON as `listTasks`, with no auth,
limits, validation or schemas. What the framework stack costs is measured against this."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import create_engine

from bench.baselines import COUNT, TAGS, TASKS

engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
app = Flask(__name__)


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


@app.get("/tasks")
def list_tasks() -> Any:
    owner = int(request.args.get("owner", "1"))
    page, per_page = int(request.args.get("page", "1")), int(request.args.get("per_page", "20"))
    with engine.connect() as conn:
        rows = conn.execute(
            TASKS, {"owner": owner, "limit": per_page, "offset": (page - 1) * per_page}
        ).all()
        tags: dict[int, list[str]] = {}
        for task_id, name in conn.execute(TAGS, {"ids": [row.id for row in rows]}):
            tags.setdefault(task_id, []).append(name)
        total = conn.execute(COUNT, {"owner": owner}).scalar_one()
    data = [
        {
            "id": row.id,
            "title": row.title,
            "description": row.description,
            "status": row.status,
            "priority": row.priority,
            "due_date": _iso(row.due_date),
            "tags": tags.get(row.id, []),
            "owner_id": row.owner_id,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
            "completed_at": _iso(row.completed_at),
            "version": row.version,
        }
        for row in rows
    ]
    pages = -(-total // per_page)
    return jsonify(
        {
            "data": data,
            "pagination": {
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": pages,
                "next": None,
                "prev": None,
            },
        }
    )
