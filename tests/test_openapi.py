"""The OpenAPI document: generated from the code, checked in, valid, complete."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from api.openapi import TasksAPI, spec_json
from tests.support.apps import make_app

METHODS = ("get", "post", "put", "patch", "delete")
CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)*$")
# Operations anyone may call without a token.
PUBLIC = {"register", "login", "getLiveness", "getReadiness"}
PUBLIC |= {"requestPasswordReset", "confirmPasswordReset"}
# Operations that take a login token but no API key: they manage credentials, which a
# leaked key must not be able to do. `refreshToken` takes a refresh token.
SESSIONS_ONLY = {"logout", "updateCurrentUser", "changePassword"}
SESSIONS_ONLY |= {"createApiKey", "listApiKeys", "getApiKey", "deleteApiKey"}
SCOPES = {"tasks:read", "tasks:write", "reports:write", "users:read", "users:write"}
SCOPES |= {"webhooks:read", "webhooks:write", "admin:write"}


@pytest.fixture(scope="module")
def spec(spec_path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(spec_path.read_text())
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


@pytest.fixture(scope="module")
def docs_app() -> TasksAPI:
    """No database needed: these tests read the document and the docs pages."""
    return make_app("sqlite://")


@pytest.fixture
def docs_client(docs_app: TasksAPI) -> FlaskClient:
    return docs_app.test_client()


def test_checked_in_spec_matches_the_code(docs_app: TasksAPI, spec_path: Path) -> None:
    assert spec_path.read_text() == spec_json(docs_app), "run `make openapi` and commit the result"


def test_served_spec_matches_the_file(docs_client: FlaskClient, spec: dict[str, Any]) -> None:
    response = docs_client.get("/openapi.json", base_url="http://api.example.com")
    assert response.status_code == 200
    # SERVERS is explicit, so the first request's host does not leak into the document.
    assert response.get_json() == spec


def test_spec_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_operation_ids_are_explicit_unique_camel_case(spec: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert all(ids), "every operation needs an explicit operationId"
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not CAMEL_CASE.match(i)] == []
    assert {"listTasks", "getTask", "createTask", "replaceTask", "updateTask"} <= set(ids)
    assert {"deleteTask", "login", "register", "refreshToken", "logout"} <= set(ids)
    assert {"listUsers", "getUser", "updateUser", "deleteUser", "getCurrentUser"} <= set(ids)
    assert {"updateCurrentUser", "changePassword", "requestPasswordReset"} <= set(ids)
    assert {"confirmPasswordReset", "createApiKey", "listApiKeys", "deleteApiKey"} <= set(ids)


def test_every_operation_is_under_a_described_tag(spec: dict[str, Any]) -> None:
    described = {tag["name"] for tag in spec["tags"] if tag.get("description")}
    for _, _, operation in operations(spec):
        assert len(operation.get("tags", [])) == 1, operation["operationId"]
        assert operation["tags"][0] in described, operation["operationId"]


def test_no_component_is_emitted_twice(spec: dict[str, Any]) -> None:
    names = list(spec["components"]["schemas"])
    assert [name for name in names if name[-1].isdigit()] == []
    assert {"TaskIn", "TaskPatchIn", "TaskOut", "TaskList", "Problem"} <= set(names)
    assert {"UserOut", "UserPatchIn", "UserAdminPatchIn", "UserList", "PasswordChangeIn"} <= set(
        names
    )
    assert {"ApiKeyIn", "ApiKeyOut", "ApiKeyCreatedOut", "ApiKeyList"} <= set(names)


def test_every_error_response_is_a_documented_problem(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert "500" in responses, (path, method)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response["content"]
            assert list(content) == ["application/problem+json"], (path, method, status)
            ref = content["application/problem+json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1].endswith("Problem"), (path, method, status)


def test_validation_errors_have_a_real_schema(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["ValidationProblem"]
    assert set(schema["properties"]) == {
        "type", "title", "status", "detail", "instance", "request_id", "errors"
    }  # fmt: skip
    item = spec["components"]["schemas"]["FieldError"]
    assert set(item["properties"]) == {"location", "field", "message"}


def test_bodies_are_required_and_their_errors_documented(spec: dict[str, Any]) -> None:
    with_body = [op for _, _, op in operations(spec) if "requestBody" in op]
    assert len(with_body) >= 6
    for operation in with_body:
        optional = operation["operationId"] == "login"  # may use HTTP Basic instead
        assert operation["requestBody"]["required"] is not optional
        assert {"400", "413", "415", "422"} <= set(operation["responses"])


def test_protected_operations_declare_security_and_401(spec: dict[str, Any]) -> None:
    for _, _, operation in operations(spec):
        if operation["operationId"] in PUBLIC:
            continue
        assert operation.get("security"), operation["operationId"]
        assert "401" in operation["responses"], operation["operationId"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerAuth"]["description"],
    }


def test_protected_operations_show_both_schemes_and_their_scope(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"]["type"] == "apiKey"
    assert (schemes["ApiKeyAuth"]["in"], schemes["ApiKeyAuth"]["name"]) == ("header", "X-API-Key")
    checked = 0
    for _, _, operation in operations(spec):
        name = operation["operationId"]
        if name in PUBLIC or name == "refreshToken":
            continue
        scopes = operation["x-required-scopes"]
        assert set(scopes) <= SCOPES, name
        needs = scopes + [operation[key] for key in ("x-required-role",) if key in operation]
        accepted = ["BearerAuth"] if name in SESSIONS_ONLY else ["BearerAuth", "ApiKeyAuth"]
        assert operation["security"] == [{scheme: needs} for scheme in accepted], name
        if needs:
            assert "403" in operation["responses"], name
            for need in needs:
                assert need in operation["responses"]["403"]["description"], name
        checked += 1
    assert checked >= 20


def test_every_scope_guards_an_operation(spec: dict[str, Any]) -> None:
    used = {s for _, _, op in operations(spec) for s in op.get("x-required-scopes", [])}
    assert used == SCOPES


def _example_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_secured_operation_refuses_a_missing_token(
    docs_client: FlaskClient, spec: dict[str, Any]
) -> None:
    checked = 0
    for path, method, operation in operations(spec):
        if not operation.get("security") or operation["operationId"] == "login":
            continue
        response = docs_client.open(_example_path(path), method=method.upper(), json={})
        assert response.status_code == 401, operation["operationId"]
        assert response.mimetype == "application/problem+json"
        checked += 1
    assert checked >= 9


def test_operations_with_path_ids_document_404(spec: dict[str, Any]) -> None:
    for path, _, operation in operations(spec):
        if "{" in path:
            assert "404" in operation["responses"], operation["operationId"]


def test_every_response_documents_the_request_id_header(spec: dict[str, Any]) -> None:
    for _, _, operation in operations(spec):
        for response in operation["responses"].values():
            assert "X-Request-ID" in response["headers"]


def test_every_response_header_is_defined_once_and_referenced(spec: dict[str, Any]) -> None:
    defined = spec["components"]["headers"]
    for name in ("ETag", "Link", "X-Total-Count", "Location"):
        assert defined[name]["required"] is True, name
        assert defined[name]["description"], name
    used = set()
    for _, _, operation in operations(spec):
        for response in operation["responses"].values():
            for name, header in response["headers"].items():
                assert header == {"$ref": f"#/components/headers/{name}"}, operation["operationId"]
                used.add(name)
    assert used == set(defined)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_only_local_assets(docs_client: FlaskClient, page: str) -> None:
    response = docs_client.get(page)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "fonts.googleapis" not in html
    assert "cdn." not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, "the page should load its UI from this server"
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by this server"
        asset_response = docs_client.get(asset)
        assert asset_response.status_code == 200, asset
        assert len(asset_response.data) > 1000 or asset.endswith(".png"), asset
        asset_response.close()


def test_swagger_ui_is_configured_for_bearer_tokens_and_offline(docs_client: FlaskClient) -> None:
    html = docs_client.get("/docs").get_data(as_text=True)
    assert re.search(r'"validatorUrl":\s*null', html)  # no request to an outside validator
    assert "/openapi.json" in html
    assert re.search(r'"persistAuthorization":\s*true', html)


def test_every_operation_is_tagged_and_every_tag_used(spec: dict[str, Any]) -> None:
    # Swagger UI groups operations by tag, and SDK generators make one module per tag.
    declared = [tag["name"] for tag in spec["tags"]]
    used = []
    for _, _, operation in operations(spec):
        assert len(operation.get("tags", [])) == 1, operation["operationId"]
        used.append(operation["tags"][0])
    assert set(used) == set(declared)
    assert all(tag["description"] for tag in spec["tags"])
