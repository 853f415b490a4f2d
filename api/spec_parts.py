"""How a behaviour documents itself: its part of the OpenAPI document, next to its hook.

A module that changes what the API answers (rate limits, ETags, problem responses, ...)
registers, in its `init_app`, beside the hook that does the work, a function that writes
that work into the document (`add_part`). A behaviour an app switches off registers
nothing, so its app's document does not mention it. `api.openapi` assembles the document
and runs the parts in the order the app registered them, then the response parts
(`add_response_part`) on every response: those see the responses every part added (a
429, a 304, a 500), so a header sent on every answer is documented on all of them.

This module is a leaf: the behaviours import it, it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

Spec = dict[str, Any]
# (path, method, operation): an operation of the document and where it lives.
Operation = tuple[str, str, dict[str, Any]]
Part = Callable[[Spec], None]
# Called with each response of each operation: (path, response).
ResponsePart = Callable[[str, dict[str, Any]], None]

_EXTENSION = "spec_parts"


@dataclass
class Parts:
    """An app's parts of the document, in the order they were registered."""

    parts: list[Part] = field(default_factory=list)
    response_parts: list[ResponsePart] = field(default_factory=list)


def parts(app: Flask) -> Parts:
    registered: Parts = app.extensions.setdefault(_EXTENSION, Parts())
    return registered


def add_part(app: Flask, part: Part) -> None:
    """Have `part` add its behaviour to `app`'s document (components, responses,
    parameters)."""
    parts(app).parts.append(part)


def add_response_part(app: Flask, part: ResponsePart) -> None:
    """Have `part` document each response of `app`'s document (the headers a behaviour
    adds to every answer), once every part has added its responses."""
    parts(app).response_parts.append(part)


def operations(spec: Spec) -> Iterator[Operation]:
    """Every operation of the document, with its path and method."""
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            yield path, method, operation


def describe_header(
    spec: Spec, name: str, description: str, schema: dict[str, Any], *, required: bool = True
) -> None:
    """Describe the response header `name` once, under components/headers (with a
    realistic example: a mock server such as Prism serves it); responses reference it."""
    headers = spec.setdefault("components", {}).setdefault("headers", {})
    headers[name] = {"description": description, "required": required, "schema": dict(schema)}


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}
