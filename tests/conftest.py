"""Fixtures: one app per backend, a client, users and their tokens.

Every test that uses `app` runs on SQLite; when `TEST_DATABASE_URL` is set, again on a
real PostgreSQL (in a database created for this run and dropped after it); and when
`TEST_REDIS_URL` is set, again on SQLite with the Redis revocation store (under a key
prefix of its own, removed after each test). `REQUIRE_TEST_TIERS=postgresql,redis` (set
by `.ci/run`) makes a missing tier an error instead of a skip.

Helpers live in tests/support/; this file holds fixtures and hooks only. A whole run (no
paths, -k or -m) fails if some operation of the spec never answered a test under 400.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from werkzeug.serving import make_server

from api.extensions import cache, db
from api.limits import app_limiter
from api.models import Role, User
from api.openapi import SPEC_FILE, TasksAPI
from api.services.passwords import hash_password
from tests.support import operations
from tests.support.apps import (
    POSTGRES_TEST_OPTIONS,
    AppFactory,
    LiveServer,
    app_factory,
    clear_redis,
    dispose,
    make_app,
    redis_config,
)
from tests.support.auth import PASSWORD, AuthHeaders, Headers, bearer, login
from tests.support.clock import Clock
from tests.support.db import fresh_postgres_database
from tests.support.processes import RedisServer, redis_server
from tests.support.redis_keys import redis_namespace
from tests.support.tiers import answering_redis, tier_missing


def whole_suite(config: pytest.Config) -> bool:
    """Whether this run is the whole suite (`make test`): no paths, -k, -m, --lf, --deselect."""
    option = config.option
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not (option.keyword or option.markexpr or option.lf or option.deselect)
        and not option.collectonly
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist (controller): add what a worker served to this process's record."""
    operations.SERVED.update(node.workeroutput.get("served_operations", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a whole-suite run that left an API operation unserved (DESIGN.md: `make test`
    exercises every operation). A worker hands its record to the controller instead."""
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["served_operations"] = sorted(operations.SERVED)
        return
    if exitstatus != pytest.ExitCode.OK or not whole_suite(config):
        return
    unserved = operations.unserved(SPEC_FILE)
    if unserved:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"no test was answered under 400 by {', '.join(unserved)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def backends() -> list[str]:
    return ["sqlite", "postgresql", "redis"]


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/e2e/ get the `e2e` marker (`-m "not e2e"` leaves them out).

    The `redis` backend runs only in modules marked `redis_tier` (authentication,
    accounts, keys): elsewhere it would repeat the SQLite run, at the suite's expense."""
    keep, drop = [], []
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        on_redis = callspec is not None and callspec.params.get("app") == "redis"
        (drop if on_redis and item.get_closest_marker("redis_tier") is None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    with fresh_postgres_database(postgres_server) as url:
        yield url


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
    """A Redis of this test's own, which it may kill and restart."""
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


@pytest.fixture
def auth(client: FlaskClient, make_user: Callable[..., User]) -> AuthHeaders:
    """`auth("bob")` creates bob (once), logs him in and returns his headers."""
    created: set[str] = set()

    def headers(username: str = "alice", role: str = Role.USER.value) -> Headers:
        if username not in created:
            make_user(username, role=role)
            created.add(username)
        return bearer(login(client, username)["access_token"])

    return headers


@pytest.fixture
def alice(auth: AuthHeaders) -> Headers:
    return auth("alice")


@pytest.fixture
def bob(auth: AuthHeaders) -> Headers:
    return auth("bob")


@pytest.fixture
def admin(auth: AuthHeaders) -> Headers:
    return auth("root", role=Role.ADMIN.value)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr("api.clock.now", moved.now)
    return moved


@pytest.fixture
def build(app: TasksAPI) -> Iterator[AppFactory]:
    """Other apps ("workers") on the session app's database, undone after the test."""
    with app_factory(app) as factory:
        yield factory


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis key prefix for this test; its keys are deleted after it."""
    with redis_namespace(redis_url) as prefix:
        yield prefix


@pytest.fixture(scope="session")
def spec_path() -> Path:
    return Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on its own SQLite file, served by werkzeug in a thread for the whole session.

    Tests that share it register users of their own (unique names) instead of emptying it.
    """
    application = make_app(f"sqlite:///{tmp_path_factory.mktemp('live') / 'tasks.db'}")
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
