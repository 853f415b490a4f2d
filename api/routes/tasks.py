"""Tasks: the caller's own (admins: everyone's)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema
from flask import url_for

from api.pagination import ListHeaders, paginated
from api.routes import ViewResult
from api.security import current_user, token_auth
from api.services import tasks
from schemas.common import LocationHeader
from schemas.tasks import TaskIn, TaskList, TaskOut, TaskPatchIn, TaskQuery, TaskStatusIn

bp = APIBlueprint(
    "tasks",
    __name__,
    tag={"name": "Tasks", "description": "Your tasks (admins see everyone's)."},
    url_prefix="/api/v1/tasks",
)

_CHANGED = {409: "The task changed during the request; fetch it and retry."}


def _task_links(*operation_ids: str) -> dict[str, dict[str, Any]]:
    """OpenAPI links from a response that carries a task to the operations on that task
    (SDK generators and stateful testers follow them)."""
    return {
        operation_id: {
            "operationId": operation_id,
            "parameters": {"task_id": "$response.body#/id"},
            "description": f"`id` of the task in this response, as `task_id` of `{operation_id}`.",
        }
        for operation_id in operation_ids
    }


_OPERATIONS_ON_A_TASK = _task_links(
    "getTask", "updateTask", "replaceTask", "setTaskStatus", "deleteTask"
)


@bp.get("")
@bp.auth_required(token_auth)
@bp.input(TaskQuery, location="query")
@bp.output(TaskList, headers=ListHeaders, description="One page of tasks.")
@bp.doc(operation_id="listTasks", responses={403: "`owner_id` is for admins."})
def list_tasks(query_data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """List tasks, filtered, sorted and paginated.

    Filters combine with AND; repeat `status` or `priority` to match any of several values.
    The body has `data` and `pagination`; the `Link` and `X-Total-Count` headers say the same.
    """
    return paginated(tasks.list_tasks(current_user(), query_data))


@bp.post("")
@bp.auth_required(token_auth)
@bp.input(TaskIn, location="json")
@bp.output(
    TaskOut,
    status_code=201,
    headers=LocationHeader,
    description="The new task.",
    links=_OPERATIONS_ON_A_TASK,
)
@bp.doc(operation_id="createTask")
def create_task(json_data: dict[str, Any]) -> ViewResult:
    """Create a task.

    Only `title` is required. Tags are trimmed, lower-cased and de-duplicated. The answer is
    201 with the task and its URL in `Location`.
    """
    task = tasks.create_task(current_user(), json_data)
    return task, 201, {"Location": url_for(".get_task", task_id=task.id)}


@bp.get("/<int:task_id>")
@bp.auth_required(token_auth)
@bp.output(TaskOut)
@bp.doc(operation_id="getTask")
def get_task(task_id: int) -> ViewResult:
    """Get a task.

    Another user's task is a 404, exactly like a task that does not exist.
    """
    return tasks.get_owned_task(current_user(), task_id)


@bp.put("/<int:task_id>")
@bp.auth_required(token_auth)
@bp.input(TaskIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="replaceTask", responses=_CHANGED)
def replace_task(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Replace a task; fields left out take their defaults.

    Send the whole task: a field left out is reset (no description, no due date, no tags,
    `pending`, `medium`). To change some fields only, use `updateTask`.
    """
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.patch("/<int:task_id>")
@bp.auth_required(token_auth)
@bp.input(TaskPatchIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="updateTask", responses=_CHANGED)
def update_task(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Change some fields of a task.

    Send at least one field; the others keep their values. `version` goes up by one.
    """
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.put("/<int:task_id>/status")
@bp.auth_required(token_auth)
@bp.input(TaskStatusIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="setTaskStatus", responses=_CHANGED)
def set_task_status(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Move a task to another status (`completed_at` follows).

    `completed` sets `completed_at` (once); any other status clears it.
    """
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.delete("/<int:task_id>")
@bp.auth_required(token_auth)
@bp.output(EmptySchema, status_code=204, description="Deleted.")
@bp.doc(operation_id="deleteTask", responses=_CHANGED)
def delete_task(task_id: int) -> tuple[str, int]:
    """Delete a task.

    The answer is 204 with no body; the task is gone for good (a later read is a 404).
    """
    tasks.delete_task(tasks.get_owned_task(current_user(), task_id))
    return "", 204
