"""A scripted session of task changes, and the events it must produce."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

TASKS = "/api/v1/tasks"
Headers = dict[str, str]
Json = dict[str, Any]


def scripted_session(client: FlaskClient, headers: Headers) -> list[tuple[str, Json]]:
    """Create, patch, move, replace and delete tasks; return the expected events (type,
    data) in order, data as the API answered."""
    expected: list[tuple[str, Json]] = []
    first = client.post(TASKS, json={"title": "Write report", "tags": ["work"]}, headers=headers)
    expected.append(("task.created", first.get_json()))
    task_id = first.get_json()["id"]
    second = client.post(TASKS, json={"title": "Buy milk"}, headers=headers).get_json()
    expected.append(("task.created", second))
    patched = client.patch(f"{TASKS}/{task_id}", json={"priority": "high"}, headers=headers)
    expected.append(("task.updated", patched.get_json()))
    moved = client.put(f"{TASKS}/{task_id}/status", json={"status": "completed"}, headers=headers)
    expected.append(("task.status_changed", moved.get_json()))
    # A PUT that moves the status and changes another field: both events, same data.
    replaced = client.put(
        f"{TASKS}/{task_id}", json={"title": "Report v2", "status": "pending"}, headers=headers
    ).get_json()
    expected += [("task.status_changed", replaced), ("task.updated", replaced)]
    assert client.delete(f"{TASKS}/{second['id']}", headers=headers).status_code == 204
    expected.append(("task.deleted", {"id": second["id"]}))
    return expected
