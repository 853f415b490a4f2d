"""Real processes for the serving and fault tests: gunicorn, redis-server, PostgreSQL.

Every helper here owns what it starts: a context manager starts the process, waits
(with a deadline) until it answers, and always stops it, by its own pid or process group.
Output goes to a log file, never to a pipe, so nothing is left unclosed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 20.0

# Settings a developer's shell may hold that would change what a child process serves.
_INHERITED_SETTINGS = re.compile(
    r"^(APP_ENV|DATABASE_URL|REDIS_URL|HOST|PORT|WEB_CONCURRENCY|TRUSTED_PROXY_HOPS|DEBUG"
    r"|FLASK_DEBUG|(GUNICORN|PROMETHEUS|RATELIMIT|RATE_LIMIT|CACHE|METRICS|LOG|SQLALCHEMY)_.*)$"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection to 127.0.0.1:`port` (closed afterwards)."""
    sent = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def answers(port: int, path: str = "/health/live") -> bool:
    try:
        return http_request(port, "GET", path, timeout=0.5).status == 200
    except OSError:
        return False


# --- gunicorn --------------------------------------------------------------------------


@dataclass
class Gunicorn:
    """A gunicorn master (its own process group) serving on 127.0.0.1:`port`."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        return http_request(self.port, method, path, **kwargs)

    def group_alive(self) -> bool:
        """Whether any process of this server's group (master or worker) still exists."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True


def child_environment(**settings: str) -> dict[str, str]:
    """This process's environment without app settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not _INHERITED_SETTINGS.match(k)}
    env.update(settings)
    return env


def start_gunicorn(module: str, log: Path, **settings: str) -> Gunicorn:
    """Start `gunicorn -c gunicorn.conf.py <module>:app` without waiting for it."""
    port = free_port()
    defaults = {"APP_ENV": "testing", "GUNICORN_GRACEFUL_TIMEOUT": "10", "WEB_CONCURRENCY": "1"}
    env = child_environment(**{**defaults, **settings, "HOST": "127.0.0.1", "PORT": str(port)})
    command = [str(VENV_BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), f"{module}:app"]
    return Gunicorn(port, spawn(command, env, log), log)


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `command` in the repository, in a process group of its own, output to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(server: Gunicorn) -> None:
    def up() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(
                f"gunicorn exited with {server.process.returncode}:\n{log_tail(server.log)}"
            )
        return answers(server.port)

    wait_until(up, STARTUP_SECONDS, f"gunicorn on port {server.port}")


def stop_gunicorn(server: Gunicorn) -> None:
    """Kill the server's whole process group (master and workers) and reap the master."""
    if server.group_alive():
        with suppress(ProcessLookupError):  # it may exit between the check and the kill
            os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


@contextmanager
def gunicorn_servers(
    count: int, module: str, log_dir: Path, **settings: str
) -> Iterator[list[Gunicorn]]:
    """`count` gunicorn instances with the same settings, started together, each ready."""
    servers: list[Gunicorn] = []
    try:
        for index in range(count):
            servers.append(start_gunicorn(module, log_dir / f"gunicorn-{index}.log", **settings))
        for server in servers:
            wait_ready(server)
        yield servers
    finally:
        for server in servers:
            stop_gunicorn(server)


# --- Redis -----------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A private redis-server (no persistence) on 127.0.0.1:`port`; kill and restart it."""

    executable: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until(self.pings, STARTUP_SECONDS, f"redis-server on port {self.port}")

    def pings(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{log_tail(self.log)}")
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)

    def kill(self) -> None:
        """SIGKILL: the crash case, no goodbye to connected clients."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def redis_server(executable: str, log: Path) -> Iterator[RedisServer]:
    server = RedisServer(executable, free_port(), log)
    try:
        server.start()
        yield server
    finally:
        server.kill()


# --- PostgreSQL ------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` that has initdb and pg_ctl."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (path.parent / "pg_ctl").exists()
    ]

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    return max(found, key=version) if found else None


def as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresCluster:
    """A private PostgreSQL cluster in a temporary directory, on its own port."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 30) -> None:
        result = subprocess.run(  # noqa: S603 - our own command line
            as_postgres([str(self.bindir / command[0]), *command[1:]]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            server_log = log_tail(self.root / "server.log")
            raise AssertionError(
                f"{command[0]} failed ({result.returncode}): {result.stdout!r} {result.stderr!r}"
                f"\n{server_log}"
            )

    def _pg_ctl(self, action: str, *options: str) -> None:
        # -l: the server writes to a file, so it never holds on to our pipes.
        server = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", "20", "-o", server, *options,
        )  # fmt: skip

    def init_and_start(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync")
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")


@contextmanager
def postgres_cluster(bindir: Path) -> Iterator[PostgresCluster]:
    """initdb, start; always stop and delete the cluster afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tasks-api-pg-"))
    cluster = PostgresCluster(bindir, root, free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster.init_and_start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


# --- Celery ----------------------------------------------------------------------------


@dataclass
class CeleryWorker:
    """A `flask worker` process (its own process group), logging to `log`."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole group, as a crashed machine would: nothing gets to clean up."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_celery_worker(log: Path, **settings: str) -> CeleryWorker:
    """Start `flask worker` (one thread, no gossip/mingle: it starts in a second or two)
    and wait until it consumes."""
    env = child_environment(APP_ENV="testing", PYTHONPATH=str(REPO), **settings)
    command = [
        str(VENV_BIN / "flask"),
        "--app",
        "wsgi",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    offset = log.stat().st_size if log.exists() else 0
    process = spawn(command, env, log)
    worker = CeleryWorker(process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"celery worker exited:\n{log_tail(log)}")
        return b" ready." in log.read_bytes()[offset:]

    try:
        wait_until(ready, STARTUP_SECONDS, "the celery worker")
    except BaseException:
        worker.kill()
        raise
    return worker


@contextmanager
def celery_worker(log: Path, **settings: str) -> Iterator[CeleryWorker]:
    worker = start_celery_worker(log, **settings)
    try:
        yield worker
    finally:
        worker.kill()


# --- S3 (moto) -------------------------------------------------------------------------


@dataclass
class S3Server:
    """A moto S3 server process (`tests.support.s3_server`) on 127.0.0.1:`port`, whose
    HTTP side can go down and come back with its objects intact."""

    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the S3 server exited:\n{log_tail(self.log)}")
        try:
            http_request(self.port, "GET", "/", timeout=0.5)
        except OSError:
            return False
        return True

    def go_down(self) -> None:
        self.process.send_signal(signal.SIGUSR1)
        wait_until(lambda: not self.answers(), STARTUP_SECONDS, "the S3 server to stop")

    def come_back(self) -> None:
        self.process.send_signal(signal.SIGUSR2)
        wait_until(self.answers, STARTUP_SECONDS, "the S3 server to start again")


@contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """Start a moto S3 server on a free loopback port; always stop it."""
    port = free_port()
    command = [sys.executable, "-m", "tests.support.s3_server", str(port)]
    server = S3Server(port, log, spawn(command, child_environment(), log))
    try:
        wait_until(server.answers, STARTUP_SECONDS, f"the S3 server on port {port}")
        yield server
    finally:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)
