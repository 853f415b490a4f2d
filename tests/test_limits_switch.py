"""RATELIMIT_ENABLED=false is one app's setting: an app built with limits off, after an app
with limits on, leaves that app limited (Flask-Limiter's limiter is one per process)."""

from __future__ import annotations

from pathlib import Path

from werkzeug.test import TestResponse

from api.openapi import TasksAPI
from tests.support.apps import app_with_schema, dispose, isolated_process_state, sqlite_url
from tests.support.auth import PASSWORD

REGISTER = "/api/v1/auth/register"
TINY = {"RATE_LIMIT_REGISTER": "1 per minute", "RATE_LIMIT_ANONYMOUS": "1 per minute"}


def register(app: TasksAPI, name: str) -> TestResponse:
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    return app.test_client().post(REGISTER, json=body)


def test_an_app_with_limits_off_built_last_leaves_the_others_limited(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    with isolated_process_state():
        on = app_with_schema(sqlite_url(tmp_path / "on"), **TINY)
        off = app_with_schema(sqlite_url(tmp_path / "off"), RATELIMIT_ENABLED=False, **TINY)
        try:
            assert register(on, "ann").status_code == 201
            assert register(on, "ben").status_code == 429
            for name in ("cat", "dan"):
                assert register(off, name).status_code == 201
        finally:
            dispose(on)
            dispose(off)
