"""The OpenAPI document's assembly.

The document comes from the views' `@input`/`@output`/`@doc` decorators. `finish_spec`
then adds what no view declares: each behaviour's part, written by the module that does
the work (`api.spec_parts`: rate limits, ETags, problem responses, request ids, security),
the webhooks, the headers views declare, and the rules that hold for the whole document
(path ids, 32-bit integers). The docs UIs are `api.docs`; `flask openapi` is `api.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from apispec import BasePlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_cls

from api.models import MAX_ID
from api.openapi_webhooks import add_webhooks
from api.spec_parts import Spec, describe_header, header_ref, operations, parts

SPEC_FILE = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"

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

    This overrides a private method because APIFlask (3.1) offers no public way: the
    public `schema_name_resolver` runs before APIFlask's own clash check renames the
    schema, and a spec processor (`spec_processor`, with or without
    `SPEC_PROCESSOR_PASS_OBJECT`) only sees the finished document, where it could merge
    the duplicates after apispec warned about each. `tests/test_openapi.py` fails if a
    numbered duplicate comes back.
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


# Response headers that views declare (`headers=` schemas: ListHeaders, LocationHeader,
# the downloads'), each described once under components/headers and referenced from every
# response that declares it. Each is always sent where declared.
_DECLARED_HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
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


def finish_spec(app: APIFlask, spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Add to the views' document what no view declares (see the module docstring)."""
    if not isinstance(spec, dict):
        raise TypeError("SPEC_FORMAT must be json: finish_spec edits a dict")
    add_webhooks(spec)
    for name, (description, schema) in _DECLARED_HEADERS.items():
        describe_header(spec, name, description, schema)
    for _path, _method, operation in operations(spec):
        _bound_path_ids(operation)
    registered = parts(app)
    for part in registered.parts:
        part(spec)
    described = spec["components"]["headers"].keys()
    for path, _method, operation in operations(spec):
        for response in operation["responses"].values():
            headers = response.setdefault("headers", {})
            for name in headers.keys() & described:
                headers[name] = header_ref(name)
            for response_part in registered.response_parts:
                response_part(path, response)
    # Every other integer of this API is 32-bit (ids, counts, versions, seconds, statuses).
    for schema in _schemas(spec):
        if _is_integer(schema):
            schema.setdefault("format", "int32")
    return spec


def _bound_path_ids(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and _is_integer(parameter["schema"]):
            # Ids outside 1..MAX_ID cannot exist: such a request is a 404. The example id
            # is a made-up one, never the first accounts' (a tool that sends examples, such
            # as schemathesis' explicit phase, would otherwise change the first user).
            parameter["schema"].update(minimum=1, maximum=MAX_ID, examples=[42])


def spec_json(app: APIFlask) -> str:
    """The document as the checked-in file holds it: sorted keys, 2-space indent."""
    return json.dumps(app.spec, indent=2, sort_keys=True) + "\n"


def init_app(app: APIFlask) -> None:
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
    )

    @app.spec_processor
    def finish(spec: Spec | str) -> Spec | str:
        return finish_spec(app, spec)
