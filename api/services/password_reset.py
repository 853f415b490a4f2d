"""Password reset by email: a single-use token, valid `PASSWORD_RESET_TTL_SECONDS`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, select, update

from api.errors import InvalidFieldError
from api.extensions import db
from api.models import PasswordResetToken, User
from api.services import clock
from api.services.email import send_email
from api.services.later import after_response
from api.services.secret_tokens import digest, new_secret
from api.services.users import set_password

EMAIL_TEXT = """\
Someone asked to reset the password of your Tasks API account "{username}".

Your reset token, valid for {minutes} minutes and for one use:

    {token}

Send it with your new password to POST /api/v1/auth/password-reset/confirm as
{{"token": "...", "password": "..."}}.

If you did not ask for this, ignore this email: your password stays as it is.
"""


def ttl() -> timedelta:
    return timedelta(seconds=current_app.config["PASSWORD_RESET_TTL_SECONDS"])


def request_reset(email: str) -> None:
    """Email a reset token if an active account has this address.

    All of it, the lookup too, runs after the response is sent: neither the answer nor
    its timing tells whether the account exists.
    """
    after_response(lambda: _issue(email), "password reset request")


def _issue(email: str) -> None:
    user = db.session.scalar(select(User).where(User.email == email.lower()))
    if user is None or not user.is_active:
        return
    token = new_secret()
    issued = clock.now()
    db.session.add(
        PasswordResetToken(
            user_id=user.id, token_hash=digest(token), created_at=issued, expires_at=issued + ttl()
        )
    )
    db.session.commit()
    minutes = int(ttl().total_seconds() // 60)
    text = EMAIL_TEXT.format(username=user.username, minutes=minutes, token=token)
    send_email(user.email, "Reset your Tasks API password", text)


def confirm_reset(token: str, password: str) -> None:
    """Set the password, consume the token (and the user's other reset tokens), revoke
    all the user's tokens. One answer for an unknown, expired or used token."""
    used_at = clock.now()
    consumed = cast(
        CursorResult[Any],
        db.session.execute(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.token_hash == digest(token),
                PasswordResetToken.used_at.is_(None),
                PasswordResetToken.expires_at > used_at,
            )
            .values(used_at=used_at)
        ),
    )
    # The conditional UPDATE is the single-use check: of two concurrent confirmations
    # with one token, exactly one changes the row.
    user = None
    if consumed.rowcount == 1:
        user = db.session.scalar(
            select(User)
            .join(PasswordResetToken, PasswordResetToken.user_id == User.id)
            .where(PasswordResetToken.token_hash == digest(token))
        )
    if user is None or not user.is_active:
        db.session.rollback()
        raise InvalidFieldError("token", "The token is invalid, expired or already used.")
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=used_at)
    )
    set_password(user, password)
    db.session.commit()
