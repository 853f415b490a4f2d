"""The OpenAPI document and the docs UIs.

The document comes from the views' `@input`/`@output`/`@doc` decorators; `finish_spec`
adds the few rules that hold for every operation (problem media type, the errors any
operation can return, required bodies, the `X-Request-ID` header), so views do not
repeat them. `/docs` (Swagger UI) and `/redoc` load their assets from this server.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from apiflask import APIFlask
from apiflask.ui_templates import ui_templates
from apispec import BasePlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_cls
from flask import Blueprint, Response, render_template_string

from api.conditional import ETAGS_PATTERN, MAX_ETAGS_LENGTH
from api.http import is_api_path
from api.models import MAX_ID
from api.openapi_webhooks import add_webhooks
from schemas.common import Problem, ValidationProblem

SPEC_FILE = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
PROBLEM_MIMETYPE = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_PROBLEM_REF = {"$ref": "#/components/schemas/ValidationProblem"}
# Operations whose body may be left out (login also takes HTTP Basic credentials).
OPTIONAL_BODY_OPERATIONS = frozenset({"login"})

DESCRIPTION = """\
Manage your tasks: create, read, replace, patch, delete, filter, sort, paginate and tag.

**Authentication.** Register with `register`, then `login` for an access token and a
refresh token. Click **Authorize**, paste the access token (`BearerAuth`), and every
"Try it out" call is made as you. Access tokens live 15 minutes; exchange the refresh
token at `refreshToken` for a new pair (the old refresh token dies; using it again ends
the whole session). For scripts and integrations, create an API key (`createApiKey`)
and send it as `X-API-Key` (`ApiKeyAuth`).

**Scopes.** Each operation lists the scope it needs in `x-required-scopes` and in its
security requirements: `tasks:read`, `tasks:write`, `reports:write`, `webhooks:read`,
`webhooks:write`, `users:read`, `users:write`, `admin:write`. A login token holds every scope
of your role (users: `tasks:*`, `reports:write` and `webhooks:*`; admins: all); an API key
holds only the scopes it was created with. A missing scope is a 403 naming it.

**Events and webhooks.** Every change to your tasks is an event: follow them with
`listEvents` (incremental sync from a stored cursor), or subscribe a URL with
`createWebhook` to have them POSTed to you, signed per Standard Webhooks. Each payload is
described under `webhooks` in this document.

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`) with the request's `request_id`; validation errors list
each field in `errors`.

**Collections** take `page` and `per_page` (1..100) and answer
`{"data": [...], "pagination": {...}}` with `Link` and `X-Total-Count` headers.
"""


class SchemaKeywordsPlugin(BasePlugin):
    """Adds a marshmallow schema's `Meta.json_schema` to its component: the keywords
    marshmallow cannot express on a field (`minProperties` for "at least one field")."""

    def schema_helper(
        self, name: str, definition: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        if schema is None:
            return None
        meta = getattr(resolve_schema_cls(schema), "Meta", None)
        return dict(getattr(meta, "json_schema", {})) or None


class TasksAPI(APIFlask):
    """APIFlask, emitting each schema as one component however it is used.

    APIFlask names an `@output` schema anew when the marshmallow plugin has already
    registered the same schema as a nested field (`TaskOut` and `TaskOut1`); here the
    plugin's existing reference is reused instead.
    """

    def _register_schema_and_get_ref(
        self, spec: Any, registered_schema_classes: dict[int, str], schema_obj: Any
    ) -> dict[str, str]:
        plugin = getattr(self, "_ma_plugin", None)
        if plugin is not None and not isinstance(schema_obj, type):
            name = plugin.converter.refs.get(make_schema_key(schema_obj))
            if name is not None:
                return {"$ref": f"#/components/schemas/{name}"}
        ref: dict[str, str] = super()._register_schema_and_get_ref(
            spec, registered_schema_classes, schema_obj
        )
        return ref


def _problem_response(description: str, schema: dict[str, str] = _PROBLEM_REF) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MIMETYPE: {"schema": schema}}}


_BODY_ERRORS = {
    "400": "The body is not valid JSON.",
    "413": "The body is larger than the server accepts.",
    "415": "The body is not `application/json`.",
}


# Response headers, here and in _SHARED_HEADERS, are each described once under
# components/headers with a realistic example (a mock server such as Prism serves it) and,
# if an integer, its bounds. These are added to responses here (X-Request-ID to all, the
# rest where rate limited); each is (description, required, schema).
_HEADERS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "X-Request-ID": (
        "The client's request id if it sent a sane one, else a generated one.",
        True,
        {"type": "string", "examples": ["9f1c2e7a4b3d4f0e8a6b5c4d3e2f1a0b"]},
    ),
    "X-RateLimit-Limit": (
        "Requests allowed in the current window.",
        False,
        {"type": "integer", "minimum": 1, "examples": [120]},
    ),
    "X-RateLimit-Remaining": (
        "Requests left in the current window.",
        False,
        {"type": "integer", "minimum": 0, "examples": [119]},
    ),
    # A Unix time outgrows 32 bits in 2038.
    "X-RateLimit-Reset": (
        "When the window resets (Unix time, seconds).",
        False,
        {"type": "integer", "format": "int64", "minimum": 0, "examples": [1796119260]},
    ),
    "Retry-After": (
        "Seconds to wait before retrying.",
        True,
        {"type": "integer", "minimum": 0, "examples": [30]},
    ),
}
_RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# Response headers that views declare (`headers=` schemas: ETagHeader, ListHeaders,
# LocationHeader) or that every API GET carries (ETag), each referenced from every
# response that carries it. Each is always sent where declared.
_SHARED_HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ETag": (
        "Version of this representation: send it as If-None-Match to get a 304 while it is "
        "current; a task's, as If-Match to change the task only if it is.",
        {"type": "string", "examples": ['"42.3"']},
    ),
    "Link": (
        "RFC 8288 links: first, prev, next, last.",
        {
            "type": "string",
            "examples": [
                '</api/v1/tasks?page=1&per_page=20>; rel="first", '
                '</api/v1/tasks?page=2&per_page=20>; rel="next", '
                '</api/v1/tasks?page=3&per_page=20>; rel="last"'
            ],
        },
    ),
    "X-Total-Count": (
        "Items matching the query, on all pages.",
        {"type": "integer", "minimum": 0, "examples": [42]},
    ),
    "Location": (
        "URL of the created resource; on a 307, where to fetch the bytes instead.",
        {"type": "string", "examples": ["/api/v1/tasks/42"]},
    ),
    "Content-Disposition": (
        "The answer is a file to save, never to display: `attachment` with its name "
        "(`filename`, and `filename*` in UTF-8 for names beyond ASCII).",
        {"type": "string", "examples": ['attachment; filename="report-7.csv"']},
    ),
    # Attachment downloads (api.routes.attachments).
    "Content-Length": (
        "Bytes in this answer's body.",
        {"type": "integer", "format": "int64", "minimum": 0, "examples": [1024]},
    ),
    "Accept-Ranges": (
        "`bytes`: send `Range` for a part of the file.",
        {"type": "string", "examples": ["bytes"]},
    ),
    "Content-Range": (
        "`bytes <first>-<last>/<size>` on a 206; `bytes */<size>` on a 416.",
        {"type": "string", "examples": ["bytes 0-1023/4096"]},
    ),
    "X-Content-Type-Options": (
        "`nosniff`: the Content-Type is the sniffed one; browsers must not guess another.",
        {"type": "string", "examples": ["nosniff"]},
    ),
}
_IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "An ETag from an earlier answer: 304 with no body if it still matches.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ETAGS_LENGTH,
        "pattern": ETAGS_PATTERN,
        "examples": ['"42.3"'],
    },
}


V = TypeVar("V", bound=Callable[..., Any])


def request_body(body: dict[str, Any]) -> Callable[[V], V]:
    """Document the request body of a view that reads it itself (a file upload: one
    operation, two media types, which `@input` cannot describe).

    Carried in the view's `_spec` extensions, which APIFlask copies into the operation
    as they are (as `api.security.requires` does for the scopes); `finish_spec` then
    treats it like any other body. The view's own 400/413/415 answers are documented by
    the view (`finish_spec` only fills in those left out).
    """

    def decorator(view: V) -> V:
        spec: dict[str, Any] = view.__dict__.setdefault("_spec", {})
        spec["extensions"] = {**(spec.get("extensions") or {}), "requestBody": body}
        return view

    return decorator


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _rate_limited(path: str) -> bool:
    # Flask-Limiter covers everything under /api/ (see api.limits); probes are exempt.
    return is_api_path(path)


def _document_forbidden(operation: dict[str, Any]) -> None:
    """The 403 of an operation that needs a scope or a role (see `api.security.requires`),
    merged with any 403 the operation documents itself."""
    reasons = [
        f"The credential lacks `{scope}`." for scope in operation.get("x-required-scopes", [])
    ]
    if "x-required-role" in operation:
        reasons.insert(0, f"Only the `{operation['x-required-role']}` role may call this.")
    if not reasons:
        return
    existing = operation["responses"].get("403")
    if existing is not None:
        reasons.append(existing["description"])
    operation["responses"]["403"] = _problem_response(" ".join(reasons))


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON schema object in the document (under any `schema`/`properties`/`items`)."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _is_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def finish_spec(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Apply the rules shared by every operation (see the module docstring)."""
    if not isinstance(spec, dict):
        raise TypeError("SPEC_FORMAT must be json: finish_spec edits a dict")
    add_webhooks(spec)
    headers = spec.setdefault("components", {}).setdefault("headers", {})
    for name, (description, required, schema) in _HEADERS.items():
        headers[name] = {"description": description, "required": required, "schema": dict(schema)}
    for name, (description, schema) in _SHARED_HEADERS.items():
        headers[name] = {"description": description, "required": True, "schema": dict(schema)}
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            _finish_operation(path, method, operation)
    # Every other integer of this API is 32-bit (ids, counts, versions, seconds, statuses).
    for schema in _schemas(spec):
        if _is_integer(schema):
            schema.setdefault("format", "int32")
    return spec


def _finish_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    # An operation without a credential says so (`security: []`, public), rather than
    # leaving readers and linters to guess whether a global requirement applies.
    operation.setdefault("security", [])
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and _is_integer(parameter["schema"]):
            # Ids outside 1..MAX_ID cannot exist: such a request is a 404. The example id
            # is a made-up one, never the first accounts' (a tool that sends examples, such
            # as schemathesis' explicit phase, would otherwise change the first user).
            parameter["schema"].update(minimum=1, maximum=MAX_ID, examples=[42])
    responses = operation["responses"]
    body = operation.get("requestBody")
    if body is not None:
        body["required"] = operation.get("operationId") not in OPTIONAL_BODY_OPERATIONS
        for status, description in _BODY_ERRORS.items():
            responses.setdefault(status, _problem_response(description))
    _document_forbidden(operation)
    if _rate_limited(path):
        too_many = _problem_response("Rate limit exceeded; wait `Retry-After` seconds.")
        too_many["headers"] = {"Retry-After": _header_ref("Retry-After")}
        responses.setdefault("429", too_many)
    if method == "get" and is_api_path(path) and "200" in responses:
        # api.conditional gives every API GET an ETag and honours If-None-Match.
        operation["parameters"].append(_IF_NONE_MATCH)
        responses["200"].setdefault("headers", {})["ETag"] = _header_ref("ETag")
        responses["304"] = {"description": "Not modified: your copy (If-None-Match) is current."}
        responses.setdefault(
            "422",
            _problem_response(
                "A header is malformed (If-None-Match).", schema=_VALIDATION_PROBLEM_REF
            ),
        )
    responses.setdefault("500", _problem_response("Unexpected server error."))
    for status, response in responses.items():
        content = response.get("content", {})
        if int(status) >= 400 and "application/json" in content:
            content[PROBLEM_MIMETYPE] = content.pop("application/json")
        response_headers = response.setdefault("headers", {})
        for name in response_headers.keys() & _SHARED_HEADERS.keys():
            response_headers[name] = _header_ref(name)
        response_headers["X-Request-ID"] = _header_ref("X-Request-ID")
        if _rate_limited(path):
            for name in _RATE_LIMIT_HEADERS:
                response_headers[name] = _header_ref(name)


def _sidecar_static() -> Path:
    """Swagger UI and Redoc files from the drf-spectacular-sidecar wheel (not imported:
    it is a Django app; we only serve its files)."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise RuntimeError("drf-spectacular-sidecar is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar"


def spec_json(app: APIFlask) -> str:
    """The document as the checked-in file holds it: sorted keys, 2-space indent."""
    return json.dumps(app._get_spec("json", force_update=True), indent=2, sort_keys=True) + "\n"


# Redoc's side menu always shows a logo from cdn.redoc.ly (no option turns it off): the
# browser may load nothing from elsewhere, so the page makes no outside request (the
# image just stays away). Redoc's own inline styles, start-up script and search worker
# need the rest.
REDOC_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


def init_app(app: APIFlask) -> None:
    # A plain Flask blueprint: APIFlask leaves it out of the document.
    docs = Blueprint(
        "docs", __name__, static_folder=str(_sidecar_static()), static_url_path="/docs/assets"
    )

    @docs.get("/redoc")
    def redoc() -> Response:
        page = render_template_string(ui_templates["redoc"], title=app.title, version=app.version)
        return Response(page, headers={"Content-Security-Policy": REDOC_CSP})

    app.register_blueprint(docs)

    base = "/docs/assets"
    app.config.update(
        DESCRIPTION=DESCRIPTION,
        CONTACT={"name": "Tasks API maintainers"},
        LICENSE={"name": "MIT", "identifier": "MIT"},
        SECURITY_SCHEMES={
            "BasicAuth": {
                "type": "http",
                "scheme": "basic",
                "description": "Username (or email) and password, accepted by `login` only.",
            }
        },
        HTTP_ERROR_SCHEMA=Problem,
        VALIDATION_ERROR_SCHEMA=ValidationProblem,
        SWAGGER_UI_CSS=f"{base}/swagger-ui-dist/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{base}/swagger-ui-dist/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{base}/swagger-ui-dist/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{base}/swagger-ui-dist/favicon-32x32.png",
        REDOC_STANDALONE_JS=f"{base}/redoc/bundles/redoc.standalone.js",
        REDOC_USE_GOOGLE_FONT=False,
        SWAGGER_UI_CONFIG={
            "validatorUrl": None,  # the default sends the spec to an outside validator
            "persistAuthorization": True,
            "displayOperationId": True,
            "displayRequestDuration": True,
        },
    )
    app.spec_processor(finish_spec)

    @app.cli.command("openapi")
    @click.option("--check", is_flag=True, help="Fail if the checked-in file is stale.")
    def openapi_command(check: bool) -> None:
        """Write openapi/openapi.json from the code (or --check it)."""
        text = spec_json(app)
        if check:
            if not SPEC_FILE.exists() or SPEC_FILE.read_text() != text:
                raise click.ClickException(
                    f"{SPEC_FILE} is stale: run `make openapi` and commit it"
                )
            click.echo(f"{SPEC_FILE} is up to date")
            return
        SPEC_FILE.parent.mkdir(exist_ok=True)
        SPEC_FILE.write_text(text)
        click.echo(f"wrote {SPEC_FILE}")
