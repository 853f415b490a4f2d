"""Job shapes."""

from __future__ import annotations

from apiflask import Schema, fields
from flask import url_for

from api.models import Job, JobStatus
from schemas.common import Enum, PageQuery, Pagination


def _result_url(job: Job) -> str | None:
    if job.status != JobStatus.SUCCEEDED.value:
        return None
    return url_for("jobs.get_job_result", job_id=job.id)


class JobOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 7})
    kind = fields.String(required=True, metadata={"example": "report"})
    params = fields.Dict(required=True, metadata={"description": "What the job was asked to do."})
    status = Enum(JobStatus, required=True)
    attempts = fields.Integer(
        required=True, metadata={"description": "Runs started so far (retries count)."}
    )
    error = fields.String(
        required=True, allow_none=True, metadata={"description": "Why the last run failed."}
    )
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    expires_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "After this the result is gone (410), then the job too."},
    )
    result_url = fields.Function(
        _result_url,
        required=True,
        allow_none=True,
        metadata={"type": "string", "description": "Where to get the result, once it succeeded."},
    )


class JobList(Schema):
    data = fields.List(fields.Nested(JobOut), required=True)
    pagination = fields.Nested(Pagination, required=True)


class JobQuery(PageQuery):
    status = Enum(JobStatus, metadata={"description": "Only jobs in this status."})
