"""A mock server from the committed spec serves what the spec promises (tier `node`).

Prism (`@stoplight/prism-cli`, contract/package.json) mocks the API from
openapi/openapi.json alone, the way an integrator develops against it before having a
server; the generated Python SDK walks register, log in, create and list through it. Each
answer must be the documented success, parse into the SDK's model, validate against the
operation's response schema, and carry every documented header with a value that validates
and comes from the spec's examples (never a generated placeholder such as `string`).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from api.openapi import SPEC_FILE
from tests.support.openapi import pointer, validator_at
from tests.support.processes import free_port, log_tail, wait_until
from tests.support.sdk import PACKAGE, generate_sdk, imported_sdk

pytestmark = pytest.mark.contract

PLACEHOLDERS = {"string", "", "0"}


@pytest.fixture(scope="module")
def prism(node_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prism mock` on a free loopback port, serving examples (static, not random);
    yields its URL and kills its process group afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    command = [str(node_tools / "prism"), "mock", str(SPEC_FILE), "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prism exited with {process.returncode}:\n{log_tail(log)}")
        try:
            with requests.get(f"{url}/health/live", timeout=1) as answer:
                return answer.status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(up, 120, f"prism on port {port}")
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    with imported_sdk(generate_sdk(tmp_path_factory.mktemp("sdk"))) as package:
        yield package


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return document


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    """Closes the SDK clients (their connections) a test opens in it."""
    with ExitStack() as stack:
        yield stack


def check_answer(spec: dict[str, Any], path: str, method: str, response: Any) -> None:
    """`response` (the SDK's detailed response) is the operation's documented success:
    its body validates, and every documented header is there, valid, and an example."""
    status = str(int(response.status_code))
    documented = spec["paths"][path][method]["responses"][status]
    assert "sl-violations" not in response.headers, response.headers["sl-violations"]
    if "content" in documented:
        at = pointer("paths", path, method, "responses", status, "content", "application/json")
        body = json.loads(response.content)
        errors = [e.message for e in validator_at(spec, at + "/schema").iter_errors(body)]
        assert errors == [], f"{method.upper()} {path}"
    for name, reference in documented["headers"].items():
        header = spec["components"]["headers"][reference["$ref"].rsplit("/", 1)[1]]
        value = response.headers.get(name)
        assert value is not None, f"{name} is missing from {method.upper()} {path}"
        assert value not in PLACEHOLDERS, f"{name}: {value!r} is a placeholder"
        schema = header["schema"]
        typed = int(value) if schema["type"] == "integer" else value
        assert validator_at(spec, pointer("components", "headers", name, "schema")).is_valid(
            typed
        ), f"{name}: {value!r}"
        assert typed in schema["examples"], f"{name}: {value!r} is not the spec's example"


def test_a_journey_through_the_mock_server(
    prism: str, sdk: ModuleType, spec: dict[str, Any], clients: ExitStack
) -> None:
    m = importlib.import_module(f"{PACKAGE}.models")

    def op(tag: str, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")

    anonymous = clients.enter_context(sdk.Client(base_url=prism, raise_on_unexpected_status=True))
    registered = op("auth", "register").sync_detailed(
        client=anonymous,
        body=m.RegisterIn(username="alice", email="alice@example.com", password="correct horse"),
    )
    assert registered.status_code == 201
    assert isinstance(registered.parsed, m.UserOut)
    check_answer(spec, "/api/v1/auth/register", "post", registered)

    login = op("auth", "login").sync_detailed(
        client=anonymous, body=m.LoginIn(login="alice", password="correct horse")
    )
    assert login.status_code == 200
    tokens = login.parsed
    assert isinstance(tokens, m.TokenOut)
    assert tokens.token_type == "Bearer"
    check_answer(spec, "/api/v1/auth/login", "post", login)

    client = clients.enter_context(
        sdk.AuthenticatedClient(
            base_url=prism, token=tokens.access_token, raise_on_unexpected_status=True
        )
    )
    created = op("tasks", "create_task").sync_detailed(
        client=client, body=m.TaskIn(title="Write report", priority=m.TaskInPriority.HIGH)
    )
    assert created.status_code == 201
    assert isinstance(created.parsed, m.TaskOut)
    check_answer(spec, "/api/v1/tasks", "post", created)

    listed = op("tasks", "list_tasks").sync_detailed(client=client, tag="work", per_page=20)
    assert listed.status_code == 200
    assert isinstance(listed.parsed, m.TaskList)
    assert listed.parsed.data
    assert all(isinstance(task, m.TaskOut) for task in listed.parsed.data)
    check_answer(spec, "/api/v1/tasks", "get", listed)

    # Prism checks requests against the spec too: without a token it refuses, as the spec
    # says the API would (a typed 401 problem)
    refused = op("tasks", "list_tasks").sync_detailed(client=anonymous)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, m.Problem)
