"""What the blueprints share: the type a view returns, and the spec's response links."""

from __future__ import annotations

from typing import Any

# What a view hands to APIFlask, which serializes it with the view's `@output` schema:
# a model or a dict, alone or with a status and headers. Flask's own return type cannot
# say "serialized later", hence Any.
ViewResult = Any


def response_links(
    noun: str, parameter: str, *operation_ids: str, also: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    """OpenAPI links from a response that carries a `noun` (its `id`) to the operations that
    take that id as `parameter` (SDK generators and stateful testers follow them). `also`
    names more path parameters that the response body carries under the same name (an
    attachment's `task_id`)."""
    return {
        operation_id: {
            "operationId": operation_id,
            "parameters": {
                parameter: "$response.body#/id",
                **{name: f"$response.body#/{name}" for name in also},
            },
            "description": f"`id` of the {noun} in this response, as `{parameter}` of "
            f"`{operation_id}`.",
        }
        for operation_id in operation_ids
    }
