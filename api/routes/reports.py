"""Reports: summaries and exports of your tasks, made by background jobs."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import url_for

from api.idempotency import IdempotencyKeyHeader, idempotent
from api.limits import reports_limit
from api.models import Scope
from api.routes.common import ViewResult, response_links
from api.security import current_user, requires
from api.services import reports
from schemas.common import LocationHeader
from schemas.jobs import JobOut
from schemas.reports import ReportIn

bp = APIBlueprint(
    "reports",
    __name__,
    tag={"name": "Reports", "description": "Summaries and exports of your tasks, as jobs."},
    url_prefix="/api/v1/reports",
)


@bp.post("")
@requires(Scope.REPORTS_WRITE)
@reports_limit
@bp.input(IdempotencyKeyHeader, location="headers", arg_name="idempotency")
@bp.input(ReportIn, location="json")
@idempotent
@bp.output(
    JobOut,
    status_code=202,
    headers=LocationHeader,
    description="The queued job; poll `Location` until it has succeeded.",
    links=response_links("job", "job_id", "getJob", "getJobResult"),
)
@bp.doc(
    operation_id="createReport",
    responses={
        409: "A request with this Idempotency-Key is still in progress.",
        422: "Validation failed, or the Idempotency-Key was used with a different request.",
    },
)
def create_report(json_data: dict[str, Any], idempotency: dict[str, Any]) -> ViewResult:
    """Start a report on your tasks.

    `summary` counts tasks by status, priority and tag, overdue ones, and completed ones
    per ISO week; `export` lists every task. `filters` work as in `listTasks` (the same
    tasks: admins' reports cover everyone's). The answer is 202 with the job: poll
    `getJob` (its URL is in `Location`) until `succeeded`, then fetch `getJobResult`.

    In CSV, a text cell starting with `=`, `+`, `-`, `@`, tab or carriage return is
    prefixed with `'`, so spreadsheets do not run it as a formula. Limited to a few
    reports a minute per user. Send an `Idempotency-Key` to make retries safe.
    """
    job = reports.create_report(current_user(), json_data)
    return job, 202, {"Location": url_for("jobs.get_job", job_id=job.id)}
