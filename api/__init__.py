"""Tasks API: `create_app()` builds the WSGI application."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.config import check_secrets, load_settings, sqlite_url
from api.openapi import SchemaKeywordsPlugin, TasksAPI

__version__ = "1.0.0"


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
    load_dotenv(override=False)
    settings = load_settings(profile or (test_config or {}).get("APP_ENV"))
    settings.update(test_config or {})
    check_secrets(settings)

    app = TasksAPI(
        __name__,
        title="Tasks API",
        version=__version__,
        docs_ui="swagger-ui",
        spec_plugins=[SchemaKeywordsPlugin()],
    )
    app.config.from_mapping(settings)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url(app.instance_path)
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from apiflask.schema_adapters.marshmallow import parser

    # webargs ignores unknown query parameters by default; let each schema's
    # `Meta.unknown` decide instead (ours refuse them: a typo is a 422, not a no-op).
    parser.unknown = None

    from api import cli, errors, http, openapi, routes, security
    from api.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, directory=str(_MIGRATIONS))
    security.init_app(app)
    errors.init_app(app)
    http.init_app(app)
    openapi.init_app(app)
    routes.init_app(app)
    cli.init_app(app)
    return app


_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
