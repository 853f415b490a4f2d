"""The test suite's own shape: shared helpers live in tests/support/, so no test module (and
no helper) imports a test module or conftest.py (a test module imported by another runs its
module-level code twice under two names and ties unrelated tests together); and a whole run
serves every API operation (conftest.py checks it at the end, tests/support/operations.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support import operations
from tests.support.auth import Headers

TESTS = Path(__file__).resolve().parent


def forbidden_imports(source: str) -> list[str]:
    """The modules `source` imports that are test modules or conftest (absolute or relative)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            # `from . import test_x` names the module in the alias, not in `module`.
            modules = [base] if base else [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            last = module.rsplit(".", 1)[-1]
            if last.startswith("test_") or last == "conftest":
                found.append(module)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from tests.test_errors import assert_problem",
        "from tests.conftest import PASSWORD",
        "from .test_auth import LOGIN",
        "from . import test_auth",
        "import tests.test_tasks",
        "def f():\n    from tests.test_jobs import wait_for",
    ],
)
def test_the_check_catches_every_spelling(source: str) -> None:
    assert forbidden_imports(source)


def test_the_check_allows_support_and_the_code() -> None:
    assert forbidden_imports("from tests.support.problems import assert_problem") == []
    assert forbidden_imports("import tests.support.job_kinds\nfrom api import create_app") == []


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("*.py")), ids=lambda path: str(path.relative_to(TESTS))
)
def test_no_module_imports_a_test_module(path: Path) -> None:
    imported = forbidden_imports(path.read_text())
    assert not imported, (
        f"{path.relative_to(TESTS.parent)} imports {imported}: move the shared helper to "
        "tests/support/ (or the fixture to conftest.py) and import it from there"
    )


# --- `make test` serves every operation (checked at the end of a whole-suite run) ----------


def test_every_operation_of_the_app_is_in_the_spec(app: TasksAPI, spec_path: Path) -> None:
    """The check reads the spec's operations; the app serves those and no others."""
    served_by_app = {
        f"{method} {operations.in_spec_spelling(rule.rule)}"
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/health/"))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert served_by_app == set(operations.spec_operations(spec_path))


def test_an_answer_under_400_is_recorded_in_the_specs_spelling(
    client: FlaskClient, alice: Headers
) -> None:
    task = client.post("/api/v1/tasks", json={"title": "Seen"}, headers=alice).get_json()
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=alice).status_code == 200
    assert {"POST /api/v1/tasks", "GET /api/v1/tasks/{task_id}"} <= operations.SERVED


def test_only_answers_under_400_are_recorded_middleware_ones_too(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    record: set[str] = set()
    monkeypatch.setattr(operations, "SERVED", record)
    assert client.get("/api/v1/users/me").status_code == 401
    assert client.get("/health/live").status_code == 200  # answered before Flask routes it
    assert record == {"GET /health/live"}
