"""The fast path: compiled dumpers equal marshmallow's dump, keyset paging equals offset
paging, and listing costs a fixed number of queries however many rows it shows."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import pytest
from apiflask import Schema, fields
from flask.testing import FlaskClient

from api.extensions import db
from api.models import Tag, Task, TaskPriority, TaskStatus
from api.openapi import TasksAPI
from api.serialization import compile_dumper
from schemas.tasks import TaskOut
from tests.support.auth import AuthHeaders
from tests.support.db import sql_statements

API = "/api/v1/tasks"


def _text(rng: random.Random, size: int) -> str:
    alphabet = string.ascii_letters + string.digits + " ,\"'\n\t-éß✓😀"
    return "".join(rng.choice(alphabet) for _ in range(size))


def _moment(rng: random.Random) -> datetime:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6))


def _random_task(rng: random.Random) -> Task:
    task = Task(
        id=rng.randrange(1, 2**31),
        owner_id=rng.randrange(1, 2**31),
        title=_text(rng, rng.randrange(1, 200)),
        description=rng.choice([None, "", _text(rng, rng.randrange(0, 500))]),
        status=rng.choice(list(TaskStatus)).value,
        priority=rng.choice(list(TaskPriority)).value,
        due_date=rng.choice([None, _moment(rng)]),
        created_at=_moment(rng),
        updated_at=_moment(rng),
        completed_at=rng.choice([None, _moment(rng)]),
        version=rng.randrange(1, 2**31),
    )
    task.tags = [Tag(name=_text(rng, rng.randrange(1, 50))) for _ in range(rng.randrange(0, 6))]
    return task


def test_compiled_task_dumper_equals_marshmallow_dump() -> None:
    rng = random.Random(20261125)  # fixed seed: a failure can be replayed
    schema = TaskOut()
    dump = compile_dumper(schema)
    for _ in range(500):
        task = _random_task(rng)
        assert dump(task) == schema.dump(task)


def test_compiling_refuses_fields_it_cannot_reproduce() -> None:
    class WithNested(Schema):
        child = fields.Nested(TaskOut)

    with pytest.raises(TypeError, match="Nested"):
        compile_dumper(WithNested())


def test_list_rows_are_exactly_what_the_schema_dumps(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    alice = auth("alice")
    for i in range(5):
        body = {"title": f't{i} "quoted", ✓', "tags": ["b", "a"], "due_date": None}
        assert client.post(API, json=body, headers=alice).status_code == 201
    listed = client.get(API, headers=alice).get_json()["data"]
    with app.app_context():
        expected = [TaskOut().dump(db.session.get(Task, item["id"])) for item in listed]
    assert listed == expected


def test_listing_costs_the_same_queries_for_5_or_20_rows_with_tags(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders
) -> None:
    alice = auth("alice")
    for i in range(20):
        body = {"title": f"t{i}", "tags": [f"tag{i}", "common"]}
        assert client.post(API, json=body, headers=alice).status_code == 201
    counts = []
    for per_page in (5, 20):
        with sql_statements(app) as statements:
            response = client.get(f"{API}?per_page={per_page}", headers=alice)
        assert response.status_code == 200
        assert all(len(task["tags"]) == 2 for task in response.get_json()["data"])
        counts.append(len([s for s in statements if "tags" in s or "tasks" in s]))
    # one statement: the page, its total and its tags (no query per row, no N+1)
    assert counts[0] == counts[1] == 1


SORTS = ["-created_at", "title", "-priority,title", "status,-id", "id", "-updated_at"]


@pytest.mark.parametrize("sort", SORTS)
def test_keyset_pages_equal_offset_pages(client: FlaskClient, auth: AuthHeaders, sort: str) -> None:
    alice = auth("alice")
    rng = random.Random(7)
    for i in range(23):
        body = {
            "title": rng.choice(["alpha", "beta", "gamma"]) + str(i % 4),
            "priority": rng.choice(list(TaskPriority)).value,
            "status": rng.choice(list(TaskStatus)).value,
        }
        assert client.post(API, json=body, headers=alice).status_code == 201
    by_offset = []
    for page in range(1, 6):
        data = client.get(f"{API}?sort={sort}&per_page=5&page={page}", headers=alice).get_json()
        by_offset += [task["id"] for task in data["data"]]
    by_cursor: list[int] = []
    cursor, pages = None, 0
    while True:
        keyset = cursor is not None
        url = f"{API}?sort={sort}&per_page=5" + (f"&after={cursor}" if keyset else "")
        response = client.get(url, headers=alice)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        by_cursor += [task["id"] for task in body["data"]]
        pages += 1
        cursor = body["pagination"]["next_cursor"]
        if cursor is None:
            assert body["pagination"]["next"] is None
            break
        if keyset:  # the first page is an ordinary page; from there on links continue by cursor
            assert "after=" in body["pagination"]["next"]
            assert body["pagination"]["prev"] is None
        assert f'<{body["pagination"]["next"]}>; rel="next"' in response.headers["Link"]
    assert by_cursor == by_offset
    assert len(by_cursor) == 23
    assert pages == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=garbage", "after"),
        ("after=WyJpZCIsWzFdXQ==", "after"),  # a cursor of another sort (["id",[1]])
        ("sort=due_date&after=WyJkdWVfZGF0ZSxpZCIsW251bGwsMV1d", "after"),
    ],
)
def test_bad_cursors_are_422_naming_the_field(
    client: FlaskClient, auth: AuthHeaders, query: str, field: str
) -> None:
    response = client.get(f"{API}?{query}", headers=auth("alice"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert [(e["location"], e["field"]) for e in errors] == [("query", field)]


def test_responses_are_encoded_by_orjson(app: TasksAPI) -> None:
    assert type(app.json).__name__ == "OrjsonProvider"
    with app.app_context():
        assert app.json.loads(app.json.dumps({"✓": [1, None, "é"]})) == {"✓": [1, None, "é"]}


def test_liveness_is_answered_before_flask_with_the_usual_headers(app: TasksAPI) -> None:
    client = app.test_client()
    response = client.get("/health/live", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {}}
    assert response.headers["X-Request-ID"] == "probe-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    generated = client.get("/health/live", headers={"X-Request-ID": "bad id!"})
    assert len(generated.headers["X-Request-ID"]) == 32
    # Other methods and paths still reach the app.
    assert client.post("/health/live").status_code == 405
