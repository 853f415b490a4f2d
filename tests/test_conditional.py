"""Conditional requests: ETags, If-None-Match → 304, If-Match → 412 / 428, and no lost
update when two clients change a task at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import Task
from api.openapi import TasksAPI
from api.paths import is_api_path
from tests.support.auth import AuthHeaders, Headers
from tests.support.headers import assert_security_headers
from tests.support.problems import assert_problem

TASKS = "/api/v1/tasks"
Json = dict[str, Any]

# The operations that change a task: (method, suffix, body).
CHANGES: dict[str, tuple[str, str, Json | None]] = {
    "replaceTask": ("PUT", "", {"title": "Replaced", "priority": "high"}),
    "updateTask": ("PATCH", "", {"title": "Patched"}),
    "setTaskStatus": ("PUT", "/status", {"status": "completed"}),
    "deleteTask": ("DELETE", "", None),
}
CHANGE_IDS = list(CHANGES)


def create(client: FlaskClient, headers: Headers, title: str = "A task") -> TestResponse:
    response = client.post(TASKS, json={"title": title}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response


def change(
    client: FlaskClient, operation: str, task_id: int, headers: Headers, **extra: str
) -> TestResponse:
    method, suffix, body = CHANGES[operation]
    return client.open(
        f"{TASKS}/{task_id}{suffix}", method=method, json=body, headers={**headers, **extra}
    )


def row(app: TasksAPI, task_id: int) -> Json | None:
    """The task's columns, or None when it is gone."""
    with app.app_context():
        task = db.session.get(Task, task_id)
        if task is None:
            return None
        return {attr.key: getattr(task, attr.key) for attr in Task.__mapper__.column_attrs}


def etag_of(response: TestResponse) -> str:
    """The response's ETag: present, strong and quoted."""
    etag = response.headers["ETag"]
    assert etag.startswith('"'), etag
    assert etag.endswith('"'), etag
    return etag


def assert_not_modified(response: TestResponse, etag: str) -> None:
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert "Content-Type" not in response.headers
    assert response.headers["X-Request-ID"]
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert_security_headers(response)


# --- ETag and If-None-Match ------------------------------------------------------------


def test_created_task_etag_matches_the_one_get_answers(client: FlaskClient, alice: Headers) -> None:
    created = create(client, alice)
    task_id = created.get_json()["id"]
    got = client.get(f"{TASKS}/{task_id}", headers=alice)
    assert got.status_code == 200
    assert etag_of(got) == etag_of(created)


def test_get_task_with_matching_if_none_match_is_304_without_body(
    client: FlaskClient, alice: Headers
) -> None:
    task_id = create(client, alice).get_json()["id"]
    first = client.get(f"{TASKS}/{task_id}", headers=alice)
    etag = etag_of(first)
    for _ in range(2):  # the second answer comes from the response cache
        again = client.get(f"{TASKS}/{task_id}", headers={**alice, "If-None-Match": etag})
        assert_not_modified(again, etag)
    other = client.get(f"{TASKS}/{task_id}", headers={**alice, "If-None-Match": '"0.0"'})
    assert other.status_code == 200
    assert other.get_json() == first.get_json()


@pytest.mark.parametrize(
    "precondition",
    [{"If-Match": '"not-this-one"'}, {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}],
)
def test_a_get_ignores_the_write_preconditions(
    client: FlaskClient, alice: Headers, precondition: dict[str, str]
) -> None:
    """If-Match and If-Unmodified-Since are declared on writes only: a GET answers 200."""
    task_id = create(client, alice).get_json()["id"]
    response = client.get(f"{TASKS}/{task_id}", headers={**alice, **precondition})
    assert response.status_code == 200
    assert response.get_json()["id"] == task_id


def test_list_has_an_etag_that_changes_with_the_list(client: FlaskClient, alice: Headers) -> None:
    create(client, alice, "One")
    first = client.get(TASKS, headers=alice)
    assert first.status_code == 200
    etag = etag_of(first)
    assert_not_modified(client.get(TASKS, headers={**alice, "If-None-Match": etag}), etag)
    create(client, alice, "Two")
    changed = client.get(TASKS, headers={**alice, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["pagination"]["total"] == 2
    assert etag_of(changed) != etag


@pytest.mark.parametrize("operation", ["replaceTask", "updateTask", "setTaskStatus"])
def test_after_a_change_the_old_etag_no_longer_matches(
    client: FlaskClient, alice: Headers, operation: str
) -> None:
    task_id = create(client, alice).get_json()["id"]
    old = etag_of(client.get(f"{TASKS}/{task_id}", headers=alice))
    changed = change(client, operation, task_id, alice)
    assert changed.status_code == 200
    fresh = client.get(f"{TASKS}/{task_id}", headers={**alice, "If-None-Match": old})
    assert fresh.status_code == 200
    assert fresh.get_json() == changed.get_json()
    assert etag_of(fresh) == etag_of(changed) != old


# --- If-Match → 412, 428 ---------------------------------------------------------------


@pytest.mark.parametrize("operation", CHANGE_IDS)
@pytest.mark.parametrize("stale", ["previous", "weak", "other task"])
def test_stale_if_match_is_412_and_changes_nothing(
    app: TasksAPI, client: FlaskClient, alice: Headers, operation: str, stale: str
) -> None:
    first = create(client, alice)
    task_id = first.get_json()["id"]
    current = etag_of(client.patch(f"{TASKS}/{task_id}", json={"title": "v2"}, headers=alice))
    if_match = {
        "previous": etag_of(first),
        "weak": f"W/{current}",  # If-Match compares strongly (RFC 9110)
        "other task": etag_of(create(client, alice, "Other")),
    }[stale]
    before = row(app, task_id)
    response = change(client, operation, task_id, alice, **{"If-Match": if_match})
    body = assert_problem(response, 412)
    assert str(task_id) in body["detail"]
    assert row(app, task_id) == before


@pytest.mark.parametrize("operation", CHANGE_IDS)
@pytest.mark.parametrize("how", ["current", "star", "one of a list"])
def test_matching_if_match_is_accepted(
    app: TasksAPI, client: FlaskClient, alice: Headers, operation: str, how: str
) -> None:
    created = create(client, alice)
    task_id = created.get_json()["id"]
    etag = etag_of(created)
    if_match = {"current": etag, "star": "*", "one of a list": f'"0.0", {etag}'}[how]
    response = change(client, operation, task_id, alice, **{"If-Match": if_match})
    if operation == "deleteTask":
        assert response.status_code == 204
        assert row(app, task_id) is None
        return
    assert response.status_code == 200, response.get_json()
    new_etag = etag_of(response)
    assert new_etag != etag
    stored = row(app, task_id)
    assert stored is not None
    assert stored["version"] == response.get_json()["version"] == created.get_json()["version"] + 1
    assert etag_of(client.get(f"{TASKS}/{task_id}", headers=alice)) == new_etag


@pytest.mark.parametrize("operation", CHANGE_IDS)
def test_missing_if_match_is_428_when_required(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    created = create(client, alice)
    task_id = created.get_json()["id"]
    monkeypatch.setitem(app.config, "REQUIRE_IF_MATCH", True)
    before = row(app, task_id)
    body = assert_problem(change(client, operation, task_id, alice), 428)
    assert "If-Match" in body["detail"]
    assert row(app, task_id) == before
    # with it, the change goes through
    accepted = change(client, operation, task_id, alice, **{"If-Match": etag_of(created)})
    assert accepted.status_code in (200, 204)


# Not "*" nor a list of quoted entity tags (RFC 9110 section 8.8.3), or too long.
MALFORMED_ETAGS = ["", "42.1", '"42.1" "42.2"', 'w/"42.1"', '"42.1", *', '"' + "x" * 1023 + '"']


@pytest.mark.parametrize("operation", CHANGE_IDS)
@pytest.mark.parametrize("if_match", MALFORMED_ETAGS)
def test_malformed_if_match_is_422_naming_the_header(
    app: TasksAPI, client: FlaskClient, alice: Headers, operation: str, if_match: str
) -> None:
    task_id = create(client, alice).get_json()["id"]
    before = row(app, task_id)
    body = assert_problem(change(client, operation, task_id, alice, **{"If-Match": if_match}), 422)
    assert {(e["location"], e["field"]) for e in body["errors"]} == {("header", "If-Match")}
    assert row(app, task_id) == before


@pytest.mark.parametrize("if_none_match", MALFORMED_ETAGS)
@pytest.mark.parametrize("path", ["", "/{task_id}"])
def test_malformed_if_none_match_is_422_naming_the_header(
    client: FlaskClient, alice: Headers, if_none_match: str, path: str
) -> None:
    task_id = create(client, alice).get_json()["id"]
    url = TASKS + path.format(task_id=task_id)
    response = client.get(url, headers={**alice, "If-None-Match": if_none_match})
    body = assert_problem(response, 422)
    assert body["errors"][0]["location"] == "header"
    assert {e["field"] for e in body["errors"]} == {"If-None-Match"}
    # authentication and a missing task speak first
    assert_problem(client.get(url, headers={"If-None-Match": if_none_match}), 401)
    missing = client.get(f"{TASKS}/999", headers={**alice, "If-None-Match": if_none_match})
    assert_problem(missing, 404)


@pytest.mark.parametrize("operation", CHANGE_IDS)
def test_missing_if_match_is_accepted_by_default(
    app: TasksAPI, client: FlaskClient, alice: Headers, operation: str
) -> None:
    assert app.config["REQUIRE_IF_MATCH"] is False
    task_id = create(client, alice).get_json()["id"]
    assert change(client, operation, task_id, alice).status_code in (200, 204)


def test_if_match_on_another_users_task_is_404_not_412(
    client: FlaskClient, auth: AuthHeaders
) -> None:
    """Preconditions must not reveal that someone else's task exists."""
    alice, bob = auth("alice"), auth("bob")
    task_id = create(client, alice).get_json()["id"]
    response = change(client, "updateTask", task_id, bob, **{"If-Match": '"0.0"'})
    assert_problem(response, 404)


# --- no lost update --------------------------------------------------------------------


def patch_at_once(app: TasksAPI, task_id: int, headers: Headers, etag: str) -> list[TestResponse]:
    """Two PATCHes with the same If-Match, released together from two threads."""
    barrier = threading.Barrier(2)
    responses: list[TestResponse] = []
    errors: list[BaseException] = []

    def patch(title: str) -> None:
        client = app.test_client()  # test clients are not thread-safe: one per thread
        try:
            barrier.wait(timeout=10)
            responses.append(
                client.patch(
                    f"{TASKS}/{task_id}",
                    json={"title": title},
                    headers={**headers, "If-Match": etag},
                )
            )
        except BaseException as error:  # re-raised below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=patch, args=(title,)) for title in ("Left", "Right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(responses) == 2
    return responses


@pytest.mark.parametrize("round_", range(4))
def test_racing_patches_with_one_etag_one_wins_one_gets_412(
    app: TasksAPI, client: FlaskClient, alice: Headers, round_: int
) -> None:
    created = create(client, alice, f"Round {round_}")
    task_id = created.get_json()["id"]
    responses = patch_at_once(app, task_id, alice, etag_of(created))
    by_status = {response.status_code: response for response in responses}
    assert sorted(by_status) == [200, 412], [r.get_data(as_text=True) for r in responses]
    assert_problem(by_status[412], 412)
    winner = by_status[200].get_json()
    stored = row(app, task_id)
    assert stored is not None
    assert stored["title"] == winner["title"]
    assert stored["version"] == winner["version"] == 2


# --- the spec --------------------------------------------------------------------------


def test_spec_documents_conditional_headers_and_statuses(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    by_id = {
        operation["operationId"]: (path, operation)
        for path, item in spec["paths"].items()
        for operation in item.values()
    }
    for operation_id in CHANGE_IDS:
        path, operation = by_id[operation_id]
        names = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert ("header", "If-Match") in names, operation_id
        for status in ("412", "428"):
            content = operation["responses"][status]["content"]
            assert "application/problem+json" in content, (operation_id, status)
    gets = [
        (path, item["get"])
        for path, item in spec["paths"].items()
        if is_api_path(path) and "get" in item
    ]
    assert {operation["operationId"] for _, operation in gets} >= {"listTasks", "getTask"}
    for path, operation in gets:
        names = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert ("header", "If-None-Match") in names, path
        assert "304" in operation["responses"], path
        assert "ETag" in operation["responses"]["200"]["headers"], path
    created = by_id["createTask"][1]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(created)
