"""Rows survive every migration, on SQLite and PostgreSQL.

Rows go in at the revision that creates their tables; the database is then upgraded
one revision at a time to the head, and after every step each row must still be there
with the values it went in with. A new revision is covered as soon as it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_alembic
from sqlalchemy import select

from api.extensions import db
from api.models import IdempotencyRecord, Job, Task, User
from tests.support.apps import isolated_process_state
from tests.support.db import fresh_postgres_database
from tests.support.migrations import alembic_runner


def at(hour: int) -> datetime:
    return datetime(2030, 1, 2, hour, 30, 15, 123456, tzinfo=UTC)


# revision -> table -> rows inserted right after upgrading to that revision
SEED: dict[str, dict[str, list[dict[str, Any]]]] = {
    "0001": {
        "users": [
            {
                "id": 7,
                "username": "ada",
                "email": "ada@example.com",
                "password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
                "role": "admin",
                "tier": "pro",
                "is_active": False,
                "created_at": at(1),
                "updated_at": at(2),
            }
        ],
        "tags": [{"id": 3, "name": "home"}, {"id": 4, "name": "wörk"}],
        "tasks": [
            {
                "id": 11,
                "owner_id": 7,
                "title": "Survive the upgrade",
                "description": "ünïcode ✓ and\nnewlines",
                "status": "completed",
                "priority": "urgent",
                "due_date": at(3),
                "created_at": at(1),
                "updated_at": at(4),
                "completed_at": at(4),
                "version": 5,
            },
            {
                "id": 12,
                "owner_id": 7,
                "title": "Undated",
                "description": None,
                "status": "pending",
                "priority": "low",
                "due_date": None,
                "created_at": at(1),
                "updated_at": at(1),
                "completed_at": None,
                "version": 1,
            },
        ],
        "task_tags": [{"task_id": 11, "tag_id": 3}, {"task_id": 11, "tag_id": 4}],
        "revoked_tokens": [
            {
                "jti": "0d6f3c1e-9b1e-4d38-a1a5-0a3f6f1f0b11",
                "token_type": "family",
                "user_id": 7,
                "expires_at": at(5),
                "revoked_at": at(2),
            }
        ],
    },
    "0002": {
        "idempotency_records": [
            {
                "id": 21,
                "user_id": 7,
                "key": "retry-me",
                "fingerprint": "f" * 64,
                "status_code": 201,
                "headers": {"Location": "/api/v1/tasks/11"},
                "body": b'{"id": 11}',
                "created_at": at(1),
                "expires_at": at(6),
            }
        ]
    },
    "0004": {
        "jobs": [
            {
                "id": 31,
                "owner_id": 7,
                "kind": "report",
                "params": {"kind": "export", "format": "csv", "filters": {"tag": "wörk"}},
                "status": "succeeded",
                "attempts": 2,
                "error": "OSError: first try failed",
                "result": 'id,title\r\n11,"Survive, the upgrade"\r\n',
                "result_media_type": "text/csv; charset=utf-8",
                "created_at": at(1),
                "run_after": None,
                "started_at": at(2),
                "finished_at": at(3),
                "heartbeat_at": at(3),
                "expires_at": at(7),
                "request_id": "req-0004",
            },
            {
                "id": 32,
                "owner_id": None,
                "kind": "email.welcome",
                "params": {"user_id": 7},
                "status": "queued",
                "attempts": 0,
                "error": None,
                "result": None,
                "result_media_type": None,
                "created_at": at(1),
                "run_after": at(2),
                "started_at": None,
                "finished_at": None,
                "heartbeat_at": None,
                "expires_at": None,
                "request_id": None,
            },
        ]
    },
}


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_process_state():
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    with fresh_postgres_database(server) as url:
        yield url


def stored(value: Any, dialect: str) -> Any:
    """What to insert: SQLite has no time zones, so datetimes go in as naive UTC."""
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def seed(runner: pytest_alembic.MigrationContext, revision: str) -> None:
    dialect = db.engine.dialect.name
    for table, rows in SEED.get(revision, {}).items():
        runner.insert_into(
            table, [{key: stored(value, dialect) for key, value in row.items()} for row in rows]
        )


def assert_rows_survived(runner: pytest_alembic.MigrationContext, seeded: list[str]) -> None:
    revision = runner.current
    with db.engine.connect() as connection:
        for name in seeded:
            for table_name, rows in SEED[name].items():
                table = runner.table_at_revision(table_name)
                found = [
                    {column: comparable(value) for column, value in row.items()}
                    for row in connection.execute(select(table)).mappings()
                ]
                expected = [{k: comparable(v) for k, v in row.items()} for row in rows]
                trimmed = [{key: row[key] for key in expected[0]} for row in found]
                assert sorted(trimmed, key=repr) == sorted(expected, key=repr), (
                    f"{table_name} rows changed on the way to {revision}"
                )


def test_rows_survive_every_upgrade(empty_database: str) -> None:
    with alembic_runner(empty_database) as runner:
        history = [r for r in runner.history.revisions if r not in ("base", "heads")]
        assert set(SEED) <= set(history), "SEED names a revision that does not exist"
        runner.migrate_up_to(history[0])
        seed(runner, history[0])
        seeded = [history[0]] if history[0] in SEED else []
        steps = 0
        while (revision := runner.migrate_up_one()) is not None:
            steps += 1
            assert_rows_survived(runner, seeded)
            seed(runner, revision)
            if revision in SEED:
                seeded.append(revision)
        assert runner.current == history[-1]
        assert steps == len(history) - 1 >= 1
        assert seeded == [r for r in history if r in SEED]

        # At the head the models read the old rows as they were written.
        with db.session() as session:
            task = session.get(Task, 11)
            assert task is not None
            assert task.tag_names == ["home", "wörk"]
            assert task.due_date == at(3)
            assert task.version == 5
            owner = session.get(User, 7)
            assert owner is not None
            assert (owner.username, owner.is_active, owner.tier) == ("ada", False, "pro")
            # Added by 0004 with a server default: off for every existing account.
            assert owner.notify_on_task_created is False
            record = session.get(IdempotencyRecord, 21)
            assert record is not None
            assert (record.headers, record.body) == (
                {"Location": "/api/v1/tasks/11"},
                b'{"id": 11}',
            )
            job = session.get(Job, 31)
            assert job is not None
            assert (job.params["filters"], job.finished_at, job.attempts) == (
                {"tag": "wörk"},
                at(3),
                2,
            )
