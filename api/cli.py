"""The `flask` commands: `openapi`, `create-admin`, `seed-demo`, the jobs' and the purges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from apiflask import APIFlask
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import select

from api import clock
from api.errors import ConflictError, InvalidFieldError
from api.extensions import db
from api.jobs import queue, workers
from api.models import Role, Task, User
from api.openapi import SPEC_FILE, spec_json
from api.services import attachments, auth, events, idempotency, jobs, tasks, tokens
from schemas.auth import RegisterIn

# The demo account `make run` seeds for local exploration; printed, not secret.
DEMO_USER = {"username": "demo", "email": "demo@example.com", "password": "tasks demo passphrase"}  # nosec B105
DEMO_TASKS: list[dict[str, Any]] = [
    {"title": "Read the API docs at /docs", "priority": "high", "tags": ["onboarding"]},
    {"title": "Create your first task", "status": "completed", "tags": ["onboarding"]},
    {"title": "Write quarterly report", "priority": "urgent", "tags": ["work", "q4"], "days": 3},
    {"title": "Renew passport", "priority": "medium", "tags": ["personal"], "days": -2},
    {"title": "Plan team offsite", "status": "in_progress", "tags": ["work"], "days": 14},
]


def _register(username: str, email: str, password: str, role: str) -> User:
    try:
        data = RegisterIn().load({"username": username, "email": email, "password": password})
    except ValidationError as error:
        raise click.ClickException(f"invalid input: {error.messages}") from None
    try:
        return auth.register_user(**data, role=role)
    except ConflictError as error:
        raise click.ClickException(error.detail) from None
    except InvalidFieldError as error:  # a weak password
        raise click.ClickException(f"invalid {error.field}: {error.detail}") from None


def init_app(app: APIFlask) -> None:
    @app.cli.command("openapi")
    @click.option("--check", is_flag=True, help="Fail if the checked-in file is stale.")
    def openapi_command(check: bool) -> None:
        """Write openapi/openapi.json from the code (or --check it)."""
        text = spec_json(app)
        if check:
            if not SPEC_FILE.exists() or SPEC_FILE.read_text() != text:
                raise click.ClickException(
                    f"{SPEC_FILE} is stale: run `make openapi` and commit it"
                )
            click.echo(f"{SPEC_FILE} is up to date")
            return
        SPEC_FILE.parent.mkdir(exist_ok=True)
        SPEC_FILE.write_text(text)
        click.echo(f"wrote {SPEC_FILE}")

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.option("--email", prompt=True)
    @click.password_option()
    def create_admin(username: str, email: str, password: str) -> None:
        """Create an administrator account."""
        user = _register(username, email, password, Role.ADMIN.value)
        click.echo(f"created admin {user.username} (id {user.id})")

    @app.cli.command("purge-expired")
    def purge_expired() -> None:
        """Delete expired idempotency records, revocations, jobs and events (run it daily,
        e.g. cron; events are also purged by the `events.purge` job)."""
        records = idempotency.purge_expired()
        revocations = tokens.purge_expired()
        expired_jobs = jobs.purge_expired()
        old_events = events.purge_expired()
        silent = workers.purge_silent()
        click.echo(
            f"purged {records} idempotency records, {revocations} revocations, {old_events} "
            f"events, {expired_jobs} jobs, {silent} heartbeats of stopped workers"
        )

    @app.cli.command("sweep-attachments")
    def sweep_attachments() -> None:
        """Delete orphaned attachment objects now (the jobs poller also does it hourly)."""
        temps, objects = attachments.sweep()
        click.echo(f"removed {temps} unfinished uploads and {objects} unreferenced objects")

    jobs_group = AppGroup("jobs", help="Background jobs.")
    app.cli.add_command(jobs_group)

    @jobs_group.command("purge")
    def purge_jobs() -> None:
        """Delete finished jobs whose results have expired."""
        click.echo(f"purged {jobs.purge_expired()} jobs")

    @jobs_group.command("stats")
    def job_stats() -> None:
        """Print how many jobs are in each status."""
        for status, count in queue.counts_by_status().items():
            click.echo(f"{status}: {count}")

    @app.cli.command(
        "worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )
    @click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
    def worker(celery_args: tuple[str, ...]) -> None:
        """Run a Celery worker for the jobs (JOBS_BACKEND=celery); extra arguments go to
        `celery worker` (e.g. --concurrency 4)."""
        celery = app.extensions.get("celery")
        if celery is None:
            raise click.ClickException("set JOBS_BACKEND=celery (and CELERY_BROKER_URL)")
        celery.worker_main(["worker", "--loglevel", app.config["LOG_LEVEL"], *celery_args])

    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Create the demo user and a few tasks, once (safe to run again)."""
        user = db.session.scalar(select(User).where(User.username == DEMO_USER["username"]))
        if user is None:
            user = _register(**DEMO_USER, role=Role.USER.value)
        if db.session.scalar(select(Task.id).where(Task.owner_id == user.id).limit(1)) is None:
            now = clock.now().replace(microsecond=0)
            for spec in DEMO_TASKS:
                data = {k: v for k, v in spec.items() if k != "days"}
                days = spec.get("days")
                data["due_date"] = now + timedelta(days=int(days)) if days is not None else None
                tasks.create_task(user, {"status": "pending", "priority": "medium", **data})
        click.echo(
            f"demo user: login {DEMO_USER['username']!r}, password {DEMO_USER['password']!r}"
        )
