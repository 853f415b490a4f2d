"""Tasks: the caller's own (admins: everyone's)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema
from flask import current_app, url_for

from api.cache import cached
from api.conditional import ETagHeader, IfMatchHeader, check_if_match, task_etag, use_etag
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.limits import protected
from api.models import Scope, Task
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult, response_links
from api.security import current_user, requires
from api.serialization import compile_dumper, dumped_attributes
from api.services import tasks
from schemas.common import LocationHeader
from schemas.tasks import TaskIn, TaskList, TaskOut, TaskPatchIn, TaskQuery, TaskStatusIn

bp = APIBlueprint(
    "tasks",
    __name__,
    tag={"name": "Tasks", "description": "Your tasks (admins see everyone's)."},
    url_prefix="/api/v1/tasks",
)


class CreatedTaskHeaders(LocationHeader, ETagHeader):
    pass


_dump_task = compile_dumper(TaskOut())
_TASK_ATTRIBUTES = dumped_attributes(TaskOut())

_STALE = {
    409: "Sent without If-Match, the change lost the race to concurrent changes several "
    "times in a row (a change without If-Match is never a 412: it is applied again to the "
    "task's newest version).",
    412: "The task changed since the If-Match ETag was read (or during this request).",
    428: "This server requires If-Match on changes.",
}


def _with_etag(task: Task, status: int = 200, **headers: str) -> ViewResult:
    use_etag(task_etag(task))
    return task, status, headers


def _changed(task_id: int, preconditions: dict[str, Any], changes: dict[str, Any]) -> ViewResult:
    """Apply `changes` to the caller's task if its If-Match still holds."""
    task = tasks.get_owned_task(current_user(), task_id)
    if_match = preconditions.get("if_match")
    check_if_match(task, if_match)
    return _with_etag(tasks.update_task(task, changes, conditional=if_match is not None))


_OPERATIONS_ON_A_TASK = response_links(
    "task",
    "task_id",
    "getTask",
    "updateTask",
    "replaceTask",
    "setTaskStatus",
    "deleteTask",
    "uploadAttachment",
    "listAttachments",
)


@bp.get("")
@requires(Scope.TASKS_READ)
@cached
@bp.input(TaskQuery, location="query")
@bp.output(TaskList, headers=ListHeaders, description="One page of tasks.")
@bp.doc(operation_id="listTasks", responses={403: "`owner_id` is for admins."})
def list_tasks(query_data: dict[str, Any]) -> ViewResult:
    """List tasks, filtered, sorted and paginated.

    Filters combine with AND; repeat `status` or `priority` to match any of several values.
    The body has `data` and `pagination`; the `Link` and `X-Total-Count` headers say the same.
    """
    page = tasks.list_tasks(current_user(), query_data, _TASK_ATTRIBUTES)
    body, _, headers = paginated(page)
    # The hot path: rows (exactly the columns TaskOut reads) dumped by a dumper compiled
    # from TaskOut, the shape TaskList documents; APIFlask passes this Response through.
    body["data"] = [_dump_task(task) for task in body["data"]]
    response = current_app.json.response(body)
    response.headers.update(headers)
    return response


@bp.post("")
@requires(Scope.TASKS_WRITE)
@bp.input(IdempotencyKeyHeader, location="headers", arg_name="idempotency")
@bp.input(TaskIn, location="json")
@idempotent
@bp.output(
    TaskOut,
    status_code=201,
    headers=CreatedTaskHeaders,
    description="The new task.",
    links=_OPERATIONS_ON_A_TASK,
)
@bp.doc(operation_id="createTask")
def create_task(json_data: dict[str, Any], idempotency: dict[str, Any]) -> ViewResult:
    """Create a task.

    Only `title` is required. Tags are trimmed, lower-cased and de-duplicated. The answer is
    201 with the task, its URL in `Location` and its `ETag`.

    Send an `Idempotency-Key` to make retries safe: a retry with the same key and body
    answers like the first request (with `Idempotency-Replayed: true`) and creates nothing.
    """
    task = tasks.create_task(current_user(), json_data)
    return _with_etag(task, 201, Location=url_for(".get_task", task_id=task.id))


@bp.get("/<int:task_id>")
@requires(Scope.TASKS_READ)
@protected
@cached
@bp.output(TaskOut, headers=ETagHeader)
@bp.doc(operation_id="getTask")
def get_task(task_id: int) -> ViewResult:
    """Get a task.

    Another user's task is a 404, exactly like a task that does not exist.
    """
    return _with_etag(tasks.get_owned_task(current_user(), task_id))


@bp.put("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@protected
@bp.input(IfMatchHeader, location="headers", arg_name="preconditions")
@bp.input(TaskIn, location="json")
@bp.output(TaskOut, headers=ETagHeader)
@bp.doc(operation_id="replaceTask", responses=_STALE)
def replace_task(
    task_id: int, preconditions: dict[str, Any], json_data: dict[str, Any]
) -> ViewResult:
    """Replace a task; fields left out take their defaults.

    Send the whole task: a field left out is reset (no description, no due date, no tags,
    `pending`, `medium`). To change some fields only, use `updateTask`.
    """
    return _changed(task_id, preconditions, json_data)


@bp.patch("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@protected
@bp.input(IfMatchHeader, location="headers", arg_name="preconditions")
@bp.input(TaskPatchIn, location="json")
@bp.output(TaskOut, headers=ETagHeader)
@bp.doc(operation_id="updateTask", responses=_STALE)
def update_task(
    task_id: int, preconditions: dict[str, Any], json_data: dict[str, Any]
) -> ViewResult:
    """Change some fields of a task.

    Send at least one field; the others keep their values. `version` goes up by one.
    """
    return _changed(task_id, preconditions, json_data)


@bp.put("/<int:task_id>/status")
@requires(Scope.TASKS_WRITE)
@protected
@bp.input(IfMatchHeader, location="headers", arg_name="preconditions")
@bp.input(TaskStatusIn, location="json")
@bp.output(TaskOut, headers=ETagHeader)
@bp.doc(operation_id="setTaskStatus", responses=_STALE)
def set_task_status(
    task_id: int, preconditions: dict[str, Any], json_data: dict[str, Any]
) -> ViewResult:
    """Move a task to another status (`completed_at` follows).

    `completed` sets `completed_at` (once); any other status clears it.
    """
    return _changed(task_id, preconditions, json_data)


@bp.delete("/<int:task_id>")
@requires(Scope.TASKS_WRITE)
@protected
@bp.input(IfMatchHeader, location="headers", arg_name="preconditions")
@bp.output(EmptySchema, status_code=204, description="Deleted.")
@bp.doc(operation_id="deleteTask", responses=_STALE)
def delete_task(task_id: int, preconditions: dict[str, Any]) -> ViewResult:
    """Delete a task.

    The answer is 204 with no body; the task is gone for good (a later read is a 404).
    """
    task = tasks.get_owned_task(current_user(), task_id)
    if_match = preconditions.get("if_match")
    check_if_match(task, if_match)
    tasks.delete_task(task, conditional=if_match is not None)
    return "", 204
