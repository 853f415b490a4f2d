"""Job shapes."""

from __future__ import annotations

from apiflask import Schema, fields
from flask import url_for

from api.models import Job, JobStatus
from schemas.common import EXAMPLE_TIME, Enum, PageQuery, Pagination


def _result_url(job: Job) -> str | None:
    if job.status != JobStatus.SUCCEEDED.value:
        return None
    return url_for("jobs.get_job_result", job_id=job.id)


class JobOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [7]})
    kind = fields.String(required=True, metadata={"examples": ["report"]})
    params = fields.Dict(
        required=True,
        metadata={
            "description": "What the job was asked to do.",
            "examples": [{"kind": "summary", "format": "json", "filters": {"status": ["pending"]}}],
        },
    )
    status = Enum(JobStatus, required=True, metadata={"examples": ["succeeded"]})
    attempts = fields.Integer(
        required=True,
        metadata={"description": "Runs started so far (retries count).", "examples": [1]},
    )
    error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Why the last run failed.", "examples": [None]},
    )
    created_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})
    started_at = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": ["2026-11-30T09:15:01Z"]}
    )
    finished_at = fields.DateTime(
        required=True, allow_none=True, metadata={"examples": ["2026-11-30T09:15:03Z"]}
    )
    expires_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "After this the result is gone (410), then the job too.",
            "examples": ["2026-12-01T09:15:03Z"],
        },
    )
    result_url = fields.Function(
        _result_url,
        required=True,
        allow_none=True,
        metadata={
            "type": "string",
            "description": "Where to get the result, once it succeeded.",
            "examples": ["/api/v1/jobs/7/result"],
        },
    )


class JobList(Schema):
    data = fields.List(fields.Nested(JobOut), required=True)
    pagination = fields.Nested(Pagination, required=True)


class JobQuery(PageQuery):
    status = Enum(JobStatus, metadata={"description": "Only jobs in this status."})
