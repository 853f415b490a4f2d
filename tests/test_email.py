"""`send_email`: the one door for outgoing mail (and `after_response`, which it uses)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from api.services.email import send_email
from tests.conftest import make_app


def test_outside_a_request_it_sends_at_once_with_an_html_part() -> None:
    app = make_app("sqlite://")
    with app.app_context():
        send_email("ada@example.com", "Hello", "plain words", "<p>rich words</p>")
    [message] = app.extensions["mailman"].outbox
    assert message.to == ["ada@example.com"]
    assert message.body == "plain words"
    assert message.alternatives == [("<p>rich words</p>", "text/html")]


def test_a_failure_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: Any, messages: Any) -> int:
        raise OSError("no route to the mail server")

    monkeypatch.setattr("flask_mailman.backends.locmem.EmailBackend.send_messages", refuse)
    app = make_app("sqlite://")
    with app.app_context(), caplog.at_level(logging.ERROR):
        send_email("ada@example.com", "Hello", "plain words")
    assert [r.getMessage() for r in caplog.records] == ["sending email 'Hello' failed"]
