"""Task list sorting: every allowed field, ranks not alphabet, combined with filters and
pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import user_id
from tests.support.problems import assert_invalid
from tests.support.tasks import (
    Json,
    get_list,
    insert_tasks,
    links,
    listed_ids,
    query_of,
)

PRIORITIES = ["low", "medium", "high", "urgent"]
STATUSES = ["pending", "in_progress", "completed"]
SORT_FIELDS = ["id", "title", "status", "priority", "due_date", "created_at", "updated_at"]


def _at(day: int) -> datetime:
    return datetime(2030, 1, day, tzinfo=UTC)


SORT_DATA: list[Json] = [
    {"title": "delta", "status": "pending", "priority": "high", "due_date": _at(2),
     "created_at": _at(1), "updated_at": _at(9)},
    {"title": "alpha", "status": "completed", "priority": "low", "due_date": _at(1),
     "created_at": _at(2), "updated_at": _at(5)},
    {"title": "charlie", "status": "in_progress", "priority": "urgent", "due_date": _at(3),
     "created_at": _at(2), "updated_at": _at(5)},
    {"title": "bravo", "status": "pending", "priority": "medium", "due_date": _at(2),
     "created_at": _at(3), "updated_at": _at(3)},
    {"title": "alpha", "status": "in_progress", "priority": "high", "due_date": _at(1),
     "created_at": _at(4), "updated_at": _at(8)},
    {"title": "echo", "status": "completed", "priority": "urgent", "due_date": _at(3),
     "created_at": _at(1), "updated_at": _at(7)},
    {"title": "foxtrot", "status": "pending", "priority": "low", "due_date": _at(2),
     "created_at": _at(5), "updated_at": _at(6)},
    {"title": "golf", "status": "in_progress", "priority": "medium", "due_date": _at(1),
     "created_at": _at(3), "updated_at": _at(4)},
    {"title": "hotel", "status": "pending", "priority": "urgent", "due_date": _at(2),
     "created_at": _at(4), "updated_at": _at(4)},
]  # fmt: skip


def sort_value(name: str, task: Json) -> Any:
    if name == "priority":
        return PRIORITIES.index(task["priority"])
    if name == "status":
        return STATUSES.index(task["status"])
    return task[name]


def expected_order(tasks: list[Json], sort: str) -> list[int]:
    """Python's ordering for `sort`, ties broken by id ascending."""
    ordered = sorted(tasks, key=lambda task: task["id"])
    for part in reversed(sort.split(",")):
        name = part.removeprefix("-")
        ordered.sort(key=lambda task: sort_value(name, task), reverse=part.startswith("-"))
    return [task["id"] for task in ordered]


@pytest.fixture
def sort_data(app: TasksAPI, alice: Headers) -> list[Json]:
    ids = insert_tasks(app, user_id(app, "alice"), SORT_DATA)
    return [{**spec, "id": i} for spec, i in zip(SORT_DATA, ids, strict=True)]


@pytest.mark.parametrize(
    "sort",
    [
        "priority",
        "-priority",
        "status",
        "-status",
        "due_date",
        "-due_date",
        "-due_date,priority",
        "priority,-due_date",
        "status,-priority",
        "-status,due_date,-title",
        "title",
        "-title",
        "id",
        "-id",
        "created_at",
        "-created_at",
        "updated_at,-priority",
    ],
)
def test_sort_orders_like_python(
    client: FlaskClient, alice: Headers, sort_data: list[Json], sort: str
) -> None:
    assert listed_ids(client, alice, [("sort", sort)]) == expected_order(sort_data, sort)


def test_default_sort_is_newest_first(
    client: FlaskClient, alice: Headers, sort_data: list[Json]
) -> None:
    assert listed_ids(client, alice) == expected_order(sort_data, "-created_at")


def test_priority_and_status_sort_by_rank_not_alphabet(
    client: FlaskClient, alice: Headers, sort_data: list[Json]
) -> None:
    by_id = {task["id"]: task for task in sort_data}
    priorities = [by_id[i]["priority"] for i in listed_ids(client, alice, [("sort", "priority")])]
    assert priorities == sorted(priorities, key=PRIORITIES.index)
    assert priorities != sorted(priorities)
    statuses = [by_id[i]["status"] for i in listed_ids(client, alice, [("sort", "status")])]
    assert statuses == sorted(statuses, key=STATUSES.index)
    assert statuses != sorted(statuses)


@pytest.mark.parametrize("page", [1, 2, 3])
def test_sort_filter_and_paging_combine(
    client: FlaskClient, alice: Headers, sort_data: list[Json], page: int
) -> None:
    sort = "-priority,due_date"
    matching = [t for t in sort_data if t["status"] in ("pending", "in_progress")]
    expected = expected_order(matching, sort)[(page - 1) * 3 : page * 3]
    params = [
        ("status", "pending"),
        ("status", "in_progress"),
        ("sort", sort),
        ("per_page", "3"),
        ("page", str(page)),
    ]
    response = get_list(client, alice, params)
    assert response.status_code == 200
    assert [task["id"] for task in response.get_json()["data"]] == expected
    assert response.headers["X-Total-Count"] == str(len(matching))
    for link in links(response).values():
        assert query_of(link)["sort"] == [sort]


@pytest.mark.parametrize("sort", ["owner_id", "-password_hash", "priority,bogus", "", "due_date,"])
def test_unknown_sort_field_is_422_naming_the_allowed_fields(
    client: FlaskClient, alice: Headers, sort: str
) -> None:
    body = assert_invalid(get_list(client, alice, [("sort", sort)]), "sort", "query")
    message = next(e["message"] for e in body["errors"] if e["field"] == "sort")
    for name in SORT_FIELDS:
        assert name in message
