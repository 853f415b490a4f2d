"""Alembic environment, run through Flask-Migrate (`flask db ...`) or pytest-alembic."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy.engine import Engine

config = context.config
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_metadata():
    return current_app.extensions["migrate"].db.metadata


def render_item(type_, obj, autogen_context):
    """Render the app's column types as plain SQLAlchemy types, so revisions never
    import application code."""
    from api.models.base import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config.set_main_option(
    "sqlalchemy.url", get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
)


def run_migrations_offline():
    """Emit SQL for `flask db upgrade --sql` without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=get_metadata(),
        literal_binds=True,
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)

    def run(connection):
        if connection.dialect.name == "sqlite":
            # SQLite alters a table by copying it and dropping the original; with foreign
            # keys on, that DROP would cascade and delete the rows of child tables.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            render_item=render_item,
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")

    # pytest-alembic hands over an engine or connection of its own.
    given = config.attributes.get("connection") or get_engine()
    if isinstance(given, Engine):
        with given.connect() as connection:
            run(connection)
            connection.commit()
    else:
        run(given)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
