"""RATELIMIT_ENABLED=false is one app's setting: an app built with limits off, after an app
with limits on, leaves that app limited (Flask-Limiter's limiter is one per process), and
only its own document leaves the limits out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from werkzeug.test import TestResponse

from api.openapi import TasksAPI
from api.paths import is_api_path
from tests.support.apps import (
    app_with_schema,
    dispose,
    isolated_process_state,
    make_app,
    sqlite_url,
)
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


RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def without_rate_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` less what the rate limits document: their headers and every 429."""
    spec = copy.deepcopy(spec)
    for name in (*RATE_LIMIT_HEADERS, "Retry-After"):
        del spec["components"]["headers"][name]
    for item in spec["paths"].values():
        for operation in item.values():
            operation["responses"].pop("429", None)
            for response in operation["responses"].values():
                for name in RATE_LIMIT_HEADERS:
                    response["headers"].pop(name, None)
    return spec


def test_an_app_with_limits_off_documents_no_limits() -> None:
    """The limits' part of the spec comes with the limiter (api.limits registers both):
    with limits off, the document is the same less the headers and the 429s, and with them
    on, every API operation shows them."""
    with isolated_process_state():
        on = make_app("sqlite://").spec
        off = make_app("sqlite://", RATELIMIT_ENABLED=False).spec
    assert isinstance(on, dict)
    assert isinstance(off, dict)
    assert off == without_rate_limits(on)
    limited = [
        operation
        for path, item in on["paths"].items()
        if is_api_path(path)
        for operation in item.values()
    ]
    assert {"login", "listTasks", "createTask"} <= {op["operationId"] for op in limited}
    for operation in limited:
        assert "429" in operation["responses"], operation["operationId"]
        for response in operation["responses"].values():
            assert "X-RateLimit-Limit" in response["headers"], operation["operationId"]
