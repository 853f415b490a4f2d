"""Email: `send_email` delivers now and raises (jobs retry it); templates make both parts."""

from __future__ import annotations

from typing import Any

import pytest

from api.services.email import send_email, send_templated
from tests.support.apps import make_app


def test_send_email_sends_at_once_with_an_html_part() -> None:
    app = make_app("sqlite://")
    with app.app_context():
        send_email("ada@example.com", "Hello", "plain words", "<p>rich words</p>")
    [message] = app.extensions["mailman"].outbox
    assert message.to == ["ada@example.com"]
    assert message.body == "plain words"
    assert message.alternatives == [("<p>rich words</p>", "text/html")]


def test_a_failure_raises_for_the_job_to_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, messages: Any) -> int:
        raise OSError("no route to the mail server")

    monkeypatch.setattr("flask_mailman.backends.locmem.EmailBackend.send_messages", refuse)
    app = make_app("sqlite://")
    with app.app_context(), pytest.raises(OSError, match="no route"):
        send_email("ada@example.com", "Hello", "plain words")


def test_templates_escape_html_but_not_text() -> None:
    app = make_app("sqlite://")
    user = {"username": "<b>ada</b>", "email": "ada@example.com", "id": 1}
    with app.app_context():
        send_templated("ada@example.com", "Welcome", "welcome", user=user)
    [message] = app.extensions["mailman"].outbox
    assert message.subject == "Welcome"
    assert "Hello <b>ada</b>," in message.body
    [(html, media_type)] = message.alternatives
    assert media_type == "text/html"
    assert "Hello &lt;b&gt;ada&lt;/b&gt;," in html
    assert "<title>Welcome</title>" in html
