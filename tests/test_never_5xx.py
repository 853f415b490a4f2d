"""Never a 5xx: every operation of the spec, fed boundary values by Hypothesis, on SQLite and
PostgreSQL (the `app` fixture's backends).

Each operation gets requests built from its own entry in the committed spec: path ids at
the edges of every integer type, each query parameter and body field drawn from boundary
strategies for its type (extreme and overflowing date-times, huge and negative integers,
maximum lengths and one past them, Unicode edges: lone surrogates, RTL overrides, NUL,
combining marks, characters that grow when lower-cased), whole bodies that are hostile
JSON (10 000-level nesting, integers past Python's digit limit, NaN, invalid UTF-8), and
hostile headers (malformed conditionals, idempotency keys, request ids, credentials,
content types). Whatever comes in, the answer is below 500, and every error is a problem.

Examples per operation are bounded (`EXAMPLES`) so the default suite stays fast; raise
`NEVER_5XX_EXAMPLES` for a longer hunt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import Job, Task, User
from api.openapi import SPEC_FILE, TasksAPI
from api.services import api_keys, auth
from tests.support.auth import PASSWORD

EXAMPLES = int(os.environ.get("NEVER_5XX_EXAMPLES", "6"))
SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text())
Draw = Callable[[st.SearchStrategy[Any]], Any]

# --- boundary strategies ---------------------------------------------------------------

EDGE_INTEGERS = [0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 10**30, -(10**30)]
integers = st.one_of(st.sampled_from(EDGE_INTEGERS), st.integers())

EDGE_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-02T00:00:00Z",
    "9999-12-30T23:59:59Z",
    "9999-12-31T23:59:59.999999Z",
    "2026-02-29T00:00:00Z",
    "2024-02-29T24:00:00Z",
    "2026-12-01T17:00:00+23:59",
    "2026-12-01T17:00:00",
    "2026-12-01",
    "+12026-12-01T17:00:00Z",
    "2026-12-01T17:00:00.1234567890123Z",
    "x" * 65,
]
datetimes = st.one_of(
    st.sampled_from(EDGE_DATETIMES),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)

EDGE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e\u202dreversed",  # RTL/LTR overrides
    "שלום עולם",  # right-to-left
    "e" + "\u0301" * 200,  # combining marks
    "İ" * 50,  # grows when lower-cased
    "\U0001f600" * 60,
    "\ufeff",
    "x" * 50,
    "x" * 51,
    "x" * 200,
    "x" * 201,
    "x" * 10_000,
    "x" * 10_001,
    "%00",
    "'; DROP TABLE tasks; --",
]
# Lone surrogates cannot be encoded in a URL or a header, only escaped in JSON. (An explicit
# alphabet: st.text()'s default builds a UTF-8 codec table, seconds per test session.)
ANY_CHARACTER = st.characters(exclude_categories=("Cs",))
text = st.one_of(st.sampled_from(EDGE_TEXT), st.text(ANY_CHARACTER, max_size=60))
json_text = st.one_of(text, st.sampled_from(["\ud800", "a\udfffb", "\ud83d"]))


def value_for(schema: dict[str, Any], in_json: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """Boundary values for one field, from its schema (and anything else, now and then)."""
    schema = resolve(schema)
    strings = json_text if in_json else text
    if schema.get("format") == "date-time":
        typed: st.SearchStrategy[Any] = datetimes
    elif "enum" in schema:
        typed = st.sampled_from(schema["enum"])
    elif schema.get("type") == "integer":
        typed = integers
    elif schema.get("type") == "boolean":
        typed = st.booleans()
    elif schema.get("type") == "array":
        typed = st.lists(value_for(schema.get("items", {}), in_json, depth + 1), max_size=25)
    elif schema.get("type") == "object" and depth < 2:
        typed = body_for(schema, depth + 1)
    else:
        typed = strings
    if not in_json:
        return st.one_of(typed, integers, strings).map(str)
    anything = st.one_of(st.none(), st.booleans(), integers, st.floats(), strings)
    return st.one_of(typed, anything)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_for(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A JSON object: any subset of the schema's fields with boundary values, and
    sometimes a field the schema does not know."""
    properties = resolve(schema).get("properties", {})
    optional = {name: value_for(field, True, depth) for name, field in properties.items()}
    optional["unknown_field"] = json_text
    return st.fixed_dictionaries({}, optional=optional)


HOSTILE_BODIES = [
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"title": ' + b"9" * 5000 + b"}",
    b'{"title": NaN}',
    b'{"title": "\xed\xa0\x80"}',
    b"\xff\xfe{}",
    b"",
    b"null",
    b"[]",
    b'"x"',
    b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(2000)) + b"}",
]

LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"))
header_text = st.one_of(
    st.sampled_from(["", " ", "*", '"1.1"', 'W/"x"', '"' * 200, "x" * 2000, "é" * 40]),
    LATIN1.filter(lambda value: len(value) < 300),
)
HEADER_NAMES = ["If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID", "Accept"]


# --- the operations --------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    definition: dict[str, Any]

    @property
    def query(self) -> dict[str, dict[str, Any]]:
        return {
            parameter["name"]: parameter.get("schema", {})
            for parameter in self.definition.get("parameters", [])
            if parameter["in"] == "query"
        }

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.definition.get("requestBody", {}).get("content", {})
        found: dict[str, Any] | None = content.get("application/json", {}).get("schema")
        return found


OPERATIONS = {
    operation["operationId"]: Operation(operation["operationId"], method.upper(), path, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
}


@dataclass
class World:
    """What every request can name: an admin's credentials, a task, a job, a key, users."""

    access: str
    refresh: str
    api_key: str
    ids: dict[str, int]


@pytest.fixture
def world(app: TasksAPI) -> World:
    with app.app_context():
        admin = User(username="root", email="root@example.com", password_hash=_hash(), role="admin")
        victim = User(username="victim", email="victim@example.com", password_hash=_hash())
        db.session.add_all([admin, victim])
        db.session.commit()
        task = Task(owner_id=admin.id, title="edge")
        db.session.add(task)
        db.session.commit()
        tokens = auth.issue_tokens(admin)
        issued = api_keys.create_key(admin, {"name": "fuzz", "scopes": ["tasks:read"]})
        ids = {"task_id": task.id, "user_id": victim.id, "key_id": issued.key.id, "job_id": 1}
        return World(tokens["access_token"], tokens["refresh_token"], issued.secret, ids)


def _hash() -> str:
    from api.services.passwords import hash_password

    return hash_password(PASSWORD)


@st.composite
def requests_for(draw: Draw, operation: Operation, world: World) -> dict[str, Any]:
    """One request to `operation`: path, query, headers and body, each at the edges."""
    path = operation.path
    for name, known in world.ids.items():
        if "{" + name + "}" in path:
            value = draw(st.one_of(st.just(known), st.sampled_from(EDGE_INTEGERS).map(abs)))
            path = path.replace("{" + name + "}", str(value))
    query = draw(
        st.fixed_dictionaries(
            {},
            optional={name: value_for(schema, False) for name, schema in operation.query.items()},
        )
    )
    token = world.refresh if operation.operation_id == "refreshToken" else world.access
    credentials = draw(
        st.sampled_from(
            [
                {"Authorization": f"Bearer {token}"},
                {"Authorization": f"Bearer {token}"},
                {"X-API-Key": world.api_key},
                {"Authorization": "Bearer " + "x" * 5000},
                {"Authorization": "Basic !!!"},
                {"X-API-Key": "tk_" + "\u00e9" * 40},
                {},
            ]
        )
    )
    headers = {**credentials, **draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_text))}
    body: bytes | None = None
    if operation.body_schema is not None:
        if draw(st.integers(0, 4)) == 0:
            body = draw(st.sampled_from(HOSTILE_BODIES))
        else:
            # ensure_ascii: lone surrogates travel as \ud800 escapes, as a client sends them
            body = json.dumps(draw(body_for(operation.body_schema))).encode()
        headers["Content-Type"] = draw(
            st.sampled_from(
                ["application/json"] * 4 + ["application/json; charset=latin-1", "text/plain"]
            )
        )
    return {
        "method": operation.method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": body,
    }


def assert_not_a_server_error(response: TestResponse, request: dict[str, Any]) -> None:
    assert response.status_code < 500, (request, response.get_data(as_text=True)[:500])
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json", request
        assert response.get_json()["status"] == response.status_code


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_never_a_server_error(app: TasksAPI, world: World, operation_id: str) -> None:
    operation = OPERATIONS[operation_id]
    client = app.test_client()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests_for(operation, world))
    def answers(request: dict[str, Any]) -> None:
        response = client.open(
            request["path"],
            method=request["method"],
            query_string=request["query"],
            headers=request["headers"],
            data=request["body"],
        )
        try:
            assert_not_a_server_error(response, request)
        finally:
            response.close()  # runs the jobs a request queued: they must not fail either

    answers()
    with app.app_context():  # and no job they queued failed (report filters at the edges)
        failed = db.session.scalars(select(Job).where(Job.status == "failed")).all()
        assert [(job.kind, job.params) for job in failed] == []
