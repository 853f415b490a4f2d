"""Who may touch which task: tokens, ownership (another user's task is a 404), admins,
and unknown ids."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import user_id
from tests.support.problems import assert_invalid, assert_problem
from tests.support.tasks import (
    API,
    Json,
    assert_matches_row,
    create,
    get_list,
    listed_ids,
    snapshot,
    stored,
    url,
)

# --- unknown ids -----------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["0", "12345", "2147483648", "99999999999999999999", "-1"])
def test_unknown_ids_are_404_problems(client: FlaskClient, alice: Headers, task_id: str) -> None:
    create(client, alice)
    body = assert_problem(client.get(url(task_id), headers=alice), 404)
    assert body["instance"] == url(task_id)


# Every operation on one task: (method, path suffix, body).
OPERATIONS: list[tuple[str, str, Json | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "Mine now"}),
    ("PATCH", "", {"title": "Mine now"}),
    ("DELETE", "", None),
    ("PUT", "/status", {"status": "completed"}),
]
OPERATION_IDS = ["get", "replace", "update", "delete", "status"]


@pytest.mark.parametrize(("method", "suffix", "fields"), OPERATIONS, ids=OPERATION_IDS)
def test_huge_ids_are_404_on_every_operation(
    client: FlaskClient, alice: Headers, method: str, suffix: str, fields: Json | None
) -> None:
    response = client.open(
        url("99999999999999999999", suffix), method=method, json=fields, headers=alice
    )
    assert_problem(response, 404)


# --- authentication and ownership ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        pytest.param("GET", API, None, id="list"),
        pytest.param("POST", API, {"title": "x"}, id="create"),
        *[
            pytest.param(method, url(1, suffix), fields, id=name)
            for (method, suffix, fields), name in zip(OPERATIONS, OPERATION_IDS, strict=True)
        ],
    ],
)
def test_tasks_need_a_token(
    app: TasksAPI, client: FlaskClient, method: str, path: str, fields: Json | None
) -> None:
    response = client.open(path, method=method, json=fields)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "suffix", "fields"), OPERATIONS, ids=OPERATION_IDS)
def test_another_users_task_is_404(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    bob: Headers,
    method: str,
    suffix: str,
    fields: Json | None,
) -> None:
    task = create(client, alice, title="Alice's", tags=["private"])
    before = stored(app, task["id"])
    response = client.open(url(task["id"], suffix), method=method, json=fields, headers=bob)
    body = assert_problem(response, 404)
    # Indistinguishable from a task that does not exist at all.
    missing = assert_problem(
        client.open(url(12345, suffix), method=method, json=fields, headers=bob), 404
    )
    assert body["title"] == missing["title"]
    assert body["detail"] == missing["detail"].replace("12345", str(task["id"]))
    assert snapshot(app, task["id"]) == before


def test_a_users_list_never_shows_other_users_tasks(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers
) -> None:
    alices = {
        create(client, alice, title=f"Shared words {i}", tags=["secret"])["id"] for i in range(3)
    }
    bobs = {create(client, bob, title="Shared words bob")["id"]}
    for params in ([], [("tag", "secret")], [("q", "shared")], [("status", "pending")]):
        ids = set(listed_ids(client, bob, params))
        assert not ids & alices, params
        assert ids <= bobs
    assert set(listed_ids(client, alice)) == alices


@pytest.mark.parametrize(
    ("method", "suffix", "fields", "status"),
    [
        pytest.param("GET", "", None, 200, id="get"),
        pytest.param("PUT", "", {"title": "By admin"}, 200, id="replace"),
        pytest.param("PATCH", "", {"title": "By admin"}, 200, id="update"),
        pytest.param("PUT", "/status", {"status": "completed"}, 200, id="status"),
        pytest.param("DELETE", "", None, 204, id="delete"),
    ],
)
def test_admin_can_touch_every_task(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    admin: Headers,
    method: str,
    suffix: str,
    fields: Json | None,
    status: int,
) -> None:
    task = create(client, alice, title="Alice's")
    response = client.open(url(task["id"], suffix), method=method, json=fields, headers=admin)
    assert response.status_code == status, response.get_json()
    row = snapshot(app, task["id"])
    if method == "DELETE":
        assert row is None
        return
    assert row is not None
    assert_matches_row(response.get_json(), row)
    # The task stays Alice's, whoever edits it.
    assert row["owner_id"] == user_id(app, "alice")
    if fields:
        for name, value in fields.items():
            assert row[name] == value


def test_admin_lists_everyone_and_filters_by_owner(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers, admin: Headers
) -> None:
    alices = {create(client, alice, title="a")["id"] for _ in range(2)}
    bobs = {create(client, bob, title="b")["id"] for _ in range(3)}
    mine = {create(client, admin, title="root")["id"]}
    assert set(listed_ids(client, admin)) == alices | bobs | mine
    alice_id = str(user_id(app, "alice"))
    assert set(listed_ids(client, admin, [("owner_id", alice_id)])) == alices
    assert set(listed_ids(client, admin, [("owner_id", str(user_id(app, "bob")))])) == bobs
    assert listed_ids(client, admin, [("owner_id", "999999")]) == []


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_owner_id_filter_is_403_for_non_admins(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers, owner: str
) -> None:
    create(client, bob)
    response = get_list(client, alice, [("owner_id", str(user_id(app, owner)))])
    assert_problem(response, 403)


@pytest.mark.parametrize("value", ["0", "abc"])
def test_owner_id_must_be_a_positive_integer(
    client: FlaskClient, admin: Headers, value: str
) -> None:
    assert_invalid(get_list(client, admin, [("owner_id", value)]), "owner_id", "query")
