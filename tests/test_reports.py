"""Reports as jobs: createReport, listJobs, getJob, getJobResult (inline executor: a job
runs once its response is closed, as after a WSGI server sent it)."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from api.extensions import db
from api.jobs import KINDS
from api.jobs.runner import INTERNAL_ERROR
from api.models import Job, Task
from api.openapi import TasksAPI
from tests.support.auth import AuthHeaders, Headers
from tests.support.db import count, user_id
from tests.support.problems import assert_problem
from tests.support.reports import direct_counts, make_tasks

REPORTS = "/api/v1/reports"
JOBS = "/api/v1/jobs"
Json = dict[str, Any]


def post_report(client: FlaskClient, headers: Headers, **body: Any) -> TestResponse:
    """POST a report and close the response: the inline executor runs the job then."""
    response = client.post(REPORTS, json=body, headers=headers)
    response.close()
    return response


def finished_job(client: FlaskClient, headers: Headers, **body: Any) -> Json:
    response = post_report(client, headers, **body)
    assert response.status_code == 202, response.get_json()
    job = client.get(response.headers["Location"], headers=headers)
    assert job.status_code == 200
    found: Json = job.get_json()
    return found


def result(client: FlaskClient, headers: Headers, job: Json) -> TestResponse:
    return client.get(f"{JOBS}/{job['id']}/result", headers=headers)


# --- creating --------------------------------------------------------------------------


def test_create_answers_202_with_the_queued_job(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    body = {"kind": "export", "format": "csv", "filters": {"tag": " Work ", "overdue": True}}
    response = client.post(REPORTS, json=body, headers=headers)
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"{JOBS}/{job['id']}"
    assert job["status"] == "queued"
    assert (job["kind"], job["attempts"], job["error"], job["result_url"]) == (
        "report",
        0,
        None,
        None,
    )
    assert job["params"] == {
        "kind": "export",
        "format": "csv",
        "filters": body["filters"] | {"tag": "work"},
    }
    assert job["started_at"] is job["finished_at"] is job["expires_at"] is None
    with app.app_context():
        row = db.session.get(Job, job["id"])
        assert row is not None
        assert (row.owner_id, row.status) == (user_id(app, "alice"), "queued")
        assert row.request_id == response.headers["X-Request-ID"]
    response.close()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "pie-chart"},
        {"kind": "summary", "format": "xlsx"},
        {"kind": "summary", "filters": {"owner_id": 1}},
        {"kind": "summary", "filters": {"overdue": "true"}},
        {"kind": "summary", "filters": {"status": ["done"]}},
        {"kind": "summary", "extra": 1},
    ],
    ids=["empty", "kind", "format", "owner-filter", "string-bool", "status", "unknown-field"],
)
def test_a_bad_request_is_422_and_queues_nothing(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, body: Json
) -> None:
    assert_problem(client.post(REPORTS, json=body, headers=auth()), 422)
    assert count(app, Job) == 0


def test_an_api_key_needs_reports_write(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    created = client.post(
        "/api/v1/api-keys", json={"name": "read", "scopes": ["tasks:read"]}, headers=headers
    )
    key = {"X-API-Key": created.get_json()["secret"]}
    body = assert_problem(client.post(REPORTS, json={"kind": "summary"}, headers=key), 403)
    assert "reports:write" in body["detail"]
    assert_problem(client.get(JOBS, headers=key), 403)


# --- results ---------------------------------------------------------------------------


def test_a_summary_matches_the_database(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    make_tasks(client, headers)
    make_tasks(client, auth("bob"))  # never counted in alice's report
    job = finished_job(client, headers, kind="summary")
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert job["result_url"] == f"{JOBS}/{job['id']}/result"
    started, finished = (
        datetime.fromisoformat(job["started_at"]),
        datetime.fromisoformat(job["finished_at"]),
    )
    assert datetime.fromisoformat(job["created_at"]) <= started <= finished
    assert datetime.fromisoformat(job["expires_at"]) - finished == timedelta(days=1)

    response = result(client, headers, job)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert (
        response.headers["Content-Disposition"] == f'attachment; filename="report-{job["id"]}.json"'
    )
    summary = response.get_json()
    expected = direct_counts(app, user_id(app, "alice"))
    assert summary["total"] == expected["total"] == 6
    assert {k: v for k, v in summary["by_status"].items() if v} == expected["by_status"]
    assert summary["by_status"] == {"pending": 3, "in_progress": 1, "completed": 2}
    assert {k: v for k, v in summary["by_priority"].items() if v} == expected["by_priority"]
    assert summary["by_priority"]["low"] == 0
    assert summary["by_tag"] == expected["by_tag"] == {"work": 2, "q4": 1, "home": 1}
    assert summary["overdue"] == expected["overdue"] == 1
    weeks = {"{}-W{:02d}".format(*c.isocalendar()[:2]) for c in expected["completed"]}
    assert summary["completed_per_week"] == dict.fromkeys(weeks, 2)
    assert set(summary) == {
        "total",
        "by_status",
        "by_priority",
        "by_tag",
        "overdue",
        "completed_per_week",
        "generated_at",
    }


def test_filters_narrow_the_report(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    make_tasks(client, headers)
    job = finished_job(
        client, headers, kind="summary", filters={"tag": "WORK", "status": ["pending"]}
    )
    summary = result(client, headers, job).get_json()
    assert (summary["total"], summary["by_tag"], summary["overdue"]) == (
        2,
        {"work": 2, "q4": 1},
        1,
    )


def test_a_csv_export_round_trips_through_the_csv_module(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    created = make_tasks(client, headers)
    job = finished_job(client, headers, kind="export", format="csv")
    response = result(client, headers, job)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    # Like every API GET, a CSV result carries an ETag and revalidates with a 304.
    assert response.headers["ETag"]
    again = client.get(
        response.request.path, headers={**headers, "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="report-{job["id"]}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert [int(row["id"]) for row in rows] == [task["id"] for task in created]
    # Formula-like cells get a leading quote (CSV injection); the rest come back intact.
    assert [row["title"] for row in rows] == [
        'She said "hi", then left',
        "line one\nline two, with a comma",
        '\'=HYPERLINK("http://evil")',
        "'-2+3",
        "'@SUM(A1)",
        "plain",
    ]
    assert rows[5]["description"] == "'+1 on this"
    assert rows[0]["tags"] == "q4;work"
    assert rows[0]["due_date"] == ""
    with app.app_context():
        stored = db.session.get(Task, created[1]["id"])
        assert stored is not None
        assert stored.due_date is not None
        assert rows[1]["due_date"] == stored.due_date.isoformat()
    assert [row["status"] for row in rows] == [task["status"] for task in created]


def test_a_json_export_lists_tasks_as_the_api_shows_them(
    client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice")
    created = make_tasks(client, headers)
    job = finished_job(client, headers, kind="export", format="json")
    body = result(client, headers, job).get_json()
    shown = [client.get(f"/api/v1/tasks/{t['id']}", headers=headers).get_json() for t in created]
    assert body == {"data": shown}


def test_a_csv_summary(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    make_tasks(client, headers)
    job = finished_job(client, headers, kind="summary", format="csv")
    response = result(client, headers, job)
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert rows[0] == ["metric", "key", "count"]
    assert ["total", "", "6"] in rows
    assert ["status", "completed", "2"] in rows
    assert ["tag", "work", "2"] in rows
    assert ["overdue", "", "1"] in rows


# --- not ready, failed, expired, not yours ----------------------------------------------


def test_the_result_is_409_until_the_job_has_run(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    response = client.post(REPORTS, json={"kind": "summary"}, headers=headers)
    job = response.get_json()
    body = assert_problem(result(client, headers, job), 409)
    assert body["detail"] == f"Job {job['id']} is queued; poll it until it has succeeded."
    response.close()  # now the job runs
    assert result(client, headers, job).status_code == 200


def test_a_failed_job_records_its_error_and_its_result_is_409_naming_it(
    app: TasksAPI,
    client: FlaskClient,
    auth: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(job: Job) -> None:
        raise KeyError("no such column")

    monkeypatch.setitem(KINDS, "report", broken)
    headers = auth("alice")
    with caplog.at_level(logging.INFO):
        job = finished_job(client, headers, kind="summary")
    assert job["status"] == "failed"
    assert job["attempts"] == 1  # not a transient error: no retry
    assert job["error"] == INTERNAL_ERROR
    assert job["result_url"] is None
    body = assert_problem(result(client, headers, job), 409)
    assert body["detail"] == f"Job {job['id']} failed, so it has no result: {INTERNAL_ERROR}"
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.getMessage() == f"job {job['id']} (report) failed"
    # The exception's own text is for the log only.
    assert failure.exc_info is not None
    assert "no such column" in str(failure.exc_info[1])
    assert "no such column" not in json.dumps([job, body])
    # The job's log lines carry the id of the request that queued it.
    with app.app_context():
        row = db.session.get(Job, job["id"])
        assert row is not None
        assert failure.request_id == row.request_id is not None  # type: ignore[attr-defined]


def test_an_expired_result_is_410(app: TasksAPI, client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    job = finished_job(client, headers, kind="summary")
    with app.app_context():
        db.session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    body = assert_problem(result(client, headers, job), 410)
    assert "expired" in body["detail"]
    assert client.get(f"{JOBS}/{job['id']}", headers=headers).status_code == 200

    runner = app.test_cli_runner()
    outcome = runner.invoke(args=["jobs", "purge"])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output == "purged 1 jobs\n"
    assert count(app, Job) == 0
    assert client.get(f"{JOBS}/{job['id']}", headers=headers).status_code == 404


@pytest.mark.parametrize("path", ["", "/result"])
def test_another_users_job_is_404(client: FlaskClient, auth: AuthHeaders, path: str) -> None:
    job = finished_job(client, auth("alice"), kind="summary")
    for headers in (auth("bob"), auth("root", role="admin")):
        body = assert_problem(client.get(f"{JOBS}/{job['id']}{path}", headers=headers), 404)
        assert body["detail"] == f"Job {job['id']} does not exist."


def test_system_jobs_are_nobodys(app: TasksAPI, client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    client.post("/api/v1/auth/password-reset", json={"email": "alice@example.com"}).close()
    with app.app_context():
        system = db.session.scalars(select(Job)).one()
        assert system.owner_id is None
    assert_problem(client.get(f"{JOBS}/{system.id}", headers=headers), 404)
    assert client.get(JOBS, headers=headers).get_json()["data"] == []


# --- listing ---------------------------------------------------------------------------


def test_list_jobs_is_paginated_newest_first(client: FlaskClient, auth: AuthHeaders) -> None:
    headers = auth("alice")
    ids = [finished_job(client, headers, kind="summary")["id"] for _ in range(3)]
    finished_job(client, auth("bob"), kind="summary")
    response = client.get(f"{JOBS}?per_page=2", headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    body = response.get_json()
    assert [job["id"] for job in body["data"]] == ids[::-1][:2]
    assert body["pagination"]["pages"] == 2
    assert client.get(f"{JOBS}?status=failed", headers=headers).get_json()["data"] == []
    assert_problem(client.get(f"{JOBS}?status=done", headers=headers), 422)


# --- retries and limits ----------------------------------------------------------------


def test_an_idempotency_key_replays_the_first_job(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    headers = auth("alice") | {"Idempotency-Key": "report-1"}
    first = client.post(REPORTS, json={"kind": "summary"}, headers=headers)
    first.close()
    again = client.post(REPORTS, json={"kind": "summary"}, headers=headers)
    again.close()
    assert again.status_code == 202
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert json.loads(again.data) == json.loads(first.data)
    assert count(app, Job) == 1
    other = client.post(REPORTS, json={"kind": "export"}, headers=headers)
    assert other.status_code == 422
    assert "different request" in other.get_json()["detail"]
    assert count(app, Job) == 1


def test_reports_have_a_stricter_limit_per_user(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATE_LIMIT_REPORTS", "2 per minute")
    alice, bob = auth("alice"), auth("bob")
    for _ in range(2):
        assert post_report(client, alice, kind="summary").status_code == 202
    limited = post_report(client, alice, kind="summary")
    assert_problem(limited, 429)
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert int(limited.headers["Retry-After"]) > 0
    assert post_report(client, bob, kind="summary").status_code == 202  # per user
    assert client.get(JOBS, headers=alice).status_code == 200  # other routes unaffected
    assert count(app, Job) == 3
