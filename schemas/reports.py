"""Report shapes: the request, and the two JSON results (`getJobResult`)."""

from __future__ import annotations

from apiflask import Schema, fields, validators

from schemas.common import EXAMPLE_TIME, StrictBoolean
from schemas.tasks import TaskFilters, TaskOut

REPORT_KINDS = ("summary", "export")
REPORT_FORMATS = ("json", "csv")


class ReportFilters(TaskFilters):
    """The tasks a report covers, as `listTasks` filters them (admins: everyone's)."""

    overdue = StrictBoolean(
        metadata={
            "description": "`true`: past due and not completed; `false`: the others.",
            "examples": [True],
        }
    )


class ReportIn(Schema):
    kind = fields.String(
        required=True,
        validate=validators.OneOf(REPORT_KINDS),
        metadata={
            "description": "`summary`: counts by status, priority, tag and completion week; "
            "`export`: every matching task.",
            "examples": ["summary"],
        },
    )
    format = fields.String(
        load_default="json",
        validate=validators.OneOf(REPORT_FORMATS),
        metadata={"description": "Media type of the result: JSON or CSV.", "examples": ["csv"]},
    )
    filters = fields.Nested(
        ReportFilters,
        load_default=dict,
        metadata={"examples": [{"status": ["pending", "in_progress"], "tag": "work"}]},
    )


class ReportSummary(Schema):
    """A `summary` report as JSON."""

    total = fields.Integer(
        required=True, metadata={"description": "Tasks covered.", "examples": [12]}
    )
    by_status = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"examples": [{"pending": 5, "in_progress": 3, "completed": 4}]},
    )
    by_priority = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"examples": [{"low": 2, "medium": 6, "high": 3, "urgent": 1}]},
    )
    by_tag = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "Tasks per tag (a task with two tags counts for each).",
            "examples": [{"work": 7, "q4": 4}],
        },
    )
    overdue = fields.Integer(
        required=True, metadata={"description": "Past due, not completed.", "examples": [2]}
    )
    completed_per_week = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "Completed tasks by ISO week of `completed_at` (UTC), e.g. `2026-W05`.",
            "examples": [{"2026-W47": 1, "2026-W48": 3}],
        },
    )
    generated_at = fields.DateTime(required=True, metadata={"examples": [EXAMPLE_TIME]})


class TaskExport(Schema):
    """An `export` report as JSON: the matching tasks, by id."""

    data = fields.List(fields.Nested(TaskOut), required=True)
