"""The one error shape (RFC 9457 problem details + request id), checked the same way by
every test module."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

# Written out, not imported from api.errors: the test pins the contract, not the code.
PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}
FIELD_ERROR_KEYS = {"location", "field", "message"}


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


def assert_invalid(response: TestResponse, field: str, location: str = "json") -> dict[str, Any]:
    """A 422 problem whose `errors` name `field` (or an item of it) at `location`."""
    body = assert_problem(response, 422)
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == FIELD_ERROR_KEYS
    named = {e["field"] for e in body["errors"] if e["location"] == location}
    assert any(n == field or n.startswith(f"{field}.") for n in named), body["errors"]
    return body
