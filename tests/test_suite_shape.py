"""The test suite's own shape: shared helpers live in tests/support/, so no test module (and
no helper) imports a test module or conftest.py. A test module imported by another runs its
module-level code twice under two names and ties unrelated tests together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
