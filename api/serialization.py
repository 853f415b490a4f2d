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

from collections.abc import Callable
from datetime import date
from operator import attrgetter
from typing import Any

import orjson
from apiflask import Schema
from flask import Response
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields

Dumper = Callable[[Any], dict[str, Any]]


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson's encoder (several times faster than `json`).

    Decoding stays with the standard library: it accepts every valid JSON document
    (orjson refuses integers beyond 64 bits, which must reach validation as a 422).
    """

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
