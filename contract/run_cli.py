"""`make contract`: the schemathesis CLI, every check, against gunicorn on a fresh database.

Migrates a new database (PostgreSQL when `TEST_DATABASE_URL` is set, else SQLite in a
temporary directory), serves it with gunicorn on a free loopback port, creates the run's
accounts (contract.hooks.accounts: users through the API, the admin with
`flask create-admin`), runs `schemathesis run --checks all` with contract/schemathesis.toml
and contract/hooks.py, and stops the server. Rate limits are off for the run
(`RATELIMIT_ENABLED=false`): a fuzzer would only measure them.

Usage: python -m contract.run_cli [--max-examples N] [extra schemathesis options...]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from contract.hooks import CONFIG_FILE, accounts

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SPEC = ROOT / "openapi" / "openapi.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def database(workdir: Path) -> Iterator[str]:
    """A new, empty database: on `TEST_DATABASE_URL`'s server if set, else SQLite."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{workdir / 'tasks.db'}"
        return
    name = f"tasks_api_contract_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_env(database_url: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        # The run's uploads land in its own directory, deleted with it.
        "ATTACHMENTS_DIR": str(workdir / "attachments"),
        "RATELIMIT_ENABLED": "false",
        # Cheap hashing: the run logs in for every logout and refresh it sends.
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "8",
        "LOG_LEVEL": os.environ.get("CONTRACT_LOG_LEVEL", "WARNING"),
    }


@contextmanager
def gunicorn(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Serve the app with gunicorn until the block ends; yields the base URL."""
    base_url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(base_url, process)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # A worker still finishing a slow request past the graceful timeout: the
                # run's verdict is schemathesis', and the server is only cleaned up.
                print("contract: gunicorn did not stop in 30 s; killed", flush=True)
                process.kill()
                process.wait()


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        # Refused before gunicorn listens; a timeout while its workers still boot (a
        # loaded machine takes seconds to import the app).
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not become ready in 30 s")


def create_accounts(base_url: str, env: dict[str, str]) -> None:
    for account in accounts():
        if account.pop("role") == "admin":
            options = [f"--{name}={value}" for name, value in account.items()]
            subprocess.run(  # noqa: S603 - fixed argv
                [str(BIN / "flask"), "--app", "wsgi", "create-admin", *options],
                cwd=ROOT,
                env=env,
                check=True,
            )
            continue
        response = requests.post(f"{base_url}/api/v1/auth/register", json=account, timeout=10)
        response.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50)
    options, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="tasks-api-contract-") as tmp:
        workdir = Path(tmp)
        with database(workdir) as database_url:
            env = server_env(database_url, workdir)
            subprocess.run(  # noqa: S603 - fixed argv
                [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            log = workdir / "gunicorn.log"
            with gunicorn(env, free_port(), log) as base_url:
                create_accounts(base_url, env)
                command = [
                    str(BIN / "schemathesis"),
                    "--config-file", str(CONFIG_FILE),
                    "run", str(SPEC),
                    "--url", base_url,
                    "--checks", "all",
                    "--max-examples", str(options.max_examples),
                    "--generation-database", "none",
                    *extra,
                ]  # fmt: skip
                print("contract:", " ".join(command), flush=True)
                hooks = {
                    "SCHEMATHESIS_HOOKS": str(ROOT / "contract" / "hooks.py"),
                    # Hypothesis' caches, which it would otherwise keep in ./.hypothesis
                    "HYPOTHESIS_STORAGE_DIRECTORY": str(workdir / "hypothesis"),
                }
                result = subprocess.run(command, cwd=ROOT, env={**env, **hooks}, check=False)  # noqa: S603
            if result.returncode != 0:
                print(f"--- gunicorn log ({log}) ---\n{log.read_text()[-20000:]}", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
