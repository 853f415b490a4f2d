"""Real gunicorn: graceful shutdown, one rate limit and one revocation across processes,
metrics summed over workers.

Each test starts its own gunicorn masters (`gunicorn -c gunicorn.conf.py`, as `make
serve` does) on free ports over a SQLite file, and kills them when it ends.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import add_user, app_with_schema, dispose, isolated_process_state
from tests.support.auth import PASSWORD, bearer
from tests.support.processes import gunicorn_servers, wait_until

# The shutdown test's grace: long, so that a loaded machine cannot make a shutdown that
# waited only for the in-flight request look like one that waited out the grace.
GRACEFUL_TIMEOUT = 30
SLOW_APP = "tests.support.slow_app"


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A SQLite file with the schema and the user `alice`, for the servers to share."""
    url = f"sqlite:///{tmp_path / 'served.db'}"
    with isolated_process_state():
        application = app_with_schema(url)
        add_user(application, "alice")
        dispose(application)
    return url


def redis_keys(url: str, prefix: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return list(client.scan_iter(match=f"*{prefix}*"))


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in the test Redis; its keys are deleted after."""
    prefix = f"tasks-api-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = redis_keys(redis_url, prefix)
    if keys:
        with redis.Redis.from_url(redis_url) as client:
            client.delete(*keys)


def access_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON request lines (logger `api.access`) in a server's log."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "api.access":
                lines.append(record)
    return lines


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for family in text_string_to_metric_families(metrics):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


def shared_state(database: str, redis_url: str, prefix: str, **settings: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "RATELIMIT_KEY_PREFIX": prefix,
        "CACHE_KEY_PREFIX": f"{prefix}:",
        **settings,
    }


def test_sigterm_finishes_the_in_flight_request_and_exits_0(database: str, tmp_path: Path) -> None:
    marker = tmp_path / "slow-request-started"
    settings = {
        "DATABASE_URL": database,
        "WEB_CONCURRENCY": "2",
        "SLOW_MARKER": str(marker),
        "SLOW_SECONDS": "2",
        "LOG_FORMAT": "json",
        "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
    }
    with gunicorn_servers(1, SLOW_APP, tmp_path, **settings) as [server]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(
                server.request, "GET", "/slow", headers={"X-Request-ID": "slow-1"}, timeout=20
            )
            wait_until(marker.exists, 10, "the slow request to reach the app")
            terminated_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            reply = in_flight.result(timeout=20)
        exit_code = server.process.wait(timeout=GRACEFUL_TIMEOUT + 5)
        shutdown_seconds = time.monotonic() - terminated_at
        workers_left = server.group_alive()

    assert reply.status == 200
    assert reply.json() == {"status": "finished"}
    assert reply.headers["x-request-id"] == "slow-1"
    assert exit_code == 0
    assert shutdown_seconds < GRACEFUL_TIMEOUT
    assert not workers_left
    # gunicorn writes no access log of its own: the app's JSON line is the one record.
    slow = [line for line in access_lines(server.log) if line["request_id"] == "slow-1"]
    assert len(slow) == 1
    assert slow[0]["route"] == "/slow"
    assert slow[0]["status"] == 200
    assert slow[0]["duration_ms"] >= 2000


def test_two_processes_enforce_one_rate_limit(
    database: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = shared_state(database, redis_url, redis_prefix, RATE_LIMIT_ANONYMOUS="4 per minute")
    with gunicorn_servers(2, "wsgi", tmp_path, **settings) as [a, b]:
        replies = [server.request("GET", "/api/v1/tasks") for server in (a, b, a, b, a)]
        keys = redis_keys(redis_url, redis_prefix)

    assert [reply.status for reply in replies] == [401, 401, 401, 401, 429]
    remaining = [reply.headers["x-ratelimit-remaining"] for reply in replies[:4]]
    assert remaining == ["3", "2", "1", "0"]
    refused = replies[4]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert int(refused.headers["retry-after"]) > 0
    assert keys, "the counters should live in Redis"


def test_two_processes_share_one_revocation_and_one_cache(
    database: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = shared_state(database, redis_url, redis_prefix)
    with gunicorn_servers(2, "wsgi", tmp_path, **settings) as [a, b]:
        login = a.request(
            "POST", "/api/v1/auth/login", body={"login": "alice", "password": PASSWORD}
        )
        assert login.status == 200, login.body
        tokens = login.json()
        access, refresh = bearer(tokens["access_token"]), bearer(tokens["refresh_token"])
        first = a.request("GET", "/api/v1/users/me", headers=access)
        second = b.request("GET", "/api/v1/users/me", headers=access)
        logout = b.request("POST", "/api/v1/auth/logout", headers=access)
        after = {
            name: server.request("GET", "/api/v1/users/me", headers=access)
            for name, server in (("a", a), ("b", b))
        }
        refreshed = a.request("POST", "/api/v1/auth/refresh", headers=refresh)

    assert (first.status, second.status) == (200, 200)
    assert first.json()["username"] == second.json()["username"] == "alice"
    # One response cache: what A stored, B serves.
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert logout.status == 204
    for name, reply in after.items():
        assert reply.status == 401, f"server {name} still accepts the revoked token"
        assert reply.json()["detail"] == "The token has been revoked."
    assert refreshed.status == 401


def test_metrics_add_up_every_worker(database: str, tmp_path: Path) -> None:
    # One worker at a time, replaced after every 4 requests: the worker that answers
    # /metrics has served at most 3 of the 6 readiness checks, so the count is only right
    # if the samples of the workers that have exited are added in (multiprocess mode).
    settings = {
        "DATABASE_URL": database,
        "METRICS_ENABLED": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_MAX_REQUESTS": "4",
    }
    with gunicorn_servers(1, "wsgi", tmp_path, **settings) as [server]:
        statuses = [server.request("GET", "/health/ready").status for _ in range(6)]
        scraped = server.request("GET", "/metrics")

    assert statuses == [200] * 6
    assert scraped.status == 200
    metrics = scraped.body.decode()
    assert "Autorestarting worker" in server.log.read_text(errors="replace")
    ready = {"method": "GET", "route": "/health/ready"}
    assert sample(metrics, "tasks_api_requests_total", status="200", **ready) == 6
    assert sample(metrics, "tasks_api_request_duration_seconds_count", **ready) == 6
