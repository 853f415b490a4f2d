"""Migrations and models agree, on SQLite and PostgreSQL (pytest-alembic's standard tests).

The pytest-alembic plugin's automatic collection is off (`-p no:pytest_alembic`: it does
not collect under this pytest); its four standard tests are called here instead, with a
runner bound to an empty database of each backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytest_alembic
from pytest_alembic.tests import default as standard
from sqlalchemy import inspect

from api.extensions import db
from tests.support.db import fresh_postgres_database
from tests.support.migrations import alembic_runner

STANDARD_TESTS = [
    standard.test_single_head_revision,
    standard.test_upgrade,
    standard.test_model_definitions_match_ddl,
    standard.test_up_down_consistency,
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    with fresh_postgres_database(server) as url:
        yield url


@pytest.mark.parametrize("check", STANDARD_TESTS, ids=lambda check: check.__name__)
def test_standard(
    check: Callable[[pytest_alembic.MigrationContext], None], empty_database: str
) -> None:
    with alembic_runner(empty_database) as runner:
        check(runner)


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    expected = {"users", "tasks", "tags", "task_tags", "revoked_tokens", "alembic_version"}
    expected |= {"api_keys", "password_reset_tokens", "jobs"}
    with alembic_runner(empty_database) as runner:
        runner.migrate_up_to("heads")
        assert expected <= set(inspect(db.engine).get_table_names())
        runner.migrate_down_to("base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        runner.migrate_up_to("heads")
        assert expected <= set(inspect(db.engine).get_table_names())
