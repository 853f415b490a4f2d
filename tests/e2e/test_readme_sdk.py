"""README "Use the API from code" works as written, for a newcomer and for mypy.

The Python script is taken from the README verbatim, run against a live server (with
`make run`'s demo account, made by the real `seed-demo` command) importing an SDK generated
from the committed spec, and type-checked with `mypy --strict`: it narrows each call's
union result as a typed user must.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.apps import LiveServer
from tests.support.sdk import generate_sdk

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The SDK is imported from MYPYPATH here, where a user has it pip-installed; mypy reports
# no errors inside installed packages, and `--follow-imports=silent` does the same here
# (the generated client.py itself has some). The script is checked in full.
MYPY = [str(BIN / "mypy"), "--strict", "--follow-imports=silent", "--no-incremental",
        "--cache-dir", os.devnull]  # fmt: skip


def readme_script() -> str:
    """The first Python block of the README's "Use the API from code" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use the API from code\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```$", section, re.M | re.S)
    assert match, "README's 'Use the API from code' has no Python block"
    return match[1]


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's script in a directory next to a freshly generated SDK."""
    directory = generate_sdk(tmp_path_factory.mktemp("readme"))
    path = directory / "readme_snippet.py"
    path.write_text(readme_script())
    return path


def test_the_script_runs_against_a_live_server(script: Path, live_server: LiveServer) -> None:
    seeded = live_server.app.test_cli_runner().invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(script)],
        cwd=script.parent,
        env={**os.environ, "TASKS_API_URL": live_server.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = [line.split(" ", 1)[1] for line in result.stdout.splitlines()]
    assert "Ship it high" in listed  # the task it created, found by its tag


def test_the_script_passes_mypy_strict(script: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [*MYPY, script.name],
        cwd=script.parent,
        env={**os.environ, "MYPYPATH": str(script.parent)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_mypy_would_catch_an_unnarrowed_result(script: Path) -> None:
    # Without the isinstance check, `tokens.access_token` is an error: the check above
    # proves the narrowing, not a lenient mypy.
    careless = script.parent / "careless.py"
    careless.write_text(
        script.read_text().replace("if not isinstance(tokens, TokenOut):", "if tokens is None:")
    )
    assert careless.read_text() != script.read_text()
    result = subprocess.run(  # noqa: S603 - fixed argv
        [*MYPY, careless.name],
        cwd=script.parent,
        env={**os.environ, "MYPYPATH": str(script.parent)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Item "Problem" of "Problem | TokenOut | ValidationProblem"' in result.stdout
    assert 'has no attribute "access_token"' in result.stdout
