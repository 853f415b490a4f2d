"""Outgoing email, through Flask-Mailman (`MAIL_BACKEND`: console, smtp, locmem, ...).

Messages are sent by jobs (`api.services.notifications`, `api.services.password_reset`),
never by a request: a slow or failing mail server never delays or fails one. Here a failure
raises, so the job can retry.
"""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_mailman import EmailMultiAlternatives


def send_email(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one message now; raise if the mail server does not take it."""
    message = EmailMultiAlternatives(subject, text, to=[to])
    if html is not None:
        message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


def send_templated(to: str, subject: str, template: str, **context: Any) -> None:
    """Send `templates/email/<template>.txt` with `<template>.html` as its HTML part
    (the HTML template is autoescaped: user data cannot inject markup)."""
    context.setdefault("subject", subject)
    text = render_template(f"email/{template}.txt", **context)
    html = render_template(f"email/{template}.html", **context)
    send_email(to, subject, text, html)
