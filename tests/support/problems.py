"""The one error shape every test checks: RFC 9457 problem details with a request id."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """Check the one error shape (RFC 9457 + request id) and return the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MIMETYPE
    body: dict[str, Any] = response.get_json()
    expected_keys = PROBLEM_KEYS | ({"errors"} if status == 422 else set())
    assert set(body) == expected_keys
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == response.request.path
    assert body["request_id"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_token_refused(response: TestResponse) -> dict[str, Any]:
    """A 401 problem with a Bearer challenge (never Flask-JWT-Extended's 422 `msg`)."""
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body
