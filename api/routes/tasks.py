"""Tasks: the caller's own (admins: everyone's)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema
from flask import url_for

from api.models import Scope
from api.pagination import ListHeaders, paginated
from api.routes import ViewResult
from api.security import current_user, requires
from api.services import tasks
from schemas.common import LocationHeader
from schemas.tasks import TaskIn, TaskList, TaskOut, TaskPatchIn, TaskQuery, TaskStatusIn

bp = APIBlueprint("tasks", __name__, tag="Tasks", url_prefix="/api/v1/tasks")

_CHANGED = {409: "The task changed during the request; fetch it and retry."}


@bp.get("")
@requires(Scope.TASKS_READ)
@bp.input(TaskQuery, location="query")
@bp.output(TaskList, headers=ListHeaders, description="One page of tasks.")
@bp.doc(operation_id="listTasks", responses={403: "`owner_id` is for admins."})
def list_tasks(query_data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """List tasks, filtered, sorted and paginated."""
    return paginated(tasks.list_tasks(current_user(), query_data))


@bp.post("")
@requires(Scope.TASKS_WRITE)
@bp.input(TaskIn, location="json")
@bp.output(TaskOut, status_code=201, headers=LocationHeader, description="The new task.")
@bp.doc(operation_id="createTask")
def create_task(json_data: dict[str, Any]) -> ViewResult:
    """Create a task."""
    task = tasks.create_task(current_user(), json_data)
    return task, 201, {"Location": url_for(".get_task", task_id=task.id)}


@bp.get("/<int:task_id>")
@requires(Scope.TASKS_READ)
@bp.output(TaskOut)
@bp.doc(operation_id="getTask")
def get_task(task_id: int) -> ViewResult:
    """Get a task."""
    return tasks.get_owned_task(current_user(), task_id)


@bp.put("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@bp.input(TaskIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="replaceTask", responses=_CHANGED)
def replace_task(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Replace a task; fields left out take their defaults."""
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.patch("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@bp.input(TaskPatchIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="updateTask", responses=_CHANGED)
def update_task(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Change some fields of a task."""
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.put("/<int:task_id>/status")
@requires(Scope.TASKS_WRITE)
@bp.input(TaskStatusIn, location="json")
@bp.output(TaskOut)
@bp.doc(operation_id="setTaskStatus", responses=_CHANGED)
def set_task_status(task_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Move a task to another status (`completed_at` follows)."""
    return tasks.update_task(tasks.get_owned_task(current_user(), task_id), json_data)


@bp.delete("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@bp.output(EmptySchema, status_code=204, description="Deleted.")
@bp.doc(operation_id="deleteTask", responses=_CHANGED)
def delete_task(task_id: int) -> tuple[str, int]:
    """Delete a task."""
    tasks.delete_task(tasks.get_owned_task(current_user(), task_id))
    return "", 204
