"""Task lists: shape, headers, page sizes, `Link` and bad paging parameters."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import user_id
from tests.support.problems import assert_invalid
from tests.support.tasks import (
    API,
    assert_matches_row,
    create,
    get_list,
    insert_tasks,
    links,
    query_of,
    stored,
)

# --- lists and pagination --------------------------------------------------------------


def test_list_shape_and_headers(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    created = [create(client, alice, title=f"t{i}") for i in range(3)]
    response = client.get(API, headers=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {
        "page": 1,
        "per_page": 20,
        "total": 3,
        "pages": 1,
        "next": None,
        "prev": None,
        "next_cursor": None,
    }
    assert response.headers["X-Total-Count"] == "3"
    assert sorted(task["id"] for task in body["data"]) == sorted(t["id"] for t in created)
    for task in body["data"]:
        assert_matches_row(task, stored(app, task["id"]))
    rels = links(response)
    assert set(rels) == {"first", "last"}
    assert query_of(rels["first"])["page"] == ["1"]
    assert query_of(rels["last"])["page"] == ["1"]


def test_default_page_size_is_20_and_last_page_is_partial(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    ids = insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(21)])
    first = client.get(API, headers=alice)
    assert first.status_code == 200
    page1 = first.get_json()
    assert len(page1["data"]) == 20
    assert page1["pagination"]["pages"] == 2
    assert page1["pagination"]["total"] == 21
    assert first.headers["X-Total-Count"] == "21"
    assert page1["pagination"]["next"] == links(first)["next"]

    second = client.get(page1["pagination"]["next"], headers=alice)
    assert second.status_code == 200
    page2 = second.get_json()
    assert len(page2["data"]) == 1
    assert page2["pagination"]["page"] == 2
    assert page2["pagination"]["next"] is None
    assert "next" not in links(second)
    seen = [t["id"] for t in page1["data"] + page2["data"]]
    assert sorted(seen) == sorted(ids)


def test_links_keep_every_query_parameter(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    owner = user_id(app, "alice")
    statuses = ["pending", "completed", "in_progress"] * 3
    ids = insert_tasks(
        app, owner, [{"title": f"t{i}", "status": s} for i, s in enumerate(statuses)]
    )
    expected_ids = {i for i, s in zip(ids, statuses, strict=True) if s != "in_progress"}
    params = [("status", "pending"), ("status", "completed"), ("per_page", "2"), ("page", "2")]

    response = get_list(client, alice, params)
    assert response.status_code == 200
    body = response.get_json()
    assert body["pagination"] == {
        "page": 2,
        "per_page": 2,
        "total": 6,
        "pages": 3,
        "next": body["pagination"]["next"],
        "prev": body["pagination"]["prev"],
        "next_cursor": body["pagination"]["next_cursor"],
    }
    assert response.headers["X-Total-Count"] == "6"
    rels = links(response)
    assert set(rels) == {"first", "prev", "next", "last"}
    assert rels["next"] == body["pagination"]["next"]
    assert rels["prev"] == body["pagination"]["prev"]
    for rel, page in {"first": "1", "prev": "1", "next": "3", "last": "3"}.items():
        query = query_of(rels[rel])
        assert urlsplit(rels[rel]).path == API
        assert query["page"] == [page], rel
        assert query["per_page"] == ["2"], rel
        assert sorted(query["status"]) == ["completed", "pending"], rel

    # Walking first → next → ... visits every matching task exactly once.
    seen: list[int] = []
    link: str | None = rels["first"]
    while link:
        followed = client.get(link, headers=alice)
        assert followed.status_code == 200
        seen += [task["id"] for task in followed.get_json()["data"]]
        link = followed.get_json()["pagination"]["next"]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected_ids


def test_a_page_past_the_end_is_empty(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(3)])
    response = get_list(client, alice, [("page", "5"), ("per_page", "2")])
    assert response.status_code == 200
    body = response.get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 3
    assert body["pagination"]["pages"] == 2
    assert body["pagination"]["next"] is None
    assert response.headers["X-Total-Count"] == "3"
    assert query_of(links(response)["last"])["page"] == ["2"]


def test_an_empty_list(client: FlaskClient, alice: Headers) -> None:
    response = client.get(API, headers=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 0
    assert body["pagination"]["next"] is None
    assert body["pagination"]["prev"] is None
    assert response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("per_page", "0"),
        ("per_page", "101"),
        ("per_page", "abc"),
        ("per_page", "-1"),
        ("page", "0"),
        ("page", "-1"),
        ("page", "abc"),
    ],
)
def test_bad_paging_parameters_are_422(
    client: FlaskClient, alice: Headers, name: str, value: str
) -> None:
    assert_invalid(get_list(client, alice, [(name, value)]), name, "query")


def test_per_page_100_is_allowed(app: TasksAPI, client: FlaskClient, alice: Headers) -> None:
    insert_tasks(app, user_id(app, "alice"), [{"title": f"t{i}"} for i in range(3)])
    response = get_list(client, alice, [("per_page", "100")])
    assert response.status_code == 200
    assert response.get_json()["pagination"]["per_page"] == 100


@pytest.mark.parametrize("name", ["stauts", "owner", "limit"])
def test_unknown_query_parameters_are_422(client: FlaskClient, alice: Headers, name: str) -> None:
    assert_invalid(get_list(client, alice, [(name, "x")]), name, "query")
