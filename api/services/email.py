"""Outgoing email, through Flask-Mailman (`MAIL_BACKEND`: console, smtp, locmem, ...)."""

from __future__ import annotations

from flask_mailman import EmailMultiAlternatives

from api.services.later import after_response


def send_email(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one email after the response (see `api.services.later`): a slow or failing
    mail server never delays or fails a request; a failure is logged."""
    message = EmailMultiAlternatives(subject, text, to=[to])
    if html is not None:
        message.attach_alternative(html, "text/html")
    after_response(message.send, f"sending email {subject!r}")
