"""Password reset by email: no account enumeration, single-use short-lived tokens, email
sent after the response and never failing it."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_mailman import EmailMessage
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from api.extensions import db
from api.jobs.runner import UNAVAILABLE_ERROR
from api.models import Job, PasswordResetToken, User
from api.openapi import TasksAPI
from tests.support.auth import LOGIN, ME, PASSWORD, REFRESH, assert_token_refused, bearer, login
from tests.support.clock import Clock
from tests.support.db import count
from tests.support.problems import assert_problem

# Also run with the Redis revocation store (see conftest).
pytestmark = pytest.mark.redis_tier

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a brand new password"
TOKEN_IN_EMAIL = re.compile(r"^    (\S{40,})$", re.MULTILINE)

MakeUser = Callable[..., User]


def outbox(app: TasksAPI) -> list[EmailMessage]:
    sent: list[EmailMessage] = getattr(app.extensions["mailman"], "outbox", [])
    return sent


@pytest.fixture(autouse=True)
def _empty_outbox(app: TasksAPI) -> None:
    outbox(app).clear()


def request_reset(client: FlaskClient, email: str) -> TestResponse:
    """POST the request, then close the response: deferred work runs on close, as it does
    after a WSGI server has sent the response."""
    response = client.post(RESET, json={"email": email})
    response.close()
    return response


def emailed_token(app: TasksAPI, client: FlaskClient, email: str = "alice@example.com") -> str:
    assert request_reset(client, email).status_code == 202
    match = TOKEN_IN_EMAIL.search(str(outbox(app)[-1].body))
    assert match is not None
    return match.group(1)


def confirm(client: FlaskClient, token: str, password: str = NEW_PASSWORD) -> TestResponse:
    return client.post(CONFIRM, json={"token": token, "password": password})


def assert_token_rejected(response: TestResponse) -> None:
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {
            "location": "json",
            "field": "token",
            "message": "The token is invalid, expired or already used.",
        }
    ]


# --- requesting ------------------------------------------------------------------------


def test_a_reset_emails_a_token_stored_hashed(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    response = client.post(RESET, json={"email": "Alice@Example.com"})
    assert response.status_code == 202
    assert response.get_json() == {
        "detail": "If an active account has this email address, a reset token is on its way.",
        "expires_in": 900,
    }
    assert outbox(app) == []  # nothing happens before the response is sent
    assert count(app, PasswordResetToken) == 0
    response.close()

    [message] = outbox(app)
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your Tasks API password"
    assert message.from_email == app.config["MAIL_DEFAULT_SENDER"]
    match = TOKEN_IN_EMAIL.search(str(message.body))
    assert match is not None
    token = match.group(1)
    with app.app_context():
        row = db.session.scalars(select(PasswordResetToken)).one()
        assert row.user_id == user.id
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.used_at is None
        assert row.expires_at - row.created_at == timedelta(minutes=15)


@pytest.mark.parametrize(
    "email", ["nobody@example.com", "bob@example.com"], ids=["unknown", "inactive"]
)
def test_the_answer_is_the_same_for_any_address(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, email: str
) -> None:
    make_user("alice")
    make_user("bob", is_active=False)
    known = request_reset(client, "alice@example.com")
    other = request_reset(client, email)
    assert other.status_code == known.status_code == 202
    assert other.get_json() == known.get_json()
    assert set(other.headers.keys()) == set(known.headers.keys())
    assert [message.to for message in outbox(app)] == [["alice@example.com"]]
    assert count(app, PasswordResetToken) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "not-an-email"}, {"email": 5}, {"email": "a@example.com", "login": "a"}],
    ids=["missing", "invalid", "int", "unknown-field"],
)
def test_a_bad_request_is_422(app: TasksAPI, client: FlaskClient, body: dict[str, Any]) -> None:
    assert_problem(client.post(RESET, json=body), 422)
    assert count(app, PasswordResetToken) == 0


def test_a_failing_mail_server_never_fails_the_request(
    app: TasksAPI,
    client: FlaskClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_user("alice")

    def refuse(self: Any, messages: Any) -> int:
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr("flask_mailman.backends.locmem.EmailBackend.send_messages", refuse)
    with caplog.at_level(logging.ERROR):
        response = request_reset(client, "alice@example.com")
    assert response.status_code == 202
    assert outbox(app) == []
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
    # Retried (every attempt issued a token nobody received), then failed for good.
    assert (job.kind, job.status, job.attempts) == ("email.password_reset", "failed", 3)
    assert job.error == UNAVAILABLE_ERROR.format(attempts=3)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [f"job {job.id} (email.password_reset) failed"]
    assert failures[0].exc_info is not None


def test_the_console_backend_prints_the_email(
    app: TasksAPI,
    client: FlaskClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(app.extensions["mailman"], "backend", "console")
    make_user("alice")
    assert request_reset(client, "alice@example.com").status_code == 202
    printed = capsys.readouterr().out
    assert "To: alice@example.com" in printed
    assert "Subject: Reset your Tasks API password" in printed


# --- confirming ------------------------------------------------------------------------


def test_confirming_sets_the_password_and_revokes_every_token(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    session = login(client, "alice")
    token = emailed_token(app, client)

    response = confirm(client, token)
    assert response.status_code == 204
    assert response.data == b""
    assert_token_refused(client.get(ME, headers=bearer(session["access_token"])))
    assert_token_refused(client.post(REFRESH, headers=bearer(session["refresh_token"])))
    assert client.post(LOGIN, json={"login": "alice", "password": PASSWORD}).status_code == 401
    login(client, "alice", NEW_PASSWORD)
    with app.app_context():
        assert db.session.scalars(select(PasswordResetToken.used_at)).one() is not None


def test_a_token_works_once(app: TasksAPI, client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    token = emailed_token(app, client)
    assert confirm(client, token).status_code == 204
    assert_token_rejected(confirm(client, token, "yet another password"))
    login(client, "alice", NEW_PASSWORD)


def test_a_reset_consumes_the_accounts_other_reset_tokens(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    older = emailed_token(app, client)
    newer = emailed_token(app, client)
    assert confirm(client, newer).status_code == 204
    assert_token_rejected(confirm(client, older, "yet another password"))


def test_a_token_lasts_fifteen_minutes(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, clock: Clock
) -> None:
    make_user("alice")
    late = emailed_token(app, client)
    in_time = emailed_token(app, client)
    clock.advance(minutes=14, seconds=59)
    assert confirm(client, in_time).status_code == 204

    clock.advance(seconds=1)  # `late` was issued 15 minutes ago
    assert_token_rejected(confirm(client, late, "yet another password"))


def test_an_expired_token_is_refused(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser, clock: Clock
) -> None:
    make_user("alice")
    token = emailed_token(app, client)
    clock.advance(minutes=15)
    assert_token_rejected(confirm(client, token))
    login(client, "alice")  # the password is unchanged
    with app.app_context():
        assert db.session.scalars(select(PasswordResetToken.used_at)).one() is None


def test_the_token_of_a_since_deactivated_user_is_refused(
    app: TasksAPI, client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    token = emailed_token(app, client)
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    assert_token_rejected(confirm(client, token))
    with app.app_context():  # not consumed: nothing happened
        assert db.session.scalars(select(PasswordResetToken.used_at)).one() is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": "x" * 43, "password": "short"}, "password"),
        ({"token": "", "password": NEW_PASSWORD}, "token"),
        ({"token": "x" * 42 + "=", "password": NEW_PASSWORD}, "token"),
        ({"password": NEW_PASSWORD}, "token"),
        ({"token": "x" * 43}, "password"),
        ({"token": "x" * 43, "password": NEW_PASSWORD, "email": "a@example.com"}, "email"),
    ],
    ids=[
        "short-password",
        "empty-token",
        "not-url-safe-token",
        "no-token",
        "no-password",
        "unknown-field",
    ],
)
def test_confirm_validates_its_body(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(client.post(CONFIRM, json=body), 422)
    assert ("json", field) in {(e["location"], e["field"]) for e in problem["errors"]}


def test_an_unknown_token_is_refused(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    assert_token_rejected(confirm(client, "x" * 43))
