"""Reading the committed spec in tests: a JSON Schema validator for any schema in it."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def pointer(*parts: str) -> str:
    """A JSON pointer to `parts` (`/` and `~` escaped): pointer("paths", "/a") = "/paths/~1a"."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def validator_at(spec: dict[str, Any], at: str) -> Draft202012Validator:
    """A validator for the schema at JSON pointer `at` in `spec`, its `$ref`s resolved in
    the spec (OAS 3.1 schemas are JSON Schema 2020-12)."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:spec", Resource(contents=spec, specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:spec#{at}"}, registry=registry)
