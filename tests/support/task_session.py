"""A scripted session of task changes, and the events it must produce; and `settled`,
which closes a test client's response so the jobs it queued run (the inline executor
runs them once the response is closed, as a WSGI server would)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

TASKS = "/api/v1/tasks"
Headers = dict[str, str]
Json = dict[str, Any]


def settled(response: TestResponse) -> TestResponse:
    """`response`, read and closed: the jobs its request queued have run (inline)."""
    response.get_data()
    response.close()
    return response


def scripted_session(client: FlaskClient, headers: Headers) -> list[tuple[str, Json]]:
    """Create, patch, move, replace and delete tasks; return the expected events (type,
    data) in order, data as the API answered."""

    def call(method: str, url: str, **body: Any) -> Json:
        response = settled(client.open(url, method=method, json=body or None, headers=headers))
        assert response.status_code in (200, 201, 204), response.get_json()
        answered: Json = response.get_json(silent=True) or {}
        return answered

    first = call("POST", TASKS, title="Write report", tags=["work"])
    second = call("POST", TASKS, title="Buy milk")
    expected: list[tuple[str, Json]] = [("task.created", first), ("task.created", second)]
    task = f"{TASKS}/{first['id']}"
    expected.append(("task.updated", call("PATCH", task, priority="high")))
    expected.append(("task.status_changed", call("PUT", f"{task}/status", status="completed")))
    # A PUT that moves the status and changes another field: both events, same data.
    replaced = call("PUT", task, title="Report v2", status="pending")
    expected += [("task.status_changed", replaced), ("task.updated", replaced)]
    call("DELETE", f"{TASKS}/{second['id']}")
    expected.append(("task.deleted", {"id": second["id"]}))
    return expected
