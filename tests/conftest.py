"""Fixtures: one app per backend, a client, users and their tokens.

Every test that uses `app` runs on SQLite; when `TEST_DATABASE_URL` is set, again on a
real PostgreSQL (in a database created for this run and dropped after it); and when
`TEST_REDIS_URL` is set, again on SQLite with the Redis revocation store (under a key
prefix of its own, removed after each test). `REQUIRE_TEST_TIERS=postgresql,redis` (set
by `.ci/run`) makes a missing tier an error instead of a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis.configuration import set_hypothesis_home_dir
from redis import Redis, RedisError
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from werkzeug.serving import make_server

from api import create_app
from api.extensions import cache, db
from api.limits import app_limiter
from api.models import Role, User
from api.openapi import TasksAPI
from api.security import hash_password
from tests.support.processes import RedisServer, redis_server

REQUIRED_TIERS = {t for t in os.environ.get("REQUIRE_TEST_TIERS", "").split(",") if t}
PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis (under schemathesis) keeps caches in `./.hypothesis` even without an example
    database: keep them in a temporary directory, not in the source tree."""
    directory = tempfile.mkdtemp(prefix="tasks-api-hypothesis-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    set_hypothesis_home_dir(directory)


def tier_missing(tier: str, reason: str) -> None:
    """Skip a test for a missing tier, or fail when CI requires that tier."""
    if tier in REQUIRED_TIERS:
        pytest.fail(f"required test tier {tier!r} unavailable: {reason}")
    pytest.skip(reason)


def backends() -> list[str]:
    return ["sqlite", "postgresql", "redis"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `redis` backend runs only in modules marked `redis_tier` (authentication,
    accounts, keys): elsewhere it would repeat the SQLite run, at the suite's expense."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_redis = callspec is not None and callspec.params.get("app") == "redis"
        (drop if on_redis and item.get_closest_marker("redis_tier") is None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create an empty database on the server of `base_url`; drop it afterwards."""
    name = f"tasks_api_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """`TEST_DATABASE_URL`, checked to answer; skips (or fails in CI) otherwise."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        tier_missing("postgresql", "TEST_DATABASE_URL is not set")
    engine = create_engine(base)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as error:
        tier_missing("postgresql", f"cannot reach PostgreSQL: {error}")
    finally:
        engine.dispose()
    return base


# Commits do not wait for the WAL to reach the disk: a crash could lose the last
# transactions of a test database, which is thrown away anyway. Tests run much faster.
POSTGRES_TEST_OPTIONS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {
        "pool_pre_ping": True,
        "connect_args": {"options": "-c synchronous_commit=off"},
    }
}


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    with fresh_postgres_database(postgres_server) as url:
        yield url


def answering_redis(tier: str, url: str | None, unset: str) -> str:
    """`url`, checked to answer; skips the tier (or fails it in CI) otherwise."""
    if not url:
        tier_missing(tier, unset)
    client = Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except RedisError as error:
        tier_missing(tier, f"cannot reach Redis at {url}: {error}")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """`TEST_REDIS_URL`, checked to answer; skips (or fails in CI) otherwise."""
    return answering_redis("redis", os.environ.get("TEST_REDIS_URL"), "TEST_REDIS_URL is not set")


@pytest.fixture(scope="session")
def celery_broker_url() -> str:
    """A Redis database for Celery tests: `TEST_CELERY_BROKER_URL`, else database 12 of
    `TEST_REDIS_URL`'s server (keys under a per-run prefix). Skips (fails in CI) without."""
    url = os.environ.get("TEST_CELERY_BROKER_URL")
    if not url and os.environ.get("TEST_REDIS_URL"):
        url = make_url(os.environ["TEST_REDIS_URL"]).set(database="12").render_as_string()
    return answering_redis(
        "celery", url, "neither TEST_CELERY_BROKER_URL nor TEST_REDIS_URL is set"
    )


@pytest.fixture
def redis_executable() -> str:
    found = shutil.which("redis-server")
    if found is None:
        tier_missing("redis", "redis-server is not installed")
    assert found is not None
    return found


@pytest.fixture
def private_redis(tmp_path: Path, redis_executable: str) -> Iterator[RedisServer]:
    with redis_server(redis_executable, tmp_path / "redis.log") as server:
        yield server


# The RabbitMQ of the `rabbitmq` tier (the machine's own; each test uses queues of its own).
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """`TEST_AMQP_URL` (default: guest on 127.0.0.1:5672), checked to answer; skips the
    `rabbitmq` tier (or fails it in CI) otherwise."""
    from kombu import Connection

    url = os.environ.get("TEST_AMQP_URL", DEFAULT_AMQP_URL)
    connection = Connection(url, connect_timeout=2)
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as error:
        tier_missing("rabbitmq", f"cannot reach RabbitMQ at {url}: {error}")
    finally:
        connection.release()
    return url


# A Redis URL where nothing listens: Redis "down" without stopping the shared server.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


def redis_config(url: str) -> dict[str, Any]:
    """Settings for the Redis revocation store, under a key prefix no one else uses
    (other test runs may share this Redis)."""
    prefix = f"tasks-api-test-{uuid.uuid4().hex[:10]}:"
    # Only the revocation store: limits and the response cache stay in memory here
    # (their Redis tiers live in tests/test_limits.py and tests/test_cache.py).
    return {
        "REDIS_URL": url,
        "REVOCATION_KEY_PREFIX": prefix,
        "RATELIMIT_STORAGE_URI": "memory://",
        "CACHE_TYPE": "SimpleCache",
    }


# Nothing listens on port 1: connections are refused at once.
# (The revocation store's; limits and cache keep to memory, as in `redis_config`.)
UNREACHABLE_REDIS = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "REDIS_SOCKET_TIMEOUT": 0.2,
    "RATELIMIT_STORAGE_URI": "memory://",
    "CACHE_TYPE": "SimpleCache",
}


def clear_redis(app: TasksAPI) -> None:
    """Delete every key of `app`'s prefix (never the whole Redis database)."""
    client: Redis | None = app.extensions.get("redis")
    if client is not None:
        keys = list(client.scan_iter(match=app.config["REVOCATION_KEY_PREFIX"] + "*", count=1000))
        if keys:
            client.delete(*keys)


def dispose(app: TasksAPI) -> None:
    """Close `app`'s connections (pytest turns unclosed sockets into errors)."""
    client: Redis | None = app.extensions.get("redis")
    if client is not None:
        client.close()
    with app.app_context():
        db.engine.dispose()


def make_app(database_url: str, **config: Any) -> TasksAPI:
    return create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, **config})


@pytest.fixture(scope="session", params=backends())
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TasksAPI]:
    config: dict[str, Any] = {}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        config = POSTGRES_TEST_OPTIONS
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tasks.db'}"
    if request.param == "redis":
        config = redis_config(request.getfixturevalue("redis_url"))
    application = make_app(url, **config)
    with application.app_context():
        db.create_all()
    yield application
    clear_redis(application)
    with application.app_context():
        db.drop_all()
    dispose(application)


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty tables (cheaper than re-creating the schema)."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    clear_redis(application)
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        # Counters and cached answers are per test too.
        limiter = app_limiter(application)
        if limiter is not None:
            limiter.reset()
        cache.clear()


@pytest.fixture
def client(app: TasksAPI) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(app: TasksAPI) -> Callable[..., User]:
    """Insert a user directly; returns a detached copy with `id` set."""

    def factory(username: str = "alice", role: str = Role.USER.value, **fields: Any) -> User:
        with app.app_context():
            user = User(
                username=username,
                email=fields.pop("email", f"{username}@example.com"),
                password_hash=hash_password(fields.pop("password", PASSWORD)),
                role=role,
                **fields,
            )
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return factory


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"login": username, "password": password})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client: FlaskClient, make_user: Callable[..., User]) -> Callable[..., dict[str, str]]:
    """`auth("bob")` creates bob (once), logs him in and returns his headers."""
    created: set[str] = set()

    def headers(username: str = "alice", role: str = Role.USER.value) -> dict[str, str]:
        if username not in created:
            make_user(username, role=role)
            created.add(username)
        return bearer(login(client, username)["access_token"])

    return headers


class Clock:
    """The services' time (`api.services.clock.now`), moved on by tests instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr("api.services.clock.now", moved.now)
    return moved


@pytest.fixture(scope="session")
def spec_path() -> Path:
    return Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


@dataclass(frozen=True)
class LiveServer:
    """A real HTTP server on a loopback port, for clients that need one (SDK, browser)."""

    url: str
    app: TasksAPI


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on its own SQLite file, served by werkzeug in a thread for the whole session.

    Tests that share it register users of their own (unique names) instead of emptying it.
    """
    directory = tmp_path_factory.mktemp("live")
    application = make_app(
        f"sqlite:///{directory / 'tasks.db'}", ATTACHMENTS_DIR=str(directory / "attachments")
    )
    with application.app_context():
        db.create_all()
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}", application)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    with application.app_context():
        db.engine.dispose()


NODE_TOOLS = Path(__file__).resolve().parent.parent / "contract"


@pytest.fixture(scope="session")
def node_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """contract/package.json's pinned tools, `npm ci`-installed once per session into a tmp
    dir; returns their `node_modules/.bin`. Skips (fails in CI) without node and npm."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        tier_missing("node", "node and npm are not installed")
    directory = tmp_path_factory.mktemp("node-tools")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(NODE_TOOLS / name, directory / name)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [npm, "ci", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"],
        cwd=directory,
        env={**os.environ, "SCARF_ANALYTICS": "false"},  # spectral-cli's telemetry
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        tier_missing("node", f"npm ci failed: {result.stderr[-2000:]}")
    return directory / "node_modules" / ".bin"


@contextmanager
def sql_statements(app: TasksAPI) -> Iterator[list[str]]:
    """Every SQL statement `app`'s engine runs while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
