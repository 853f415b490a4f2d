"""listTasks reads each page in one statement, whatever the paging, and every row of it
(offset pages and cursor pages too) is what TaskOut dumps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from api.extensions import db
from api.models import Task
from api.openapi import TasksAPI
from schemas.tasks import TaskOut
from tests.support.db import sql_statements

API = "/api/v1/tasks"
AuthHeaders = Callable[..., dict[str, str]]


@pytest.fixture
def alice(client: FlaskClient, auth: AuthHeaders) -> dict[str, str]:
    headers = auth("alice")
    for i in range(7):
        tags = [f"t{i}", "b-common", "a-common"][: i % 4]
        response = client.post(API, json={"title": f"task {i}", "tags": tags}, headers=headers)
        assert response.status_code == 201
    return headers


def task_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM tasks" in s]


@pytest.mark.parametrize("sort", ["-created_at", "id", "-priority,title"])
def test_every_page_is_one_statement_and_dumps_like_the_schema(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], sort: str
) -> None:
    seen_ids: list[int] = []
    urls = [f"{API}?sort={sort}&per_page=3&page={page}" for page in (1, 2, 3)]
    cursor = None
    for url in [*urls, "after"]:
        if url == "after":  # the second page again, after the first page's cursor
            url = f"{API}?sort={sort}&per_page=3&after={cursor}"
        with sql_statements(app) as statements:
            response = client.get(url, headers=alice)
        assert response.status_code == 200, response.get_json()
        assert len(task_statements(statements)) == 1, statements
        body = response.get_json()
        assert body["pagination"]["total"] == 7
        with app.app_context():
            expected = [TaskOut().dump(db.session.get(Task, item["id"])) for item in body["data"]]
        assert body["data"] == expected
        if "after=" in url:
            assert [item["id"] for item in body["data"]] == seen_ids[3:6]
        else:
            seen_ids += [item["id"] for item in body["data"]]
        cursor = cursor or body["pagination"]["next_cursor"]
    assert sorted(seen_ids) == sorted(set(seen_ids))
    assert len(seen_ids) == 7


def test_a_page_past_the_end_still_knows_the_total(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = client.get(f"{API}?per_page=3&page=9", headers=alice).get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 7
    assert body["pagination"]["pages"] == 3
