"""Rate limits: buckets per user and per IP, tiers, login and register, the enumeration
guard, trusted proxies, the Redis tier, CORS and security headers, and the spec."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import limits.storage.memory
import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from api.extensions import cache, db
from api.limits import app_limiter
from api.models import Task, User
from api.openapi import TasksAPI
from api.paths import is_api_path
from tests.support.apps import UNREACHABLE_REDIS_URL, AppFactory, redis_worker
from tests.support.auth import PASSWORD, AuthHeaders, Headers, bearer, login
from tests.support.headers import assert_security_headers
from tests.support.problems import assert_problem
from tests.support.redis_keys import redis_keys

API = "/api/v1"
TASKS = f"{API}/tasks"
LOGIN = f"{API}/auth/login"
REGISTER = f"{API}/auth/register"
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
MINUTE = 60
# Every route that takes a task id: (method, suffix, body). One enumeration group.
ID_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "Replaced"}),
    ("PATCH", "", {"title": "Patched"}),
    ("PUT", "/status", {"status": "completed"}),
    ("DELETE", "", None),
]


# --- helpers (test_cache and test_conditional use some) -----------------------------


class Clock:
    """Stands in for the `time` module of `limits.storage.memory`: real time + an offset,
    so a test moves past a rate-limit window without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def client_at(app: TasksAPI, ip: str) -> FlaskClient:
    """A test client whose requests come from `ip` (the socket peer)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def assert_limit_headers(
    response: TestResponse, limit: int, remaining: int | None = None, window: int = MINUTE
) -> None:
    """X-RateLimit-*: the limit, what is left, and a reset time within the window."""
    assert response.headers["X-RateLimit-Limit"] == str(limit), dict(response.headers)
    if remaining is not None:
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    reset = int(response.headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + window + 1


def assert_rate_limited(response: TestResponse, limit: int, window: int = MINUTE) -> None:
    """A 429 problem with Retry-After and the rate-limit headers of the limit hit."""
    body = assert_problem(response, 429)
    assert body["title"] == "Too Many Requests"
    assert 0 < int(response.headers["Retry-After"]) <= window
    assert_limit_headers(response, limit, 0, window)


def set_limit(monkeypatch: pytest.MonkeyPatch, app: TasksAPI, name: str, value: str) -> None:
    """Limits are callables read per request: changing the config takes effect at once."""
    monkeypatch.setitem(app.config, name, value)


def create_task(client: FlaskClient, headers: Headers, title: str = "Mine") -> int:
    response = client.post(TASKS, json={"title": title}, headers=headers)
    assert response.status_code == 201, response.get_json()
    task_id: int = response.get_json()["id"]
    return task_id


def task_row(app: TasksAPI, task_id: int) -> tuple[str, int] | None:
    """(title, version) of a task, or None when it is gone."""
    with app.app_context():
        task = db.session.get(Task, task_id)
        return None if task is None else (task.title, task.version)


def user_count(app: TasksAPI) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id))) or 0


def set_tier(app: TasksAPI, username: str, tier: str) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.username == username).values(tier=tier))
        db.session.commit()


def call(
    client: FlaskClient, method: str, path: str, headers: Headers, body: Any = None
) -> TestResponse:
    return client.open(path, method=method, headers=headers, json=body)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    return fake


# --- the default limit: headers, 429, exemptions -------------------------------------


def test_request_over_the_limit_is_429_problem_with_headers(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "3 per minute")
    alice = auth()
    for remaining in (2, 1, 0):
        response = client.get(TASKS, headers=alice)
        assert response.status_code == 200
        assert_limit_headers(response, 3, remaining)
    refused = client.get(TASKS, headers=alice)
    assert_rate_limited(refused, 3)
    assert "3 per 1 minute" in refused.get_json()["detail"]
    assert "data" not in refused.get_json()


@pytest.mark.parametrize(
    ("method", "path", "authenticated", "status"),
    [
        ("GET", TASKS, False, 401),
        ("GET", TASKS, True, 200),
        ("POST", TASKS, True, 201),
        ("GET", f"{TASKS}/999999", True, 404),
        ("GET", f"{API}/users/me", True, 200),
        ("GET", f"{API}/tags", True, 200),
    ],
)
def test_api_responses_carry_rate_limit_headers(
    app: TasksAPI,
    client: FlaskClient,
    auth: AuthHeaders,
    method: str,
    path: str,
    authenticated: bool,
    status: int,
) -> None:
    headers = auth() if authenticated else {}
    response = call(client, method, path, headers, {"title": "T"} if method == "POST" else None)
    assert response.status_code == status
    setting = "RATE_LIMIT_FREE" if authenticated else "RATE_LIMIT_ANONYMOUS"
    limit = int(app.config[setting].split()[0])
    assert_limit_headers(response, limit, limit - 1)


@pytest.mark.parametrize("authenticated", [True, False])
def test_retry_after_is_only_sent_with_429(
    client: FlaskClient, auth: AuthHeaders, authenticated: bool
) -> None:
    """Retry-After tells a client to wait (RFC 9110 §10.2.3); the spec documents it on 429
    only. On a 200 or 401 it would tell clients to back off for no reason."""
    response = client.get(TASKS, headers=auth() if authenticated else {})
    assert response.status_code == (200 if authenticated else 401)
    assert "X-RateLimit-Limit" in response.headers
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/docs", "/openapi.json"])
def test_probes_and_docs_are_never_limited(
    app: TasksAPI, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_ANONYMOUS", "1 per minute")
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200
        for name in (*RATE_LIMIT_HEADERS, "Retry-After"):
            assert name not in response.headers
    # the API itself is limited for the same client meanwhile
    assert client.get(TASKS).status_code == 401
    assert_rate_limited(client.get(TASKS), 1)


def test_default_limit_is_one_budget_per_client_across_endpoints(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DESIGN: "global default per client" — not a fresh budget on every endpoint."""
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "3 per minute")
    alice = auth()
    for path in (TASKS, f"{API}/tags", f"{API}/users/me"):
        assert client.get(path, headers=alice).status_code == 200
    assert_rate_limited(client.get(f"{TASKS}?page=1", headers=alice), 3)
    assert_rate_limited(client.get(f"{API}/tags", headers=alice), 3)


# --- buckets: per user, per IP ---------------------------------------------------------


def test_two_users_behind_one_ip_have_separate_buckets(
    app: TasksAPI, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "2 per minute")
    alice, bob = auth("alice"), auth("bob")
    office = client_at(app, "198.51.100.7")
    for _ in range(2):
        assert office.get(TASKS, headers=alice).status_code == 200
    assert_rate_limited(office.get(TASKS, headers=alice), 2)
    response = office.get(TASKS, headers=bob)
    assert response.status_code == 200
    assert_limit_headers(response, 2, 1)


def test_anonymous_clients_share_their_ip_bucket(
    app: TasksAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_ANONYMOUS", "3 per minute")
    first, second = client_at(app, "203.0.113.5"), client_at(app, "203.0.113.5")
    elsewhere = client_at(app, "203.0.113.6")
    assert [c.get(TASKS).status_code for c in (first, second, first)] == [401, 401, 401]
    assert_rate_limited(second.get(TASKS), 3)
    response = elsewhere.get(TASKS)
    assert response.status_code == 401
    assert_limit_headers(response, 3, 2)


def test_invalid_tokens_are_limited_by_ip(app: TasksAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A garbage token per request must not buy a fresh bucket."""
    set_limit(monkeypatch, app, "RATE_LIMIT_ANONYMOUS", "2 per minute")
    client = client_at(app, "203.0.113.9")
    for token in ("a", "b"):
        assert client.get(TASKS, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert_rate_limited(client.get(TASKS, headers={"Authorization": "Bearer c"}), 2)


@pytest.mark.parametrize(("tier", "limit"), [("free", 3), ("pro", 6)])
def test_limit_follows_the_tier(
    app: TasksAPI,
    client: FlaskClient,
    auth: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch,
    tier: str,
    limit: int,
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "3 per minute")
    set_limit(monkeypatch, app, "RATE_LIMIT_PRO", "6 per minute")
    alice = auth()
    set_tier(app, "alice", tier)
    for remaining in reversed(range(limit)):
        response = client.get(TASKS, headers=alice)
        assert response.status_code == 200
        assert_limit_headers(response, limit, remaining)
    assert_rate_limited(client.get(TASKS, headers=alice), limit)


def test_tier_change_takes_effect_on_the_next_request(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "2 per minute")
    set_limit(monkeypatch, app, "RATE_LIMIT_PRO", "4 per minute")
    alice = auth()
    for _ in range(2):
        assert client.get(TASKS, headers=alice).status_code == 200
    assert_rate_limited(client.get(TASKS, headers=alice), 2)
    set_tier(app, "alice", "pro")  # same token: the tier is read from the database
    response = client.get(TASKS, headers=alice)
    assert response.status_code == 200
    assert_limit_headers(response, 4)
    set_tier(app, "alice", "free")
    assert_rate_limited(client.get(TASKS, headers=alice), 2)


# --- login and register ----------------------------------------------------------------


WRONG_PASSWORD = "not the password"


def attempt(client: FlaskClient, login: str, password: str = WRONG_PASSWORD) -> TestResponse:
    return client.post(LOGIN, json={"login": login, "password": password})


def test_sixth_failed_login_for_a_name_waits_a_minute_from_any_ip(
    app: TasksAPI, make_user: Callable[..., User]
) -> None:
    make_user("alice")
    make_user("bob")
    first, second = client_at(app, "192.0.2.1"), client_at(app, "192.0.2.2")
    for _ in range(5):  # the default's first rung: 5 failures per name per minute
        assert attempt(first, "alice").status_code == 401
    assert_rate_limited(attempt(second, "alice"), 5)
    # a delay, even with the right password; other accounts are not slowed
    assert_rate_limited(attempt(second, "alice", PASSWORD), 5)
    assert attempt(second, "bob", PASSWORD).status_code == 200


def test_failed_logins_count_per_name_as_typed_whatever_its_case(
    app: TasksAPI, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One bucket per name (case and spaces aside): the username and the email of an
    account are two names, so a 429 on one never tells which email is whose."""
    set_limit(monkeypatch, app, "RATE_LIMIT_LOGIN_ACCOUNT", "4 per minute")
    make_user("alice")
    for number, name in enumerate(["alice", "ALICE", " Alice ", "alice"]):
        assert attempt(client_at(app, f"192.0.2.{10 + number}"), name).status_code == 401
    assert_rate_limited(attempt(client_at(app, "192.0.2.99"), "Alice"), 4)
    assert attempt(client_at(app, "192.0.2.99"), "alice@example.com").status_code == 401


def test_failed_logins_count_per_ip(
    app: TasksAPI, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_LOGIN", "3 per minute")
    make_user("alice")
    attacker, neighbour = client_at(app, "192.0.2.50"), client_at(app, "192.0.2.51")
    for name in ("nobody", "somebody", "alice"):
        assert attempt(attacker, name).status_code == 401
    assert_rate_limited(attempt(attacker, "anyone-else"), 3)
    assert_rate_limited(attempt(attacker, "alice", PASSWORD), 3)
    assert attempt(neighbour, "alice", PASSWORD).status_code == 200


def test_successful_logins_are_not_counted(
    app: TasksAPI, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_LOGIN", "2 per minute")
    set_limit(monkeypatch, app, "RATE_LIMIT_LOGIN_ACCOUNT", "2 per minute")
    make_user("alice")
    client = client_at(app, "192.0.2.60")
    for _ in range(5):
        response = attempt(client, "alice", PASSWORD)
        assert response.status_code == 200
        assert int(response.headers["X-RateLimit-Remaining"]) == 2
    assert attempt(client, "alice").status_code == 401  # failures still count after them
    assert attempt(client, "alice").status_code == 401
    assert_rate_limited(attempt(client, "alice"), 2)


def test_register_is_limited_per_ip(app: TasksAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_REGISTER", "2 per minute")
    here, there = client_at(app, "192.0.2.70"), client_at(app, "192.0.2.71")

    def register(client: FlaskClient, name: str) -> TestResponse:
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        return client.post(REGISTER, json=body)

    assert [register(here, name).status_code for name in ("ann", "ben")] == [201, 201]
    assert_rate_limited(register(here, "cat"), 2)
    assert user_count(app) == 2
    assert register(there, "cat").status_code == 201
    assert user_count(app) == 3


def test_limits_off_holds_for_its_own_app_whichever_app_came_last(
    app: TasksAPI, build: AppFactory
) -> None:
    """Flask-Limiter is one object per process: RATELIMIT_ENABLED=false must switch off this
    app's limits, not every app's, and not only until another app is initialised."""
    tiny = {"RATE_LIMIT_REGISTER": "1 per minute", "RATE_LIMIT_ANONYMOUS": "1 per minute"}
    off = build(RATELIMIT_ENABLED=False, **tiny)
    on = build(**tiny)  # initialised last, with limits on

    def register(target: TasksAPI, name: str) -> TestResponse:
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        return client_at(target, "192.0.2.80").post(REGISTER, json=body)

    for name in ("ann", "ben", "cat"):
        response = register(off, name)
        assert response.status_code == 201
        assert not set(RATE_LIMIT_HEADERS) & set(response.headers)
    assert register(on, "dan").status_code == 201
    assert_rate_limited(register(on, "eve"), 1)
    assert user_count(app) == 4


# --- trusted proxies -------------------------------------------------------------------


def test_spoofed_forwarded_for_does_not_escape_the_ip_bucket(
    app: TasksAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.config["TRUSTED_PROXY_HOPS"] == 0
    set_limit(monkeypatch, app, "RATE_LIMIT_ANONYMOUS", "2 per minute")
    client = client_at(app, "203.0.113.20")
    for fake in ("1.1.1.1", "2.2.2.2"):
        assert client.get(TASKS, headers={"X-Forwarded-For": fake}).status_code == 401
    assert_rate_limited(client.get(TASKS, headers={"X-Forwarded-For": "3.3.3.3"}), 2)


def test_behind_a_trusted_proxy_the_forwarded_client_ip_is_the_bucket(build: AppFactory) -> None:
    behind_proxy = build(TRUSTED_PROXY_HOPS=1, RATE_LIMIT_ANONYMOUS="2 per minute")
    proxy = client_at(behind_proxy, "10.0.0.2")

    def get(forwarded_for: str) -> TestResponse:
        return proxy.get(TASKS, headers={"X-Forwarded-For": forwarded_for})

    # The proxy appends the real peer; whatever the client put before it is ignored.
    assert get("9.9.9.9, 203.0.113.30").status_code == 401
    assert get("8.8.8.8, 203.0.113.30").status_code == 401
    assert_rate_limited(get("203.0.113.30"), 2)
    # another client behind the same proxy has its own bucket
    response = get("203.0.113.31")
    assert response.status_code == 401
    assert_limit_headers(response, 2, 1)


# --- enumeration guard -----------------------------------------------------------------


@pytest.fixture
def guard(app: TasksAPI, monkeypatch: pytest.MonkeyPatch) -> int:
    """The enumeration guard set to 3 404s per minute."""
    set_limit(monkeypatch, app, "RATE_LIMIT_ENUMERATION", "3 per minute")
    return 3


@pytest.mark.parametrize("probe", ["missing", "someone else's"])
def test_404s_on_id_routes_lock_every_id_route_even_for_own_tasks(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, guard: int, clock: Clock, probe: str
) -> None:
    alice, bob = auth("alice"), auth("bob")
    own = create_task(client, alice)
    target = 999_999 if probe == "missing" else create_task(client, bob, "Bob's")
    for _ in range(guard):
        assert_problem(client.get(f"{TASKS}/{target}", headers=alice), 404)
    before = task_row(app, own)
    for method, suffix, body in ID_ROUTES:
        assert_rate_limited(call(client, method, f"{TASKS}/{own}{suffix}", alice, body), guard)
    assert task_row(app, own) == before
    # routes without an id, and other clients, are not affected
    assert client.get(TASKS, headers=alice).status_code == 200
    assert client.get(f"{TASKS}/{own}", headers=bob).status_code == 404

    clock.advance(MINUTE + 1)
    response = client.get(f"{TASKS}/{own}", headers=alice)
    assert response.status_code == 200
    assert response.get_json()["id"] == own


def test_answers_other_than_404_do_not_count_towards_the_guard(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, guard: int
) -> None:
    alice = auth()
    own = create_task(client, alice)
    for _ in range(guard + 2):
        assert client.get(f"{TASKS}/{own}", headers=alice).status_code == 200
        invalid = client.patch(f"{TASKS}/{own}", json={"title": ""}, headers=alice)
        assert invalid.status_code == 422
    for number in range(guard):  # the whole allowance of 404s is still there
        assert client.get(f"{TASKS}/{own + 1 + number}", headers=alice).status_code == 404
    assert_rate_limited(client.get(f"{TASKS}/{own}", headers=alice), guard)


# --- Redis: one limit for many workers; an outage keeps limiting -----------------------


def test_workers_sharing_redis_enforce_one_limit(
    build: AppFactory, auth: AuthHeaders, redis_url: str, namespace: str
) -> None:
    alice = auth()
    first = redis_worker(build, redis_url, namespace, RATE_LIMIT_FREE="3 per minute")
    first_client = first.test_client()
    for remaining in (2, 1):
        response = first_client.get(TASKS, headers=alice)
        assert response.status_code == 200
        assert_limit_headers(response, 3, remaining)
    assert any("LIMITER" in key for key in redis_keys(redis_url, namespace))
    # a second worker (a storage object of its own) sees the first one's count
    second = redis_worker(build, redis_url, namespace, RATE_LIMIT_FREE="3 per minute")
    second_client = second.test_client()
    response = second_client.get(TASKS, headers=alice)
    assert response.status_code == 200
    assert_limit_headers(response, 3, 0)
    assert_rate_limited(second_client.get(TASKS, headers=alice), 3)
    assert_rate_limited(first_client.get(TASKS, headers=alice), 3)


def test_unreachable_redis_still_limits_per_process_and_never_fails(
    app: TasksAPI, build: AppFactory, auth: AuthHeaders
) -> None:
    alice = auth()
    task_id = create_task(app.test_client(), alice)
    worker = build(REDIS_URL=UNREACHABLE_REDIS_URL, RATE_LIMIT_FREE="3 per minute")
    client = worker.test_client()
    for remaining in (2, 1, 0):  # reads still answer, uncached
        response = client.get(f"{TASKS}/{task_id}", headers=alice)
        assert response.status_code == 200
        assert response.get_json()["id"] == task_id
        assert response.headers["X-Cache"] == "miss"
        assert_limit_headers(response, 3, remaining)
    assert_rate_limited(client.get(f"{TASKS}/{task_id}", headers=alice), 3)


def cut_off(monkeypatch: pytest.MonkeyPatch, client: redis.Redis) -> None:
    """Make a live Redis client lose its server (port 1: nothing listens)."""
    pool = client.connection_pool
    monkeypatch.setitem(pool.connection_kwargs, "port", 1)
    pool.disconnect()
    pool.reset()  # forget the pooled connections: new ones go to the dead port


def test_redis_going_down_mid_test_keeps_limiting(
    build: AppFactory,
    auth: AuthHeaders,
    redis_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = auth()
    worker = redis_worker(build, redis_url, namespace, RATE_LIMIT_FREE="3 per minute")
    client = worker.test_client()
    for _ in range(2):
        assert client.get(TASKS, headers=alice).status_code == 200
    limiter = app_limiter(worker)
    assert limiter is not None
    storage: Any = limiter.storage  # limits' RedisStorage: `.storage` is its client
    cut_off(monkeypatch, storage.storage)
    with worker.app_context():
        backend: Any = cache.cache  # Flask-Caching's RedisCache
        cut_off(monkeypatch, backend._read_client)
        cut_off(monkeypatch, backend._write_client)
    responses = [client.get(TASKS, headers=alice) for _ in range(4)]
    # counting restarts in process memory: never a 500, never unlimited; reads uncached
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers.get("X-Cache") for r in responses[:3]] == ["miss"] * 3
    assert_rate_limited(responses[-1], 3)


# --- CORS and security headers ---------------------------------------------------------

ORIGIN = "https://app.example"
EXPOSED = {
    "etag",
    "link",
    "location",
    "x-total-count",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
}


def exposed(response: TestResponse) -> set[str]:
    value = response.headers.get("Access-Control-Expose-Headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def test_cors_allows_the_configured_origin_and_exposes_the_api_headers(
    build: AppFactory, auth: AuthHeaders
) -> None:
    alice = auth()
    client = build(CORS_ORIGINS=f"{ORIGIN}, https://other.example").test_client()
    preflight = client.options(
        TASKS,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Idempotency-Key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    for name in ("authorization", "if-match", "idempotency-key"):
        assert name in allowed
    response = client.get(TASKS, headers={"Origin": ORIGIN, **alice})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert exposed(response) >= EXPOSED


@pytest.mark.parametrize("configured", [True, False])
def test_cors_sends_nothing_to_other_origins(
    app: TasksAPI, build: AppFactory, auth: AuthHeaders, configured: bool
) -> None:
    alice = auth()
    target = build(CORS_ORIGINS=ORIGIN) if configured else app
    client = target.test_client()
    for response in (
        client.get(TASKS, headers={"Origin": "https://evil.example", **alice}),
        client.options(
            TASKS,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Expose-Headers" not in response.headers
    if not configured:
        response = client.get(TASKS, headers={"Origin": ORIGIN, **alice})
        assert "Access-Control-Allow-Origin" not in response.headers


def test_a_429_carries_the_security_headers(
    app: TasksAPI, client: FlaskClient, auth: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "1 per minute")
    alice = auth()
    assert client.get(TASKS, headers=alice).status_code == 200
    refused = client.get(TASKS, headers=alice)
    assert_rate_limited(refused, 1)
    assert_security_headers(refused)
    assert refused.headers["Cache-Control"] == "private, no-cache"


# --- the spec --------------------------------------------------------------------------


def operations(spec_path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    spec = json.loads(spec_path.read_text())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_spec_documents_429_and_rate_limit_headers_on_every_api_operation(
    spec_path: Path,
) -> None:
    spec = json.loads(spec_path.read_text())
    for name in (*RATE_LIMIT_HEADERS, "Retry-After"):
        # 32-bit like every integer of this API, but a Unix time (2038).
        bits = "int64" if name == "X-RateLimit-Reset" else "int32"
        schema = spec["components"]["headers"][name]["schema"]
        assert (schema["type"], schema["format"]) == ("integer", bits)
        assert schema["minimum"] == (1 if name == "X-RateLimit-Limit" else 0)
    checked = 0
    for path, method, operation in operations(spec_path):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        if not is_api_path(path):
            assert "429" not in responses, where
            continue
        too_many = responses.get("429")
        assert too_many is not None, where
        schema = too_many["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}, where
        assert too_many["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
        for status, response in responses.items():
            for name in RATE_LIMIT_HEADERS:
                ref = {"$ref": f"#/components/headers/{name}"}
                assert response["headers"].get(name) == ref, f"{where} {status} {name}"
        checked += 1
    assert checked >= 12


def test_api_key_requests_share_their_owners_budget(
    app: TasksAPI, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key is its owner's credential: it draws on the owner's budget, from any IP.
    make_user("alice")
    client = client_at(app, "192.0.2.90")
    token = login(client, "alice")["access_token"]
    created = client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=bearer(token)
    )
    assert created.status_code == 201
    key = {"X-API-Key": created.get_json()["secret"]}
    set_limit(monkeypatch, app, "RATE_LIMIT_FREE", "3 per minute")
    elsewhere = client_at(app, "192.0.2.91")
    assert elsewhere.get("/api/v1/tasks", headers=key).status_code == 200
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    assert elsewhere.get("/api/v1/tasks", headers=key).status_code == 200
    assert_rate_limited(client_at(app, "192.0.2.92").get("/api/v1/tasks", headers=key), 3)
