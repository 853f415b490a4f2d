"""Tasks API: `create_app()` builds the WSGI application."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask_cors import CORS
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from api.config import ConfigError, exit_with, load_settings, read_dotenv, sqlite_url
from api.openapi import SchemaKeywordsPlugin, TasksAPI
from api.serialization import OrjsonProvider, load_request_json

# Semver, of the package and of the spec (info.version); README "Releasing" says when to bump.
__version__ = "2.0.0"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Foreign keys on (SQLite leaves them off) and WAL, so readers never block a writer."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def create_app(test_config: dict[str, Any] | None = None, profile: str | None = None) -> TasksAPI:
    """Build the app from the environment (`APP_ENV` picks the profile) and `test_config`."""
    read_dotenv()
    settings = load_settings(test_config, profile)

    app = TasksAPI(
        __name__,
        title="Tasks API",
        version=__version__,
        docs_ui="swagger-ui",
        spec_plugins=[SchemaKeywordsPlugin()],
    )
    app.config.from_mapping(settings)
    app.json = OrjsonProvider(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url(app.instance_path)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # A database that does not answer fails requests (and /health/ready) in
        # seconds instead of hanging them.
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
            app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        )
        options.setdefault("connect_args", {}).setdefault("connect_timeout", 3)

    from apiflask.schema_adapters.marshmallow import parser

    # webargs ignores unknown query parameters by default; let each schema's
    # `Meta.unknown` decide instead (ours refuse them: a typo is a 422, not a no-op).
    parser.unknown = None
    # Bodies are parsed by `parse_json`: hostile JSON is a 400, never a RecursionError.
    parser._raw_load_json = load_request_json  # type: ignore[method-assign]

    from api import (
        cache,
        cli,
        conditional,
        docs,
        errors,
        http,
        idempotency,
        limits,
        observability,
        openapi,
        routes,
        security,
        storage,
    )
    from api.extensions import db, init_redis, mail, migrate
    from api.jobs import backends as jobs

    # The services that own job kinds register them when imported (`api.jobs.job_kind`).
    from api.services import (  # noqa: F401
        attachments,
        events,
        notifications,
        password_reset,
        reports,
        webhook_deliveries,
    )

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # Only behind real proxies: otherwise a client could pick its own IP (and
        # rate-limit bucket) with X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    observability.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, directory=str(_MIGRATIONS))
    mail.init_app(app)
    init_redis(app)
    jobs.init_app(app)
    storage.init_app(app)
    errors.init_app(app)
    http.init_app(app)
    security.init_app(app)  # resolves the principal, before the limiter reads it
    conditional.init_app(app)
    limits.init_app(app)
    cache.init_app(app)
    idempotency.init_app(app)
    if app.config["CORS_ORIGINS"]:
        CORS(
            app,
            origins=app.config["CORS_ORIGINS"],
            expose_headers=EXPOSED_HEADERS,
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
        )
    openapi.init_app(app)
    docs.init_app(app)
    routes.init_app(app)
    cli.init_app(app)
    return app


def create_app_or_exit(test_config: dict[str, Any] | None = None) -> TasksAPI:
    """`create_app()` for the entry points (wsgi.py, the Celery worker): a configuration
    problem is printed as one short message, with no traceback, and the process exits."""
    try:
        return create_app(test_config)
    except ConfigError as error:
        exit_with(error)


# Response headers a browser client may read cross-origin.
EXPOSED_HEADERS = [
    "ETag",
    "Link",
    "Location",
    "X-Total-Count",
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Idempotency-Replayed",
]


_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
