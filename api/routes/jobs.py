"""Jobs: the state and results of your reports."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response

from api.limits import protected
from api.models import Scope
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult
from api.security import current_user, requires
from api.services import jobs
from api.services.reports import JSON_TYPE
from schemas.jobs import JobList, JobOut, JobQuery
from schemas.reports import ReportSummary, TaskExport

bp = APIBlueprint(
    "jobs",
    __name__,
    tag={"name": "Jobs", "description": "Background jobs: your reports' state and results."},
    url_prefix="/api/v1/jobs",
)

_RESULT = {
    200: {
        "description": "The result: JSON (a summary or an export, as the report's `format` "
        "asked), or a CSV download (`Content-Disposition: attachment`).",
        "content": {
            JSON_TYPE: {"schema": {"oneOf": [ReportSummary, TaskExport]}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "headers": {"Content-Disposition": {}},  # described once in api.openapi
    },
    409: "The job has not succeeded yet (or it failed: `detail` names the error).",
    410: "The result has expired; create a new report.",
}


@bp.get("")
@requires(Scope.REPORTS_WRITE)
@bp.input(JobQuery, location="query")
@bp.output(JobList, headers=ListHeaders, description="One page of your jobs, newest first.")
@bp.doc(operation_id="listJobs")
def list_jobs(query_data: dict[str, Any]) -> ViewResult:
    """List your jobs, newest first.

    Reports you asked for, queued, running or finished; poll `getJob` for one of them.
    Emails the service sends are jobs too, but nobody's to list.
    """
    return paginated(jobs.list_jobs(current_user(), query_data))


@bp.get("/<int:job_id>")
@requires(Scope.REPORTS_WRITE)
@protected
@bp.output(JobOut)
@bp.doc(operation_id="getJob")
def get_job(job_id: int) -> ViewResult:
    """Get a job: its status, timestamps and error.

    Poll it until `status` is `succeeded` (then `result_url` is set) or `failed`.
    Another user's job is a 404, exactly like a job that does not exist.
    """
    return jobs.get_owned_job(current_user(), job_id)


@bp.get("/<int:job_id>/result")
@requires(Scope.REPORTS_WRITE)
@protected
@bp.doc(operation_id="getJobResult", responses=_RESULT)  # type: ignore[arg-type]
def get_job_result(job_id: int) -> Response:
    """Download a job's result.

    JSON, or CSV as a download. 409 until the job has succeeded (and for a failed job,
    naming its error); 410 once the result has expired.
    """
    text, media_type = jobs.job_result(jobs.get_owned_job(current_user(), job_id))
    response = Response(text, mimetype=None, content_type=media_type)
    extension = "csv" if media_type.startswith("text/csv") else "json"
    response.headers["Content-Disposition"] = f'attachment; filename="report-{job_id}.{extension}"'
    return response
