"""`make bench`: Tasks API against its baselines, in one run, on loopback.

For each database (SQLite, then PostgreSQL; `BENCH_BACKENDS` picks), starts every server
with the same worker count on a fresh database seeded with the same data (10 000 tasks
across 100 users, with tags), checks that the app and both baselines answer the list
with the same body bytes, warms up, then drives every scenario with wrk in interleaved
rounds (A B C ... A B C ...) so that machine drift cancels out. Prints a table (req/s
median, p50, p99, errors) and the ratios the performance targets are stated in, plus
worker RSS after the rounds and along a soak. Nothing here is a test: it prints figures
(bench/RESULTS.md records a run).

The baselines (bench/baselines) do the list's work as a plain Flask or FastAPI service
would: PyJWT verification of the same token, a user lookup, the same rows through a
SQLAlchemy session, the same bytes out.

Environment: BENCH_BACKENDS (default `sqlite,postgresql`), BENCH_DATABASE_URL (PostgreSQL
server, default the local one), BENCH_SECONDS (per measurement, default 4), BENCH_ROUNDS
(default 3), BENCH_SOAK_SECONDS (default 60), BENCH_WORKERS (default 2).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SOAK_SECONDS = int(os.environ.get("BENCH_SOAK_SECONDS", "60"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite,postgresql").split(",")
CONNECTIONS = 16
PASSWORD = "bench-password-123"
SECRET = "bench-secret-" + "x" * 40
USERS, TASKS_PER_USER, TAGS = 100, 100, 50


# --- data ------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="tasks-api-bench-db-"))
        try:
            yield f"sqlite:///{directory / 'tasks.db'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"tasks_api_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": "smtp",  # production refuses to guess one
        "WEB_CONCURRENCY": WORKERS,
        "LOG_LEVEL": "WARNING",  # the per-request access line is measured in one scenario
        # Limits stay on (they are evaluated on every request) but never trip here.
        "RATE_LIMIT_FREE": "100000000 per minute",
        "RATE_LIMIT_PRO": "100000000 per minute",
        "RATE_LIMIT_ANONYMOUS": "100000000 per minute",
        "RATE_LIMIT_ENUMERATION": "100000000 per minute",
        **extra,
    }


def seed(database_url: str) -> None:
    """Migrate, then 100 users (user 1 is an admin) with 100 tasks each and 50 tags."""
    env = app_env(database_url)
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    os.environ.update({k: env[k] for k in ("SECRET_KEY", "JWT_SECRET_KEY")})
    sys.path.insert(0, str(ROOT))
    from api import create_app
    from api.models import Tag, Task, User, task_tags
    from api.services.passwords import hash_password

    app = create_app(
        {
            "APP_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "ARGON2_TIME_COST": 3,
            "ARGON2_MEMORY_COST": 64 * 1024,
        }
    )
    engine = create_engine(database_url)
    with app.app_context():
        password_hash = hash_password(PASSWORD)
    rng = random.Random(2026)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "id": i,
                    "username": f"user{i}",
                    "email": f"user{i}@example.com",
                    "password_hash": password_hash,
                    "role": "admin" if i == 1 else "user",
                    "tier": "free",
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, USERS + 1)
            ],
        )
        conn.execute(insert(Tag), [{"id": i, "name": f"tag{i}"} for i in range(1, TAGS + 1)])
        tasks, links = [], []
        for n in range(USERS * TASKS_PER_USER):
            created = now - timedelta(minutes=n)
            tasks.append(
                {
                    "id": n + 1,
                    "owner_id": n % USERS + 1,
                    "title": f"Task {n} for the benchmark",
                    "description": "Measure, then optimise." if n % 3 else None,
                    "status": rng.choice(["pending", "in_progress", "completed"]),
                    "priority": rng.choice(["low", "medium", "high", "urgent"]),
                    "due_date": created + timedelta(days=rng.randrange(-30, 30)) if n % 2 else None,
                    "created_at": created,
                    "updated_at": created,
                    "completed_at": None,
                    "version": 1,
                }
            )
            links += [{"task_id": n + 1, "tag_id": t} for t in rng.sample(range(1, TAGS + 1), 2)]
        conn.execute(insert(Task), tasks)
        conn.execute(insert(task_tags), links)
        if conn.dialect.name == "postgresql":
            for table in ("users", "tags", "tasks"):
                conn.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
        conn.execute(text("ANALYZE"))
    engine.dispose()


# --- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> None:
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "PORT": str(self.port)}
        log = open(log_dir / f"{self.name}.log", "wb")  # noqa: SIM115 - lives with the process
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited; see {log_dir / self.name}.log"
                    ) from None
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def worker_rss_mib(self) -> list[float]:
        """Resident memory of each worker process (children of the master)."""
        if self.process is None:
            return []
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        sizes = []
        for pid in children:
            status = Path(f"/proc/{pid}/status")
            if status.exists():
                match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
                if match:
                    sizes.append(int(match.group(1)) / 1024)
        return sizes


def gunicorn(name: str, target: str, env: dict[str, str]) -> Server:
    return Server(name, [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", target], env)


def request_json(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


# --- load ------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    server: Server
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    script: str | None = None  # a wrk Lua script (POST)
    samples: list[dict[str, float]] = field(default_factory=list)


def wrk(scenario: Scenario, seconds: int) -> dict[str, float]:
    command = [
        shutil.which("wrk") or "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for key, value in scenario.headers.items():
        command += ["-H", f"{key}: {value}"]
    if scenario.script:
        command += ["-s", scenario.script]
    output = subprocess.run(
        [*command, scenario.server.base + scenario.path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(output)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        output,
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    total = re.search(r"(\d+) requests in", output)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "errors": errors,
        "requests": int(total.group(1)) if total else 0,
    }


def median(scenario: Scenario, key: str) -> float:
    return statistics.median(sample[key] for sample in scenario.samples)


# --- the run ---------------------------------------------------------------------------


def fetch(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as reply:
        body: bytes = reply.read()
        return body


LIST = "/api/v1/tasks?per_page=20"


def check_same_bodies(servers: dict[str, Server], headers: dict[str, str]) -> int:
    """The app and both baselines answer the list with identical bytes (else stop)."""
    bodies = {name: fetch(servers[name].base + LIST, headers) for name in BASELINED}
    if len(set(bodies.values())) != 1:
        for name, body in bodies.items():
            print(f"--- {name}\n{body[:600]!r}")
        raise SystemExit("the baselines do not answer the app's body: no fair comparison")
    return len(bodies["app"])


BASELINED = ("app", "raw-flask", "fastapi")


def run_backend(backend: str, log_dir: Path, post_script: Path) -> None:
    with fresh_database(backend) as database_url:
        print(f"[{backend}] seeding {USERS * TASKS_PER_USER} tasks for {USERS} users", flush=True)
        seed(database_url)
        base_env = app_env(database_url)
        servers = {
            "app": gunicorn("app", "wsgi:app", {**base_env, "CACHE_TYPE": "NullCache"}),
            "app-cached": gunicorn(
                "app-cached", "wsgi:app", {**base_env, "CACHE_TYPE": "SimpleCache"}
            ),
            "raw-flask": gunicorn("raw-flask", "bench.baselines.raw_flask:app", base_env),
            "ping": gunicorn("ping", "bench.baselines.ping:app", base_env),
            "fastapi": Server(
                "fastapi",
                [
                    str(BIN / "uvicorn"),
                    "bench.baselines.fastapi_app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    "--workers",
                    WORKERS,
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                base_env,
            ),
        }
        try:
            for server in servers.values():
                server.start(log_dir)
            app, cached = servers["app"], servers["app-cached"]

            def token(server: Server, user: str) -> dict[str, str]:
                pair = request_json(
                    f"{server.base}/api/v1/auth/login", {"login": user, "password": PASSWORD}
                )
                return {"Authorization": f"Bearer {pair['access_token']}"}

            user2, admin = token(app, "user2"), token(app, "user1")
            user3 = token(app, "user3")
            user2_cached = token(cached, "user2")
            size = check_same_bodies(servers, user2)
            print(f"[{backend}] app, raw Flask and FastAPI bodies identical ({size} bytes)")
            task = request_json(f"{app.base}/api/v1/tasks?per_page=1", headers=user2)["data"][0]
            etag = urllib.request.urlopen(
                urllib.request.Request(f"{app.base}/api/v1/tasks/{task['id']}", headers=user2)
            ).headers["ETag"]
            # The cursor that starts the 500th page of the admin's view (rows 9981..10000).
            depth = request_json(
                f"{app.base}/api/v1/tasks?sort=id&per_page=20&page=499", headers=admin
            )["pagination"]["next_cursor"]

            scenarios = [
                Scenario("list, limits on, cache off", app, LIST, user2),
                Scenario("list, cache on (hit)", cached, LIST, user2_cached),
                Scenario("raw Flask + SQLAlchemy list", servers["raw-flask"], LIST, user2),
                Scenario("FastAPI + pydantic list", servers["fastapi"], LIST, user2),
                Scenario("get task", app, f"/api/v1/tasks/{task['id']}", user2),
                Scenario(
                    "get task, If-None-Match (304)",
                    app,
                    f"/api/v1/tasks/{task['id']}",
                    {**user2, "If-None-Match": etag},
                ),
                Scenario("create task (POST)", app, "/api/v1/tasks", user3, str(post_script)),
                Scenario("admin page 1 (sort=id)", app, "/api/v1/tasks?sort=id&per_page=20", admin),
                Scenario(
                    "admin page=500 (OFFSET)",
                    app,
                    "/api/v1/tasks?sort=id&per_page=20&page=500",
                    admin,
                ),
                Scenario(
                    "admin after= cursor at depth 500",
                    app,
                    f"/api/v1/tasks?sort=id&per_page=20&after={depth}",
                    admin,
                ),
                Scenario("/health/live", app, "/health/live"),
                Scenario("bare /ping", servers["ping"], "/"),
            ]
            print(f"[{backend}] warming up", flush=True)
            for scenario in scenarios:
                wrk(scenario, 1)
            for round_number in range(1, ROUNDS + 1):
                print(f"[{backend}] round {round_number}/{ROUNDS}", flush=True)
                for scenario in scenarios:  # interleaved: A B C ... A B C ...
                    scenario.samples.append(wrk(scenario, SECONDS))
            rss_after_rounds = {name: servers[name].worker_rss_mib() for name in ("app",)}
            served = sum(s["requests"] for sc in scenarios if sc.server is app for s in sc.samples)

            soak = Scenario("soak: list", app, LIST, user2)
            rss_series = []
            soak_started = time.monotonic()
            while time.monotonic() - soak_started < SOAK_SECONDS:
                soak.samples.append(wrk(soak, min(10, SOAK_SECONDS)))
                rss_series.append(app.worker_rss_mib())
        finally:
            for server in servers.values():
                server.stop()

    report(backend, scenarios, rss_after_rounds, served, rss_series, soak)


def main() -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="tasks-api-bench-"))
    post_script = log_dir / "post.lua"
    post_script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"title": "Benchmark task", "priority": "high", "tags": ["bench"]}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    print(versions(), flush=True)
    for backend in BACKENDS:
        run_backend(backend, log_dir, post_script)


def versions() -> str:
    """What ran: the interpreter and the packages the figures depend on."""
    from importlib.metadata import version

    names = ["apiflask", "flask", "flask-limiter", "marshmallow", "sqlalchemy", "psycopg"]
    names += ["pyjwt", "orjson", "gunicorn", "fastapi", "pydantic", "uvicorn"]
    packages = ", ".join(f"{name} {version(name)}" for name in names)
    return f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {packages}"


def report(
    backend: str,
    scenarios: list[Scenario],
    rss_after_rounds: dict[str, list[float]],
    served: int,
    rss_series: list[list[float]],
    soak: Scenario,
) -> None:
    by_name = {s.name: s for s in scenarios}

    def rps(name: str) -> float:
        return median(by_name[name], "rps")

    print(
        f"\nTasks API benchmark on {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, {WORKERS} workers each, wrk {CONNECTIONS} connections, "
        f"{ROUNDS} interleaved rounds of {SECONDS} s\n"
    )
    print(
        f"| {'scenario':<36} | {'req/s (median)':>14} | {'p50 ms':>7} | {'p99 ms':>7} | "
        f"{'errors':>6} |"
    )
    print(f"|{'-' * 38}|{'-' * 16}:|{'-' * 8}:|{'-' * 8}:|{'-' * 7}:|")
    for scenario in scenarios:
        errors = int(sum(sample["errors"] for sample in scenario.samples))
        print(
            f"| {scenario.name:<36} | {median(scenario, 'rps'):>14.0f} | "
            f"{median(scenario, 'p50'):>7.2f} | {median(scenario, 'p99'):>7.2f} | {errors:>6} |"
        )
    list_rps = rps("list, limits on, cache off")
    ratios = [
        (
            "list (limits on, cache off) / raw Flask",
            list_rps / rps("raw Flask + SQLAlchemy list"),
            2.0,
        ),
        ("list (limits on, cache off) / FastAPI", list_rps / rps("FastAPI + pydantic list"), 2.5),
        ("/health/live / bare /ping", rps("/health/live") / rps("bare /ping"), 0.9),
        (
            "cursor at depth 500 / page 1",
            rps("admin after= cursor at depth 500") / rps("admin page 1 (sort=id)"),
            1 / 1.2,
        ),
        (
            "OFFSET page=500 / page 1",
            rps("admin page=500 (OFFSET)") / rps("admin page 1 (sort=id)"),
            None,
        ),
        ("cache hit / cache miss (list)", rps("list, cache on (hit)") / list_rps, 2.0),
        ("304 / 200 (get task)", rps("get task, If-None-Match (304)") / rps("get task"), None),
    ]
    print("\n| ratio (req/s) | value | target |")
    print("|---|---:|---|")
    for name, value, target in ratios:
        goal = f">= {target:.2f}" if target else "(for information)"
        verdict = "" if target is None else (" met" if value >= target else " NOT met")
        print(f"| {name} | {value:.2f} | {goal}{verdict} |")
    print(
        f"\nworker RSS (MiB) after {served} requests to the app: "
        f"{', '.join(f'{v:.1f}' for v in rss_after_rounds['app'])}"
    )
    series = " -> ".join("/".join(f"{v:.1f}" for v in sample) for sample in rss_series)
    print(
        f"worker RSS (MiB) every ~10 s of a {SOAK_SECONDS} s soak "
        f"({median(soak, 'rps'):.0f} req/s): {series}"
    )


if __name__ == "__main__":
    main()
