"""Password reset by email: a single-use token, valid `PASSWORD_RESET_TTL_SECONDS`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, select, update

from api import clock
from api.errors import InvalidFieldError
from api.extensions import db
from api.jobs import job_kind
from api.jobs.queue import enqueue
from api.models import Job, PasswordResetToken, User
from api.services.email import send_templated
from api.services.secret_tokens import digest, new_secret
from api.services.users import set_password


def ttl() -> timedelta:
    return timedelta(seconds=current_app.config["PASSWORD_RESET_TTL_SECONDS"])


RESET_JOB = "email.password_reset"


def request_reset(email: str) -> None:
    """Email a reset token if an active account has this address.

    The request only queues a job, the same job for any address; the lookup happens in
    the job. Neither the answer nor its timing tells whether the account exists.
    """
    enqueue(RESET_JOB, {"email": email})


@job_kind(RESET_JOB)
def password_reset_email(job: Job) -> None:
    send_reset_email(job.params["email"])


def send_reset_email(email: str) -> None:
    """The job's work: issue a token and email it, if an active account has `email`.

    A retry (the mail server was down) issues a new token: the hash of the first one is
    stored, not the token, and a token nobody received is harmless until it expires.
    """
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
    send_templated(
        user.email,
        "Reset your Tasks API password",
        "password_reset",
        user=user,
        minutes=minutes,
        token=token,
    )


def confirm_reset(token: str, password: str) -> None:
    """Set the password, consume the token (and the user's other reset tokens), revoke
    all the user's tokens. One answer for an unknown, expired or used token; a weak
    password is a 422 that leaves the token usable."""
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
    try:
        set_password(user, password)
    except InvalidFieldError:
        db.session.rollback()  # a weak password does not use the token up
        raise
    db.session.commit()
