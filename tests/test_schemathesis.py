"""schemathesis against the WSGI app: every operation, every check, two real users.

`test_every_operation_keeps_the_contract` generates requests for each operation (examples,
coverage and fuzzing phases: positive and negative data) and runs all of schemathesis'
checks on each response: server errors, status code, content type, headers and schema
conformance, positive data accepted and negative data rejected, missing required headers,
unsupported methods, ignored auth, use-after-free, resource availability and object-level
authorization (bob replays alice's reads; see contract/schemathesis.toml).
`test_linked_scenarios_keep_the_contract` follows the spec's `links` (created task ->
get, patch, replace, set status, delete) through the same checks.

No check is excluded. The runs here are small so the suite stays fast; `make contract`
runs the CLI with more examples against gunicorn.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

import contract.hooks  # registers the `after_load_schema` hook (fresh tokens for logout)
from api.extensions import db
from api.openapi import SPEC_FILE, TasksAPI
from tests.conftest import make_app

pytestmark = pytest.mark.contract

# Enough to meet every check on every operation, small enough for the default suite.
SETTINGS = settings(
    max_examples=12,
    deadline=None,  # the first request of a run also builds the spec
    database=None,  # no example database in the repository
    suppress_health_check=list(HealthCheck),
)
STATEFUL_SETTINGS = settings(SETTINGS, max_examples=25, stateful_step_count=8)


def register_users(app: TasksAPI) -> None:
    """Create the users of contract/wfc-auth.json through the API itself."""
    client = app.test_client()
    for credentials in contract.hooks.wfc_users().values():
        login = credentials["login"]
        account = {"username": login, "email": f"{login}@example.com", **credentials}
        del account["login"]
        response = client.post("/api/v1/auth/register", json=account)
        assert response.status_code == 201, response.get_json()


def contract_config() -> SchemathesisConfig:
    """contract/schemathesis.toml, with the WFC file found wherever pytest runs from."""
    data: dict[str, Any] = tomllib.loads(contract.hooks.CONFIG_FILE.read_text())
    data["auth"]["wfc"]["path"] = str(contract.hooks.WFC_AUTH_FILE)
    return SchemathesisConfig.from_dict(data)


class AppUnderTest:
    """The WSGI app the schema sends its requests to, built on first use.

    schemathesis makes one test per operation when this module is collected, and already
    logs the users in to build the explicit examples then, before any fixture runs; so the
    app (its own SQLite file in a temporary directory, with the users of
    contract/wfc-auth.json) is built by the first request instead.
    """

    def __init__(self) -> None:
        self._app: TasksAPI | None = None

    @property
    def app(self) -> TasksAPI:
        if self._app is None:
            directory = tempfile.mkdtemp(prefix="tasks-api-contract-")
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            app = make_app(f"sqlite:///{Path(directory) / 'tasks.db'}")
            with app.app_context():
                db.create_all()
            register_users(app)
            atexit.register(dispose, app)
            self._app = app
        return self._app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


def dispose(app: TasksAPI) -> None:
    with app.app_context():
        db.engine.dispose()


APP = AppUnderTest()
# The committed document: the one SDK generators and clients read.
schema = schemathesis.openapi.from_path(str(SPEC_FILE), config=contract_config())
schema.app = APP
# Status codes each operation answered, across this module's tests.
SEEN: defaultdict[str, Counter[int]] = defaultdict(Counter)


@schema.hook
def after_call(context: HookContext, case: Case, response: Response) -> None:
    SEEN[case.operation.definition.raw["operationId"]][response.status_code] += 1


@schema.parametrize()
@SETTINGS
def test_every_operation_keeps_the_contract(case: Case) -> None:
    case.call_and_validate()


def test_linked_scenarios_keep_the_contract() -> None:
    schema.as_state_machine().run(settings=STATEFUL_SETTINGS)


def test_the_spec_links_a_created_task_to_each_operation_on_it() -> None:
    create_task = json.loads(SPEC_FILE.read_text())["paths"]["/api/v1/tasks"]["post"]
    links = create_task["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert targets == {"getTask", "updateTask", "replaceTask", "setTaskStatus", "deleteTask"}
    assert {link["parameters"]["task_id"] for link in links.values()} == {"$response.body#/id"}


def test_every_operation_was_served_not_only_refused() -> None:
    """The runs above prove something only if the users' tokens worked: each operation
    must have answered 2xx at least once (not only 401, 404 or 422)."""
    if not SEEN:
        pytest.skip("run with the tests above (it checks what they sent)")
    operations = {
        operation["operationId"]
        for item in json.loads(SPEC_FILE.read_text())["paths"].values()
        for operation in item.values()
    }
    served = {name for name, statuses in SEEN.items() if any(200 <= s < 300 for s in statuses)}
    assert operations - served == set(), dict(SEEN)
