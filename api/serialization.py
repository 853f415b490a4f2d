"""Fast JSON: orjson for every response, and compiled dumpers for hot lists.

`compile_dumper(schema)` reads a marshmallow schema's dump fields once and returns a
function that builds the same dict `schema.dump` would, without marshmallow's per-field
machinery; `dumped_attributes(schema)` names what it reads, so a query can select exactly
those columns (no ORM objects on the hot path). The schema stays the one source of the
shape (and of the spec); a test checks that the two agree on randomized rows. Only plain
field types are compiled; any other field is refused when compiling, so a schema change
cannot silently diverge.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from operator import attrgetter
from typing import Any

import orjson
from apiflask import Schema
from flask import Request, Response
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields, missing
from webargs.flaskparser import is_json_request

Dumper = Callable[[Any], dict[str, Any]]


# Deeper documents are refused: no request body of this API nests beyond a few levels, and
# Python's parser would otherwise recurse until a RecursionError (a 500).
MAX_JSON_DEPTH = 32


def _refuse(message: str, doc: str) -> json.JSONDecodeError:
    # webargs treats a JSONDecodeError with an empty `doc` as "no body": never empty here.
    return json.JSONDecodeError(message, doc or " ", 0)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: str | bytes) -> Any:
    """Parse a request body; anything but a sane JSON document raises JSONDecodeError.

    Besides malformed text that means: nesting deeper than `MAX_JSON_DEPTH`, integers
    past Python's digit limit, `NaN`/`Infinity` (not JSON), invalid UTF-8, and lone
    surrogates (`"\\ud800"`, legal JSON syntax but no Unicode text: UTF-8 and PostgreSQL
    cannot hold them). Every caller (webargs, `request.get_json`) turns it into a 400.
    """
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refuse(f"it is not UTF-8 ({error.reason})", "") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _refuse(f"it nests deeper than {MAX_JSON_DEPTH} levels", text) from None
    except ValueError as error:  # an integer past the digit limit, NaN, Infinity
        raise _refuse(str(error).split(";")[0], text) from None
    _check_tree(value, text)
    return value


def _check_tree(value: Any, text: str) -> None:
    """Depth and Unicode checks over the parsed document (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _refuse("it has a lone surrogate (not Unicode text)", text) from None
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _refuse(f"it nests deeper than {MAX_JSON_DEPTH} levels", text)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def load_request_json(req: Request) -> Any:
    """webargs' body loader, with `parse_json`'s rules (webargs' own parses with bare
    `json.loads`, which lets RecursionError and the digit limit through as 500s)."""
    if not is_json_request(req):
        return missing
    return parse_json(req.get_data(cache=True))


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson's encoder (several times faster than `json`).

    Decoding stays with the standard library: it accepts every valid JSON document
    (orjson refuses integers beyond 64 bits, which must reach validation as a 422), with
    `parse_json`'s guard against hostile ones.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        body = orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS)
        return Response(body, mimetype=self.mimetype)


def _iso(value: date) -> str:
    return value.isoformat()


def _converter(field: fields.Field[Any]) -> Callable[[Any], Any] | None:
    """How to turn an attribute into JSON for `field` (None: as it is)."""
    if isinstance(field, fields.DateTime):
        if field.format not in (None, "iso", "iso8601"):
            raise TypeError(f"cannot compile DateTime format {field.format!r}")
        return _iso
    if isinstance(field, fields.List):
        inner = _converter(field.inner)
        if inner is None:
            return list
        return lambda values: [inner(value) for value in values]
    if isinstance(field, fields.Boolean | fields.Integer | fields.String):
        return None
    raise TypeError(f"cannot compile {type(field).__name__}; use schema.dump")


def dumped_attributes(schema: Schema) -> tuple[str, ...]:
    """The attributes `schema.dump` reads, in order: what a query must select for it."""
    return tuple(field.attribute or name for name, field in schema.dump_fields.items())


def compile_dumper(schema: Schema) -> Dumper:
    """A function equal to `schema.dump` for one object (a model or a row with the
    `dumped_attributes`), for plain fields only."""
    plan = [
        (field.data_key or name, attrgetter(attribute), _converter(field))
        for (name, field), attribute in zip(
            schema.dump_fields.items(), dumped_attributes(schema), strict=True
        )
    ]

    def dump(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, get, convert in plan:
            value = get(obj)
            out[key] = value if value is None or convert is None else convert(value)
        return out

    return dump
