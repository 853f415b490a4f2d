"""gunicorn bounds the request line (finding 13 of the hostile probe): a huge line is
refused at once with gunicorn's 414, while the longest queries the spec allows still reach
the app. Real gunicorn masters, started and killed by each test."""

from __future__ import annotations

import socket
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.apps import app_with_schema, dispose, isolated_process_state
from tests.support.processes import gunicorn_servers

LIMIT = 8190  # gunicorn.conf.py's default


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    with isolated_process_state():
        dispose(app_with_schema(url))
    return url


def raw_get(port: int, target: str) -> tuple[bytes, float]:
    """Send `GET target` as raw bytes; return the status line and the seconds it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        # gunicorn may refuse (and close) before the whole line is sent
        with suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reply = connection.recv(4096)
    return reply.split(b"\r\n", 1)[0], time.monotonic() - started


def test_a_huge_request_line_is_refused_at_once(database: str, tmp_path: Path) -> None:
    with gunicorn_servers(1, "wsgi", tmp_path, DATABASE_URL=database) as [server]:
        status, seconds = raw_get(server.port, "/health/live?" + "a" * 1_000_000)
        fits, _ = raw_get(server.port, "/health/live?" + "a" * (LIMIT - 100))
    assert status.startswith(b"HTTP/1.1 414"), status
    assert seconds < 2  # unbounded, 10 MB cost 7.5 s of worker CPU
    assert fits.startswith(b"HTTP/1.1 200"), fits


def test_the_longest_queries_the_spec_allows_reach_the_app(database: str, tmp_path: Path) -> None:
    """Every listTasks parameter at its maxLength, in 4-byte UTF-8 characters where the spec
    allows any character (12 bytes each once percent-encoded): the app answers, not 414."""
    wide = "\U0001f600"
    params = {
        "q": wide * 200,
        "tag": wide * 50,
        "after": "A" * 1000,
        "due_before": wide * 64,
        "due_after": wide * 64,
        "sort": "-created_at," * 16 + "id",
        "status": "in_progress",
        "priority": "urgent",
        "page": "9" * 10,
        "per_page": "100",
        "owner_id": "9" * 10,
        "overdue": "false",
    }
    query = "&".join(f"{name}={quote(value)}" for name, value in params.items())
    target = f"/api/v1/tasks?{query}"
    assert len(target) < LIMIT
    with gunicorn_servers(1, "wsgi", tmp_path, DATABASE_URL=database) as [server]:
        status, _ = raw_get(server.port, target)
    assert status.startswith(b"HTTP/1.1 401"), status  # the app's answer: no credential
