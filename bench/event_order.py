"""What ordering event ids by commit costs on PostgreSQL: `python -m bench.event_order`.

Writers that do nothing but record an event and commit, for BENCH_SECONDS each way: with
the per-commit advisory lock (`api.services.events`: the feed's exactness under
concurrency) and without it (ids may then become visible out of order). Prints events per
second. A real change holds the lock only from its event insert to its commit, so this is
the worst case. Nothing here is a test.

Environment: BENCH_DATABASE_URL (default: the local PostgreSQL), BENCH_SECONDS (default
3), BENCH_WRITERS (default 4). A database is created for the run and dropped after it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api import create_app
from api.extensions import db
from api.models import EventType, User
from api.openapi import TasksAPI
from api.services import events

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WRITERS = int(os.environ.get("BENCH_WRITERS", "4"))


def events_per_second(app: TasksAPI, owner: int, ordered: bool) -> float:
    serialize = events._serialize_ids
    if not ordered:
        events._serialize_ids = lambda: None  # type: ignore[assignment]
    written = [0] * WRITERS
    stop = time.monotonic() + SECONDS

    def write(slot: int) -> None:
        while time.monotonic() < stop:
            with app.app_context():
                events.record(EventType.TASK_UPDATED, owner, {"id": 1})
                db.session.commit()
            written[slot] += 1

    threads = [threading.Thread(target=write, args=(slot,)) for slot in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events._serialize_ids = serialize  # type: ignore[method-assign]
    return sum(written) / SECONDS


def main() -> None:
    name = f"tasks_api_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            db.create_all()
            # No password: the account only owns the events.
            no_login = "!"
            user = User(
                username="bench", email="bench@example.com", password_hash=no_login, role="user"
            )
            db.session.add(user)
            db.session.commit()
            owner = user.id
        with_lock = events_per_second(app, owner, ordered=True)
        without = events_per_second(app, owner, ordered=False)
        print(
            f"{WRITERS} writers, {SECONDS:g} s each: {with_lock:.0f} events/s ordered by "
            f"commit (advisory lock), {without:.0f} events/s without"
        )
        with app.app_context():
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
