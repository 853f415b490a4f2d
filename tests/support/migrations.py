"""pytest-alembic runners bound to a database of the tests' choosing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest_alembic
from pytest_alembic.config import Config

from api.extensions import db
from tests.support.apps import make_app

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@contextmanager
def alembic_runner(url: str) -> Iterator[pytest_alembic.MigrationContext]:
    """A migration runner on the database at `url` (the app's engine, disposed after)."""
    app = make_app(url)
    config = Config.from_raw_config(
        {"file": str(MIGRATIONS / "alembic.ini"), "script_location": str(MIGRATIONS)}
    )
    with app.app_context():
        with pytest_alembic.runner(config=config, engine=db.engine) as runner:
            yield runner
        db.engine.dispose()
