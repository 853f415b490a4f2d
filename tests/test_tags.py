"""GET /api/v1/tags: the caller's tags with how many of the caller's tasks carry each."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.extensions import db
from api.models import Tag
from api.openapi import TasksAPI
from tests.support.auth import Headers

API = "/api/v1/tags"


def create(client: FlaskClient, headers: Headers, tags: list[str]) -> dict[str, Any]:
    response = client.post("/api/v1/tasks", json={"title": "t", "tags": tags}, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def list_tags(client: FlaskClient, headers: Headers) -> list[dict[str, Any]]:
    response = client.get(API, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"data"}
    data: list[dict[str, Any]] = body["data"]
    return data


def expected(*tag_lists: list[str]) -> list[dict[str, Any]]:
    counts = Counter(tag for tags in tag_lists for tag in tags)
    return [{"name": name, "task_count": counts[name]} for name in sorted(counts)]


def test_lists_own_tags_with_counts_sorted_by_name(
    app: TasksAPI, client: FlaskClient, alice: Headers, bob: Headers
) -> None:
    alices = [["work", "urgent"], ["work"], ["home", "work"], []]
    for tags in alices:
        create(client, alice, tags)
    create(client, bob, ["work", "secret"])
    create(client, bob, ["zebra"])

    assert list_tags(client, alice) == expected(*alices)
    assert list_tags(client, bob) == expected(["work", "secret"], ["zebra"])
    # Tag rows are shared: one "work" row for both users.
    with app.app_context():
        assert db.session.scalar(select(func.count(Tag.id)).where(Tag.name == "work")) == 1


def test_tags_are_listed_normalised(client: FlaskClient, alice: Headers) -> None:
    create(client, alice, [" Work", "WORK ", "b"])
    create(client, alice, ["work"])
    assert list_tags(client, alice) == [
        {"name": "b", "task_count": 1},
        {"name": "work", "task_count": 2},
    ]


def test_counts_follow_changes_and_deletes(client: FlaskClient, alice: Headers) -> None:
    first = create(client, alice, ["a", "b"])
    second = create(client, alice, ["b"])
    assert list_tags(client, alice) == expected(["a", "b"], ["b"])

    patched = client.patch(f"/api/v1/tasks/{first['id']}", json={"tags": ["c"]}, headers=alice)
    assert patched.status_code == 200
    assert list_tags(client, alice) == expected(["c"], ["b"])

    assert client.delete(f"/api/v1/tasks/{second['id']}", headers=alice).status_code == 204
    assert list_tags(client, alice) == expected(["c"])


def test_a_user_without_tags_gets_an_empty_list(
    client: FlaskClient, alice: Headers, bob: Headers
) -> None:
    create(client, bob, ["bobs"])
    create(client, alice, [])
    assert list_tags(client, alice) == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, id="bad-token"),
    ],
)
def test_tags_need_a_valid_token(app: TasksAPI, client: FlaskClient, headers: Headers) -> None:
    response = client.get(API, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 401
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
