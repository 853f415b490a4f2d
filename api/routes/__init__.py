"""One APIBlueprint per resource; routes only, rules live in `api.services`."""

from __future__ import annotations

from apiflask import APIFlask

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


def init_app(app: APIFlask) -> None:
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
