"""The problem-details contract, request ids and the headers every response carries."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import Task, User
from api.openapi import TasksAPI
from tests.conftest import make_app
from tests.support.problems import assert_problem

FIELD_ERROR_KEYS = {"location", "field", "message"}
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

TASKS = "/api/v1/tasks"
ME = "/api/v1/users/me"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"

AuthHeaders = Callable[..., dict[str, str]]


def count(app: TasksAPI, model: type[Any]) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("connection to db://admin:hunter2@10.0.0.5 lost")


# --- status codes ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nowhere", "/nowhere", f"{TASKS}/999999"])
def test_unknown_resource_is_404_problem(client: FlaskClient, auth: AuthHeaders, path: str) -> None:
    assert_problem(client.get(path, headers=auth()), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/auth/login", "POST"),
        ("get", REGISTER, "POST"),
        ("post", ME, "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: str
) -> None:
    response = client.open(path, method=method.upper())
    assert_problem(response, 405)
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed in allow
    assert method.upper() not in allow


@pytest.mark.parametrize(
    "body",
    [
        {"data": '{"title": "x"}', "content_type": "text/plain"},
        {"data": {"title": "x"}},  # a form, application/x-www-form-urlencoded
    ],
    ids=["text-plain", "form"],
)
def test_non_json_body_is_415(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, body: dict[str, Any]
) -> None:
    assert_problem(client.post(TASKS, headers=auth(), **body), 415)
    assert count(app, Task) == 0


def test_malformed_json_is_400(app: TasksAPI, client: FlaskClient, auth: AuthHeaders) -> None:
    response = client.post(
        TASKS, data='{"title": "x",', content_type="application/json", headers=auth()
    )
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]
    assert count(app, Task) == 0


def test_body_over_the_default_limit_is_413(app: TasksAPI, client: FlaskClient) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 1024 * 1024
    payload = {"username": "alice", "email": "alice@example.com", "password": "p" * limit}
    body = assert_problem(client.post(REGISTER, json=payload), 413)
    assert str(limit) in body["detail"]
    assert count(app, User) == 0


def test_body_over_a_configured_limit_is_413(tmp_path: Path) -> None:
    small = make_app(f"sqlite:///{tmp_path / 'tasks.db'}", MAX_CONTENT_LENGTH=100)
    payload = {"username": "alice", "email": "alice@example.com", "password": "p" * 100}
    body = assert_problem(small.test_client().post(REGISTER, json=payload), 413)
    assert "100 bytes" in body["detail"]


# --- validation (422) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "location", "field"),
    [
        ("post", TASKS, {"title": ""}, "json", "title"),
        ("post", TASKS, {"title": 5}, "json", "title"),
        ("post", TASKS, {"title": "x", "priority": 2.6e-42}, "json", "priority"),
        ("post", TASKS, {"title": "x", "owner_id": 7}, "json", "owner_id"),
        ("post", TASKS, {"title": "x", "tags": ["ok", ""]}, "json", "tags.1"),
        ("post", TASKS, {"title": "x", "tags": ["ok", "t" * 51]}, "json", "tags.1"),
        ("get", f"{TASKS}?per_page=0", None, "query", "per_page"),
        ("get", f"{TASKS}?sort=colour", None, "query", "sort"),
        ("get", f"{TASKS}?status=done", None, "query", "status.0"),
    ],
)
def test_validation_problem_names_location_and_field(
    app: TasksAPI,
    client: FlaskClient,
    auth: AuthHeaders,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    location: str,
    field: str,
) -> None:
    response = client.open(path, method=method.upper(), json=payload, headers=auth())
    body = assert_problem(response, 422)
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == FIELD_ERROR_KEYS
        assert error["location"] in {"json", "query", "path", "header"}
        assert isinstance(error["message"], str)
        assert error["message"]
    assert (location, field) in {(e["location"], e["field"]) for e in body["errors"]}
    assert count(app, Task) == 0


def test_unknown_query_parameter_is_422(client: FlaskClient, auth: AuthHeaders) -> None:
    # `PageQuery` (schemas/common.py) declares `unknown = RAISE`: "Unknown parameters are
    # refused", so a misspelt filter is an error rather than silently ignored.
    body = assert_problem(client.get(f"{TASKS}?colour=red", headers=auth()), 422)
    assert ("query", "colour") in {(e["location"], e["field"]) for e in body["errors"]}


def test_validation_problem_lists_every_invalid_field(
    client: FlaskClient, auth: AuthHeaders
) -> None:
    payload = {"title": "", "status": "done", "tags": ["a", "b", ""]}
    body = assert_problem(client.post(TASKS, json=payload, headers=auth()), 422)
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert fields == {("json", "title"), ("json", "status"), ("json", "tags.2")}


# --- 500 -------------------------------------------------------------------------------


def test_unexpected_error_is_500_problem_without_internals(
    client: FlaskClient,
    auth: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("api.services.tasks.list_tasks", _boom)
    headers = auth() | {"X-Request-ID": "req-500"}
    with caplog.at_level(logging.ERROR):
        response = client.get(TASKS, headers=headers)

    body = assert_problem(response, 500)
    assert body["request_id"] == "req-500"
    text = response.get_data(as_text=True)
    for leak in ("hunter2", "RuntimeError", "Traceback", "list_tasks", ".py"):
        assert leak not in text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged, "the exception was not logged"
    assert any("req-500" in r.getMessage() for r in logged)
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in logged)


def test_the_app_keeps_serving_after_a_500(
    client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = auth()
    with monkeypatch.context() as patch:
        patch.setattr("api.services.tasks.create_task", _boom)
        assert_problem(client.post(TASKS, json={"title": "x"}, headers=headers), 500)
    assert client.post(TASKS, json={"title": "x"}, headers=headers).status_code == 201


# --- headers on every response ---------------------------------------------------------

Call = Callable[[FlaskClient, dict[str, str], pytest.MonkeyPatch], TestResponse]


def _without_auth(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "Authorization"}


def _server_error(client: FlaskClient, headers: dict[str, str], mp: pytest.MonkeyPatch) -> Any:
    mp.setattr("api.services.tasks.list_tasks", _boom)
    return client.get(TASKS, headers=headers)


# One request of each kind; `headers` carries alice's token and the test's own headers.
RESPONSES: list[tuple[int, Call]] = [
    (200, lambda c, h, mp: c.get("/health/live", headers=_without_auth(h))),
    (200, lambda c, h, mp: c.get(ME, headers=h)),
    (201, lambda c, h, mp: c.post(TASKS, json={"title": "x"}, headers=h)),
    (204, lambda c, h, mp: c.post(LOGOUT, headers=h)),
    (401, lambda c, h, mp: c.get(ME, headers=_without_auth(h))),
    (404, lambda c, h, mp: c.get("/api/v1/nowhere", headers=h)),
    (405, lambda c, h, mp: c.put(ME, json={}, headers=h)),
    (415, lambda c, h, mp: c.post(TASKS, data="x", content_type="text/plain", headers=h)),
    (422, lambda c, h, mp: c.post(TASKS, json={}, headers=h)),
    (500, _server_error),
]
RESPONSE_IDS = ["live", "me", "create", "logout", "401", "404", "405", "415", "422", "500"]


@pytest.fixture(params=RESPONSES, ids=RESPONSE_IDS)
def respond(
    request: pytest.FixtureRequest,
    client: FlaskClient,
    auth: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[dict[str, str]], TestResponse]:
    """Send one kind of request with extra headers; check its status."""
    status, call = request.param
    token = auth()

    def send(headers: dict[str, str]) -> TestResponse:
        response = call(client, token | headers, monkeypatch)
        assert response.status_code == status, response.get_data(as_text=True)
        return response

    return send


def test_every_response_echoes_a_sane_request_id(
    respond: Callable[[dict[str, str]], TestResponse],
) -> None:
    response = respond({"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    if response.status_code >= 400:
        assert assert_problem(response, response.status_code)["request_id"] == "abc-123"


def test_every_response_carries_security_headers(
    respond: Callable[[dict[str, str]], TestResponse],
) -> None:
    response = respond({})
    assert SANE_REQUEST_ID.match(response.headers["X-Request-ID"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "has space", "<script>alert(1)</script>", "a/b", "ünïcode", ""],
    ids=["too-long", "space", "script", "slash", "non-ascii", "empty"],
)
@pytest.mark.parametrize("path", ["/health/live", "/api/v1/nowhere"])
def test_an_insane_request_id_is_replaced(client: FlaskClient, path: str, sent: str) -> None:
    response = client.get(path, headers={"X-Request-ID": sent})
    generated = response.headers["X-Request-ID"]
    assert generated != sent
    assert SANE_REQUEST_ID.match(generated)
    if response.status_code == 404:
        assert response.get_json()["request_id"] == generated


def test_the_longest_sane_request_id_is_kept(client: FlaskClient) -> None:
    sent = "A.b_c:d-" + "9" * 120
    response = client.get("/health/live", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent


def test_each_request_without_an_id_gets_its_own(client: FlaskClient) -> None:
    ids = {client.get("/api/v1/nowhere").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


# --- caching and empty bodies ----------------------------------------------------------


@pytest.mark.parametrize("path", [ME, TASKS, "/api/v1/tags"])
def test_authenticated_gets_are_private(client: FlaskClient, auth: AuthHeaders, path: str) -> None:
    response = client.get(path, headers=auth())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"


def _logout(client: FlaskClient, headers: dict[str, str]) -> TestResponse:
    return client.post(LOGOUT, headers=headers)


def _delete_task(client: FlaskClient, headers: dict[str, str]) -> TestResponse:
    location = client.post(TASKS, json={"title": "x"}, headers=headers).headers["Location"]
    return client.delete(location, headers=headers)


@pytest.mark.parametrize("call", [_logout, _delete_task], ids=["logout", "delete-task"])
def test_204_has_no_body_and_no_content_type(
    client: FlaskClient,
    auth: AuthHeaders,
    call: Callable[[FlaskClient, dict[str, str]], TestResponse],
) -> None:
    response = call(client, auth())
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
