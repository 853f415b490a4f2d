"""Lists as a client walks them: by following the `next` link (never by rebuilding URLs),
with the total on every page, `last` and `prev` at the edges, and cursors bound to the sort
they were minted for."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from werkzeug.test import TestResponse

from api.openapi import TasksAPI
from api.services import paging
from tests.support.db import sql_statements
from tests.support.problems import assert_problem

API = "/api/v1/tasks"
Headers = dict[str, str]
Json = dict[str, object]

# Filtered (a repeated parameter), sorted and paged: each must survive every link.
PARAMS = [("sort", "title"), ("per_page", "2"), ("status", "pending"), ("status", "completed")]
TITLES = ["delta", "alpha", "echo", "charlie", "bravo", "foxtrot", "golf", "hotel", "alpha"]
STATUSES = ["pending", "completed", "in_progress"]


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


def create(client: FlaskClient, headers: Headers, **fields: object) -> int:
    response = client.post(API, json=fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    task_id: int = response.get_json()["id"]
    return task_id


def get(client: FlaskClient, headers: Headers, params: Sequence[tuple[str, str]]) -> TestResponse:
    response = client.get(f"{API}?{urlencode(list(params))}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response


def links(response: TestResponse) -> dict[str, str]:
    """The `Link` header as {rel: url}."""
    parsed = {}
    for part in response.headers["Link"].split(", "):
        url, _, rel = part.partition("; ")
        parsed[rel.removeprefix('rel="').removesuffix('"')] = url.strip("<>")
    return parsed


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def walk(client: FlaskClient, headers: Headers, url: str, total: int) -> list[int]:
    """Follow `next` links from `url` to the end; check every page on the way. Returns the
    ids seen, in order."""
    seen: list[int] = []
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        seen += [task["id"] for task in body["data"]]
        keyset = "after" in query_of(url)
        # Every page, keyset ones too, counts the whole filtered list.
        assert body["pagination"]["total"] == total
        assert response.headers["X-Total-Count"] == str(total)
        assert body["pagination"]["pages"] == math.ceil(total / 2)
        rels = links(response)
        for rel, link in rels.items():
            query = query_of(link)
            assert urlsplit(link).path == API, rel
            assert query["sort"] == ["title"], rel
            assert query["per_page"] == ["2"], rel
            assert sorted(query["status"]) == ["completed", "pending"], rel
        if keyset:  # no way back from a cursor
            assert body["pagination"]["prev"] is None
            assert "prev" not in rels
        next_url = body["pagination"]["next"]
        if next_url is None:
            assert "next" not in rels
            return seen
        assert rels["next"] == next_url
        if keyset:  # a keyset page continues by cursor
            assert query_of(next_url)["after"] == [body["pagination"]["next_cursor"]]
            assert "page" not in query_of(next_url)
        url = next_url


def test_following_next_links_walks_the_whole_filtered_sorted_list(
    client: FlaskClient, alice: Headers
) -> None:
    created = [
        (title, create(client, alice, title=title, status=STATUSES[i % 3]), STATUSES[i % 3])
        for i, title in enumerate(TITLES)
    ]
    expected = [task_id for title, task_id, status in sorted(created) if status != "in_progress"]
    start = f"{API}?{urlencode(PARAMS)}"

    # By page numbers, from the first page...
    assert walk(client, alice, start, len(expected)) == expected
    # ...and by cursor: the first page's cursor switches to keyset paging (`page`, if the
    # client still sends it, plays no part), and from there on the links carry it.
    first = client.get(start, headers=alice).get_json()
    cursor = first["pagination"]["next_cursor"]
    keyset_start = f"{start}&{urlencode({'page': '1', 'after': cursor})}"
    assert walk(client, alice, keyset_start, len(expected)) == expected[2:]


def test_a_keyset_page_counts_every_matching_task(client: FlaskClient, alice: Headers) -> None:
    for title in ("a", "b", "c"):
        create(client, alice, title=title)
    first = get(client, alice, [("sort", "title"), ("per_page", "1")]).get_json()
    cursor = first["pagination"]["next_cursor"]
    assert cursor is not None

    response = get(client, alice, [("sort", "title"), ("per_page", "1"), ("after", cursor)])
    body = response.get_json()
    assert [task["title"] for task in body["data"]] == ["b"]
    assert body["pagination"]["total"] == 3
    assert body["pagination"]["pages"] == 3
    assert response.headers["X-Total-Count"] == "3"


@pytest.mark.parametrize("page", ["1", "3"])
def test_an_empty_list_links_its_last_page_as_page_1(
    client: FlaskClient, alice: Headers, page: str
) -> None:
    response = get(client, alice, [("page", page), ("per_page", "5")])
    body = response.get_json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 0
    assert body["pagination"]["pages"] == 0
    rels = links(response)
    assert query_of(rels["first"])["page"] == ["1"]
    assert query_of(rels["last"])["page"] == ["1"]
    assert "next" not in rels
    if page == "1":
        assert "prev" not in rels
    else:  # past the end: back to the last page there is, not to page 2
        assert query_of(rels["prev"])["page"] == ["1"]
        assert body["pagination"]["prev"] == rels["prev"]


def test_an_empty_first_page_costs_one_query(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    # The total rides along with the rows (a window count); with no rows on page 1 there
    # are none at all, which needs no second query to count.
    with sql_statements(app) as seen:
        body = get(client, alice, [("status", "completed")]).get_json()
    assert body["pagination"]["total"] == 0
    assert len([s for s in seen if "FROM tasks" in s]) == 1


def test_prev_from_past_the_end_points_at_the_last_page(
    client: FlaskClient, alice: Headers
) -> None:
    for title in ("a", "b", "c"):
        create(client, alice, title=title)
    response = get(client, alice, [("sort", "title"), ("page", "5"), ("per_page", "2")])
    body = response.get_json()
    assert body["data"] == []
    rels = links(response)
    assert query_of(rels["prev"])["page"] == ["2"]
    assert query_of(rels["last"])["page"] == ["2"]
    assert body["pagination"]["prev"] == rels["prev"]
    # and that page is the last one, with the last task on it
    last = client.get(rels["prev"], headers=alice).get_json()
    assert [task["title"] for task in last["data"]] == ["c"]


@pytest.mark.parametrize(
    ("minted_for", "used_on"),
    [
        ("title", "-created_at"),  # same number of keys, values of the other's types
        ("title", "-title"),  # the same key, the other direction
        ("-updated_at", "-created_at"),
        ("priority", "status"),
    ],
)
def test_a_cursor_is_refused_on_another_sort_with_as_many_keys(
    client: FlaskClient, alice: Headers, minted_for: str, used_on: str
) -> None:
    # Titles that read as timestamps: a cursor's title values would pass for created_at ones.
    for day in range(1, 4):
        create(client, alice, title=f"2030-01-0{day}T00:00:00+00:00")
    first = get(client, alice, [("sort", minted_for), ("per_page", "1")]).get_json()
    cursor = first["pagination"]["next_cursor"]
    assert cursor is not None
    # The cursor works where it belongs...
    get(client, alice, [("sort", minted_for), ("per_page", "1"), ("after", cursor)])

    response = client.get(
        f"{API}?{urlencode([('sort', used_on), ('per_page', '1'), ('after', cursor)])}",
        headers=alice,
    )
    body = assert_problem(response, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", "after")]


def test_a_sort_by_a_column_that_may_be_empty_pages_without_cursors(
    client: FlaskClient, alice: Headers
) -> None:
    """Tasks without a due date sort first on one database and last on the other, so no
    cursor could say where a page of them ends: a sort by due_date pages by `page` only."""
    for day in range(1, 4):
        create(client, alice, title=f"t{day}", due_date=f"2030-01-0{day}T00:00:00Z")
    create(client, alice, title="undated")
    for sort in ("due_date", "-due_date,title", "title,due_date"):
        pagination = get(client, alice, [("sort", sort), ("per_page", "2")]).get_json()[
            "pagination"
        ]
        assert pagination["next_cursor"] is None
        assert query_of(pagination["next"])["page"] == ["2"]
    pagination = get(client, alice, [("sort", "title"), ("per_page", "2")]).get_json()["pagination"]
    assert pagination["next_cursor"]


def test_a_deep_page_skips_rows_before_computing_their_tags(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    """OFFSET runs in a subquery, so the tags are aggregated for the page's rows only, not
    for every row it skips."""
    for number in range(3):
        create(client, alice, title=f"t{number}", tags=["x", "y"])
    with sql_statements(app) as seen:
        body = get(client, alice, [("per_page", "1"), ("page", "3")]).get_json()
    assert [task["tags"] for task in body["data"]] == [["x", "y"]]
    [page] = [statement for statement in seen if "OFFSET" in statement]
    assert re.search(r"OFFSET \S+\)\s*AS \w+", page), page


def test_each_shape_of_listing_is_built_once(client: FlaskClient, alice: Headers) -> None:
    """The statement of a listing shape (filters, sort, kind of page) is built on the first
    request and reused with the next request's values."""
    create(client, alice, title="one", priority="high")
    shape = [("sort", "-priority,title"), ("priority", "high"), ("per_page", "3")]
    get(client, alice, shape)
    before = paging._statements.cache_info()
    get(client, alice, [*shape[:1], ("priority", "low"), ("per_page", "5")])
    after = paging._statements.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_a_cursor_carries_its_sort_as_the_query_spells_it(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    """The cursor's format is a contract between the servers of one deployment (a rolling
    deploy serves old and new processes at once): the sort as `sort=` spells it, with the
    id tie-breaker, and the last row's values, signed with SECRET_KEY."""
    first = create(client, alice, title="a", priority="high")
    create(client, alice, title="b", priority="low")  # a second row: page 1 is full
    cursor = get(client, alice, [("sort", "-priority,title"), ("per_page", "1")]).get_json()[
        "pagination"
    ]["next_cursor"]
    signer = URLSafeSerializer(app.config["SECRET_KEY"], salt="tasks-cursor")
    assert signer.loads(cursor) == ["-priority,title,id", [2, "a", first]]
    cursor = get(client, alice, [("sort", "title"), ("per_page", "1")]).get_json()["pagination"][
        "next_cursor"
    ]
    assert signer.loads(cursor) == ["title,id", ["a", first]]


def test_a_cursor_after_a_sort_by_a_column_that_may_be_empty_says_to_use_page(
    client: FlaskClient, alice: Headers
) -> None:
    for title in ("a", "b"):
        create(client, alice, title=title)
    cursor = get(client, alice, [("sort", "title"), ("per_page", "1")]).get_json()["pagination"][
        "next_cursor"
    ]
    response = client.get(
        f"{API}?{urlencode([('sort', 'due_date'), ('after', cursor)])}", headers=alice
    )
    problem = assert_problem(response, 422)
    [error] = problem["errors"]
    assert error["field"] == "after"
    assert error["message"] == "A cursor cannot follow a sort by due_date; use page."
