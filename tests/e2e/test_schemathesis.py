"""schemathesis against the WSGI app: every operation, every check, real users.

`test_every_operation_keeps_the_contract` generates requests for each operation (examples,
coverage and fuzzing phases: positive and negative data) and runs all of schemathesis'
checks on each response: server errors, status code, content type, headers and schema
conformance, positive data accepted and negative data rejected, missing required headers,
unsupported methods, ignored auth, use-after-free, resource availability and object-level
authorization (bob replays alice's reads; see contract/schemathesis.toml).
`test_linked_scenarios_keep_the_contract` follows the spec's `links` (created task ->
get, patch, replace, set status, delete; new API key -> get, delete; new account -> the
admin operations on it; and the links schemathesis infers) through the same checks.

The requests carry real login tokens: alice's and bob's, an admin's for the admin-only
operations, and a fresh login of a fourth account for those that spend or change their
sender's credentials (contract/hooks.py says who sends what, and why).

No check is switched off. Where a check's premise cannot hold, the exception is as narrow
as the reason, which is written beside it:
- positive data: a 412 answers a well-formed If-Match naming another version
  (contract/schemathesis.toml); a never-issued reset token is refused (contract/hooks.py);
- every operation served: `confirmPasswordReset` (below).
The runs here are small so the suite stays fast; `make contract` runs the CLI with more
examples against gunicorn, with the same settings and hooks.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import providers
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

import contract.hooks  # registers the run's hooks (who sends what: see its docstring)
from api.extensions import cache, db
from api.openapi import SPEC_FILE, TasksAPI
from tests.support.apps import make_app

# One worker runs the whole module: `test_every_operation_was_served_not_only_refused`
# reads what the other tests sent, in its own process (`make test` uses --dist loadgroup).
pytestmark = [pytest.mark.contract, pytest.mark.xdist_group("schemathesis")]

# Enough to meet every check on every operation, small enough for the default suite.
# Derandomized: the suite draws the same requests every run, so what it finds (or that it
# serves every operation) does not come and go; `make contract` draws anew each run.
SETTINGS = settings(
    max_examples=12,
    deadline=None,  # the first request of a run also builds the spec
    database=None,  # no example database in the repository
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
# Operations on one resource (getApiKey, deleteUser, ...) answer 2xx only when a link
# hands them an id that exists: scenarios long enough to follow every link. If a spec change
# leaves one unserved, raise these (16 steps reach the API-key links past the report ones).
STATEFUL_SETTINGS = settings(SETTINGS, max_examples=40, stateful_step_count=20)


@pytest.fixture(autouse=True, scope="module")
def _draws_independent_of_the_repository() -> Iterator[None]:
    """Derandomized is not enough for the same draws each run: Hypothesis also mixes in
    string and number literals from every local module loaded (api/, tests/, ...), so a
    literal added anywhere would change what this module sends, and whether a link reaches
    getApiKey. Without that pool, the draws depend only on the spec and the settings above.
    (A private Hypothesis function: if it goes away, this fails loudly, not silently.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(providers, "_get_local_constants", lambda: NO_LOCAL_CONSTANTS)
        yield


NO_LOCAL_CONSTANTS = providers.Constants()


def register_users(app: TasksAPI) -> None:
    """Create the run's accounts (contract.hooks.accounts): users through the API itself,
    the admin with `flask create-admin`."""
    client = app.test_client()
    for account in contract.hooks.accounts():
        role = account.pop("role")
        if role == "admin":
            options = [f"--{name}={value}" for name, value in account.items()]
            result = app.test_cli_runner().invoke(args=["create-admin", *options])
            assert result.exit_code == 0, result.output
        else:
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
            # Limits off, as for any fuzzing run (DESIGN.md: RATELIMIT_ENABLED=false): the
            # run sends thousands of requests a minute, and would only measure the limits.
            app = make_app(
                f"sqlite:///{Path(directory) / 'tasks.db'}",
                RATELIMIT_ENABLED=False,
                ATTACHMENTS_DIR=str(Path(directory) / "attachments"),
            )
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
# Status codes each operation answered, across this module's tests (to its own method:
# the unsupported-method probes' answers, an OPTIONS 200 say, are not the operation's).
SEEN: defaultdict[str, Counter[int]] = defaultdict(Counter)
# confirmPasswordReset: a 2xx needs a reset token from an email, which generated data cannot
# hold (every token it sends is refused: contract/hooks.py); tests/test_password_reset.py
# drives the real flow. getJobResult: a 2xx needs the report job to have run, and the
# testing profile's inline executor runs it when the WSGI response is closed, which
# schemathesis' WSGI transport does not do (so it answers 409 "not finished", documented);
# tests/test_reports.py fetches real results (JSON and CSV). redeliverWebhookDelivery: a
# 2xx needs a finished delivery, whose job runs when the response is closed too (so each
# one stays pending: 409); tests/test_webhook_deliveries.py redelivers real ones.
# getAttachment, downloadAttachment, deleteAttachment: a 2xx needs an attachment's id,
# which only a link from uploadAttachment (itself linked from createTask) hands over, three
# steps into a scenario; with the events and webhooks operations in the mix, the
# derandomized scenarios at this budget no longer get that far (raising the budget costs
# the suite ~40 s). tests/test_attachments.py and tests/e2e/test_sdk.py drive their 200,
# 206, 304 and 204.
NEVER_SERVED_HERE = {"confirmPasswordReset", "getJobResult", "redeliverWebhookDelivery"}
NEVER_SERVED_HERE |= {"getAttachment", "downloadAttachment", "deleteAttachment"}


@schema.hook
def after_call(context: HookContext, case: Case, response: Response) -> None:
    if case.method.upper() == case.operation.method.upper():
        SEEN[case.operation.definition.raw["operationId"]][response.status_code] += 1


@schema.parametrize()
@SETTINGS
def test_every_operation_keeps_the_contract(case: Case) -> None:
    case.call_and_validate()


def reset_to_baseline(app: TasksAPI) -> None:
    """The run's accounts and nothing else: what each linked scenario starts from."""
    own = [account["username"] for account in contract.hooks.accounts()]
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name == "users":
                    conn.execute(table.delete().where(table.c.username.not_in(own)))
                elif table.name != "revoked_tokens":  # the run's revocations stay revoked
                    conn.execute(table.delete())
        cache.clear()  # rows went behind the cache's back


class LinkedScenarios(schema.as_state_machine()):
    def setup(self) -> None:
        # Hypothesis replays a scenario to confirm and shrink what it finds, and needs the
        # same answers each time: a scenario must not start from what earlier ones left
        # (an account deleted, a task changed), or its links would lead elsewhere.
        reset_to_baseline(APP.app)


def test_linked_scenarios_keep_the_contract() -> None:
    LinkedScenarios.run(settings=STATEFUL_SETTINGS)


@pytest.mark.parametrize(
    ("path", "parameter", "targets"),
    [
        (
            "/api/v1/tasks",
            "task_id",
            {
                "getTask",
                "updateTask",
                "replaceTask",
                "setTaskStatus",
                "deleteTask",
                "uploadAttachment",
                "listAttachments",
            },
        ),
        (
            "/api/v1/tasks/{task_id}/attachments",
            "attachment_id",
            {"getAttachment", "downloadAttachment", "deleteAttachment"},
        ),
        ("/api/v1/api-keys", "key_id", {"getApiKey", "deleteApiKey"}),
        ("/api/v1/auth/register", "user_id", {"getUser", "updateUser", "deleteUser"}),
    ],
)
def test_the_spec_links_a_created_resource_to_each_operation_on_it(
    path: str, parameter: str, targets: set[str]
) -> None:
    created = json.loads(SPEC_FILE.read_text())["paths"][path]["post"]
    links = created["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == targets
    assert {link["parameters"][parameter] for link in links.values()} == {"$response.body#/id"}


def test_every_operation_was_served_not_only_refused() -> None:
    """The runs above prove something only if the users' tokens worked: each operation
    must have answered 2xx at least once, or 304 (a conditional GET's success: the
    resource was found, and the caller may read it), not only 401, 403, 404 or 422."""
    if not SEEN:
        pytest.skip("run with the tests above (it checks what they sent)")
    operations = {
        operation["operationId"]
        for item in json.loads(SPEC_FILE.read_text())["paths"].values()
        for operation in item.values()
    }
    served = {
        name
        for name, statuses in SEEN.items()
        if any(200 <= status < 300 or status == 304 for status in statuses)
    }
    assert operations - served == NEVER_SERVED_HERE, dict(SEEN)
