"""The per-user response cache: hits skip the database, writes invalidate only the
writer's entries, admins bypass it, the admin clear, outages, NullCache and Redis."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import cachelib.simple
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.openapi import TasksAPI
from tests.support.apps import UNREACHABLE_REDIS_URL, AppFactory, redis_worker
from tests.support.auth import Headers
from tests.support.db import sql_statements
from tests.support.headers import assert_security_headers
from tests.support.problems import assert_problem
from tests.support.redis_keys import redis_keys

TASKS = "/api/v1/tasks"
CLEAR = "/api/v1/admin/cache"
TASKS_TABLES = re.compile(r"\b(tasks|task_tags|tags)\b", re.IGNORECASE)


def create(client: FlaskClient, headers: Headers, title: str = "A task") -> int:
    response = client.post(TASKS, json={"title": title}, headers=headers)
    assert response.status_code == 201, response.get_json()
    task_id: int = response.get_json()["id"]
    return task_id


def retitle(client: FlaskClient, task_id: int, title: str, headers: Headers) -> None:
    response = client.patch(f"{TASKS}/{task_id}", json={"title": title}, headers=headers)
    assert response.status_code == 200, response.get_json()


def touches_tasks(seen: list[str]) -> bool:
    return any(TASKS_TABLES.search(statement) for statement in seen)


def get(client: FlaskClient, path: str, headers: Headers) -> TestResponse:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def titles(response: TestResponse) -> list[str]:
    return [task["title"] for task in response.get_json()["data"]]


def assert_cached(
    client: FlaskClient, path: str, headers: Headers
) -> tuple[TestResponse, TestResponse]:
    """A miss, then a hit with the same body; returns both."""
    first = get(client, path, headers)
    assert first.headers["X-Cache"] == "miss"
    second = get(client, path, headers)
    assert second.headers["X-Cache"] == "hit"
    assert second.get_data() == first.get_data()
    return first, second


# --- hits ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["list", "list?status=pending&sort=-priority", "detail", "me"])
def test_second_identical_get_is_a_hit_that_does_not_query_tasks(
    app: TasksAPI, client: FlaskClient, alice: Headers, path: str
) -> None:
    task_id = create(client, alice)
    url = {
        "list": TASKS,
        "list?status=pending&sort=-priority": f"{TASKS}?status=pending&sort=-priority",
        "detail": f"{TASKS}/{task_id}",
        "me": "/api/v1/users/me",
    }[path]
    with sql_statements(app) as on_miss:
        first = get(client, url, alice)
    assert first.headers["X-Cache"] == "miss"
    assert touches_tasks(on_miss) == (path != "me")
    with sql_statements(app) as on_hit:
        second = get(client, url, {**alice, "X-Request-ID": "hit-1"})
    assert second.headers["X-Cache"] == "hit"
    assert not touches_tasks(on_hit), on_hit
    assert len(on_hit) <= len(on_miss)
    assert second.get_data() == first.get_data()
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert second.headers["ETag"] == first.headers["ETag"]
    # per-request headers are the hit's own, not replayed from the cache
    assert second.headers["X-Request-ID"] == "hit-1"
    assert int(second.headers["X-RateLimit-Remaining"]) == (
        int(first.headers["X-RateLimit-Remaining"]) - 1
    )
    assert second.headers["Cache-Control"] == "private, no-cache"
    assert_security_headers(second)


def test_list_headers_survive_a_hit(client: FlaskClient, alice: Headers) -> None:
    for number in range(3):
        create(client, alice, f"Task {number}")
    first, second = assert_cached(client, f"{TASKS}?per_page=2", alice)
    assert first.headers["X-Total-Count"] == "3"
    for name in ("Link", "X-Total-Count", "ETag"):
        assert second.headers[name] == first.headers[name]


def test_each_full_url_is_its_own_entry(client: FlaskClient, alice: Headers) -> None:
    create(client, alice, "Low")
    assert_cached(client, TASKS, alice)
    other = get(client, f"{TASKS}?priority=high", alice)
    assert other.headers["X-Cache"] == "miss"
    assert titles(other) == []
    assert get(client, f"{TASKS}?page=1", alice).headers["X-Cache"] == "miss"


def test_entries_are_per_user(client: FlaskClient, alice: Headers, bob: Headers) -> None:
    create(client, alice, "Alice's")
    create(client, bob, "Bob's")
    assert_cached(client, TASKS, alice)
    response = get(client, TASKS, bob)
    assert response.headers["X-Cache"] == "miss"
    assert titles(response) == ["Bob's"]


# --- invalidation ----------------------------------------------------------------------

WRITES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "create": ("POST", "", {"title": "New"}),
    "replace": ("PUT", "/{id}", {"title": "Replaced"}),
    "patch": ("PATCH", "/{id}", {"title": "Patched"}),
    "status": ("PUT", "/{id}/status", {"status": "completed"}),
    "delete": ("DELETE", "/{id}", None),
}


def write(client: FlaskClient, kind: str, task_id: int, headers: Headers) -> None:
    method, suffix, body = WRITES[kind]
    response = client.open(
        TASKS + suffix.format(id=task_id), method=method, json=body, headers=headers
    )
    assert response.status_code in (200, 201, 204), response.get_json()


@pytest.mark.parametrize("kind", list(WRITES))
def test_a_write_invalidates_the_writers_entries_only(
    client: FlaskClient, alice: Headers, bob: Headers, kind: str
) -> None:
    task_id = create(client, alice, "Original")
    create(client, bob, "Bob's")
    before, _ = assert_cached(client, TASKS, alice)
    assert_cached(client, f"{TASKS}/{task_id}", alice)
    bobs, _ = assert_cached(client, TASKS, bob)

    write(client, kind, task_id, alice)

    fresh = get(client, TASKS, alice)
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.get_data() != before.get_data()
    detail = client.get(f"{TASKS}/{task_id}", headers=alice)
    assert detail.headers.get("X-Cache") != "hit"
    if kind == "delete":
        assert_problem(detail, 404)
    else:
        assert detail.status_code == 200
        assert detail.get_json()["version"] == (1 if kind == "create" else 2)
    still = get(client, TASKS, bob)
    assert still.headers["X-Cache"] == "hit"
    assert still.get_data() == bobs.get_data()


def test_an_admin_changing_a_users_task_invalidates_the_owners_entries(
    client: FlaskClient, alice: Headers, admin: Headers
) -> None:
    task_id = create(client, alice, "Original")
    assert_cached(client, f"{TASKS}/{task_id}", alice)
    changed = client.patch(f"{TASKS}/{task_id}", json={"title": "By admin"}, headers=admin)
    assert changed.status_code == 200
    fresh = get(client, f"{TASKS}/{task_id}", alice)
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.get_json()["title"] == "By admin"


@pytest.fixture
def cache_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move SimpleCache's clock forward (it reads `time()` from `cachelib.simple`)."""
    offset = [0.0]
    monkeypatch.setattr(cachelib.simple, "time", lambda: time.time() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return advance


def test_a_write_invalidates_even_after_the_generation_counter_expired(
    app: TasksAPI, client: FlaskClient, alice: Headers, cache_clock: Callable[[float], None]
) -> None:
    """Entries outlive the counter they were keyed by: a counter that restarts from 0
    must not make an old entry current again."""
    timeout = app.config["CACHE_DEFAULT_TIMEOUT"]
    task_id = create(client, alice, "v1")  # a write: generation 1
    cache_clock(timeout - 10)
    assert get(client, f"{TASKS}/{task_id}", alice).headers["X-Cache"] == "miss"  # kept
    cache_clock(20)  # the generation key has expired, the entry has not
    retitle(client, task_id, "v2", alice)
    after = get(client, f"{TASKS}/{task_id}", alice)
    assert after.get_json()["title"] == "v2"
    assert after.headers["X-Cache"] == "miss"


# --- admins ----------------------------------------------------------------------------


def test_admins_are_never_served_from_the_cache(
    app: TasksAPI, client: FlaskClient, alice: Headers, admin: Headers
) -> None:
    task_id = create(client, alice)
    for path in (TASKS, f"{TASKS}/{task_id}"):
        for _ in range(2):
            with sql_statements(app) as seen:
                response = get(client, path, admin)
            assert response.headers.get("X-Cache") != "hit"
            assert touches_tasks(seen)


def test_admin_clear_empties_the_cache(
    client: FlaskClient, alice: Headers, bob: Headers, admin: Headers
) -> None:
    assert_cached(client, TASKS, alice)
    assert_cached(client, TASKS, bob)
    response = client.delete(CLEAR, headers=admin)
    assert response.status_code == 204
    assert response.get_data() == b""
    for headers in (alice, bob):
        assert get(client, TASKS, headers).headers["X-Cache"] == "miss"


@pytest.mark.parametrize(("who", "status"), [("user", 403), ("anonymous", 401)])
def test_only_admins_may_clear_the_cache(
    client: FlaskClient, alice: Headers, who: str, status: int
) -> None:
    assert_cached(client, TASKS, alice)
    headers = alice if who == "user" else {}
    assert_problem(client.delete(CLEAR, headers=headers), status)
    assert get(client, TASKS, alice).headers["X-Cache"] == "hit"


# --- other backends: outage, NullCache, Redis ------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": UNREACHABLE_REDIS_URL},
        {"CACHE_TYPE": "NullCache"},
    ],
    ids=["redis-unreachable", "null-cache"],
)
def test_without_a_working_cache_reads_and_writes_still_answer(
    build: AppFactory, alice: Headers, config: dict[str, str]
) -> None:
    if config["CACHE_TYPE"] == "NullCache":
        with pytest.warns(UserWarning, match="caching is effectively disabled"):
            client = build(**config).test_client()
    else:
        client = build(**config).test_client()
    # A cache that is down still says `miss`; one switched off says nothing at all.
    expected = None if config["CACHE_TYPE"] == "NullCache" else "miss"
    task_id = create(client, alice, "v1")
    for _ in range(2):
        response = get(client, f"{TASKS}/{task_id}", alice)
        assert response.headers.get("X-Cache") == expected
        assert response.get_json()["title"] == "v1"
    retitle(client, task_id, "v2", alice)
    assert get(client, TASKS, alice).get_json()["data"][0]["title"] == "v2"


def test_redis_cache_hits_invalidates_and_clears(
    build: AppFactory,
    alice: Headers,
    bob: Headers,
    admin: Headers,
    redis_url: str,
    namespace: str,
) -> None:
    worker = redis_worker(build, redis_url, namespace)
    client = worker.test_client()
    assert worker.config["CACHE_TYPE"] == "RedisCache"
    task_id = create(client, alice, "v1")
    assert_cached(client, f"{TASKS}/{task_id}", alice)
    bobs, _ = assert_cached(client, TASKS, bob)
    assert any(":response:" in key for key in redis_keys(redis_url, f"{namespace}:"))
    # a second worker shares the entries
    other = redis_worker(build, redis_url, namespace).test_client()
    assert get(other, TASKS, bob).headers["X-Cache"] == "hit"

    retitle(client, task_id, "v2", alice)
    fresh = get(other, f"{TASKS}/{task_id}", alice)
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.get_json()["title"] == "v2"
    assert get(client, TASKS, bob).get_data() == bobs.get_data()

    assert client.delete(CLEAR, headers=admin).status_code == 204
    assert not any(":response:" in key for key in redis_keys(redis_url, f"{namespace}:"))
    assert get(other, TASKS, bob).headers["X-Cache"] == "miss"


def test_the_spec_documents_x_cache_where_it_is_sent(
    client: FlaskClient, alice: Headers, build: AppFactory
) -> None:
    """The cache's part of the spec follows the work: `X-Cache` on the 200 of the cached
    operations of an app with a cache, on none of an app with the cache off."""
    with client.application.app_context():
        spec = client.application.spec
    documented = {
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if "X-Cache" in operation["responses"].get("200", {}).get("headers", {})
    }
    assert documented == {"listTasks", "getTask", "listTags", "getCurrentUser"}
    task_id = create(client, alice)
    for path in (TASKS, f"{TASKS}/{task_id}", "/api/v1/tags", "/api/v1/users/me"):
        assert get(client, path, alice).headers["X-Cache"] in ("hit", "miss")
    with pytest.warns(UserWarning, match="caching is effectively disabled"):
        off = build(CACHE_TYPE="NullCache")
    with off.app_context():
        assert "X-Cache" not in json.dumps(off.spec)
