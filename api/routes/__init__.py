"""One APIBlueprint per resource; routes only, rules live in `api.services`."""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

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


def init_app(app: APIFlask) -> None:
    from api.routes import (
        admin,
        api_keys,
        attachments,
        auth,
        events,
        health,
        jobs,
        reports,
        tags,
        tasks,
        users,
        webhooks,
    )

    modules = (
        auth,
        users,
        api_keys,
        tasks,
        attachments,
        tags,
        events,
        webhooks,
        reports,
        jobs,
        admin,
        health,
    )
    for module in modules:
        app.register_blueprint(module.bp)
