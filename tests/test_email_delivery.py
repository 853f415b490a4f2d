"""Emails as jobs, delivered to a real SMTP server on loopback (aiosmtpd in a thread):
the welcome email and the admins' notice on register, the task-created confirmation, and
an SMTP server that is down: retried, then failed, while register still answers 201."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import select

from api.extensions import db
from api.jobs.runner import UNAVAILABLE_ERROR
from api.models import Job
from api.openapi import TasksAPI
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.processes import free_port

REGISTER = "/api/v1/auth/register"
ADA = {"username": "ada", "email": "ada@example.com", "password": "analytical-engine"}


class Inbox:
    """aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@contextmanager
def smtp_app(tmp_path: Path, port: int) -> Iterator[TasksAPI]:
    """An app (inline jobs) that sends its email to 127.0.0.1:`port`."""
    with isolated_process_state():
        app = app_with_schema(
            sqlite_url(tmp_path),
            MAIL_BACKEND="smtp",
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=port,
            MAIL_TIMEOUT=2,
        )
        try:
            yield app
        finally:
            dispose(app)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    # SMTP carries CRLF line ends; compare with the templates' \n.
    return (
        str(text.get_content()).replace("\r\n", "\n"),
        str(html.get_content()).replace("\r\n", "\n"),
    )


def test_register_sends_the_welcome_email_and_tells_the_admins(
    smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, inbox = smtp
    with smtp_app(tmp_path, port) as app:
        add_user(app, "root", role="admin")
        response = app.test_client().post(REGISTER, json=ADA)
        assert response.status_code == 201
        assert inbox.received == []  # nothing is sent before the response is
        response.close()
        with app.app_context():
            jobs = db.session.scalars(select(Job).order_by(Job.id)).all()
            assert [(j.kind, j.status, j.owner_id) for j in jobs] == [
                ("email.welcome", "succeeded", None),
                ("email.new_user", "succeeded", None),
            ]

    [(to, welcome), (admin_to, notice)] = inbox.received
    assert to == ["ada@example.com"]
    assert welcome["To"] == "ada@example.com"
    assert welcome["From"] == "Tasks API <no-reply@localhost>"
    assert welcome["Subject"] == "Welcome to Tasks API"
    text, html = parts(welcome)
    assert text.startswith("Hello ada,\n\nWelcome to Tasks API.")
    assert "<p>Hello ada,</p>" in html
    assert admin_to == ["root@example.com"]
    assert notice["Subject"] == "New Tasks API account: ada"
    assert "email:    ada@example.com" in parts(notice)[0]


def test_task_created_confirmation_only_when_asked_for(
    smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, inbox = smtp
    with smtp_app(tmp_path, port) as app:
        client = app.test_client()
        add_user(app, "alice")
        headers = bearer(login(client, "alice")["access_token"])
        client.post("/api/v1/tasks", json={"title": "Quiet"}, headers=headers).close()
        assert inbox.received == []
        turned_on = client.patch(
            "/api/v1/users/me", json={"notify_on_task_created": True}, headers=headers
        )
        assert turned_on.status_code == 200
        assert turned_on.get_json()["notify_on_task_created"] is True
        created = client.post(
            "/api/v1/tasks", json={"title": "Loud\nand clear <b>"}, headers=headers
        )
        created.close()
    [(to, message)] = inbox.received
    assert to == ["alice@example.com"]
    assert message["Subject"] == "Task created: Loud and clear <b>"
    text, html = parts(message)
    assert f'"Loud\nand clear <b>" (id {created.get_json()["id"]}' in text
    assert "<strong>Loud\nand clear &lt;b&gt;</strong>" in html


def test_smtp_down_is_retried_then_failed_and_register_still_succeeds(tmp_path: Path) -> None:
    with smtp_app(tmp_path, free_port()) as app:  # nothing listens there
        response = app.test_client().post(REGISTER, json=ADA)
        assert response.status_code == 201
        assert response.get_json()["username"] == "ada"
        response.close()
        with app.app_context():
            job = db.session.scalars(select(Job)).one()
            assert (job.kind, job.status) == ("email.welcome", "failed")
            assert job.attempts == app.config["JOB_MAX_ATTEMPTS"] == 3
            assert job.error == UNAVAILABLE_ERROR.format(attempts=3)
