"""Registration, credentials and tokens.

Failed password checks (login, and the current password of a sensitive change) are
announced on the `login_failed` signal: the one place where limits on password guessing
(per account and per client address) plug in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from blinker import Namespace
from flask import current_app, has_request_context, request
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from api.errors import ConflictError, ForbiddenError
from api.extensions import db
from api.models import Role, User
from api.services import notifications, passwords, throttle, tokens
from schemas.common import lower

_signals = Namespace()
login_failed = _signals.signal(
    "login-failed",
    doc="""Sent on every failed password check, before the 401 or 403 goes out.

    Receivers get the app as sender and keyword arguments `login` (the username or email
    tried, lower-cased), `user_id` (None when no account matched), `remote_addr`, and
    `names`: the login names whose guess budget the failure uses up (the name tried, for a
    login; the account's username and email, for a wrong `current_password`).
    Connect with `login_failed.connect(receiver)`; a receiver that raises (an
    HTTPError 429, say) stops the request with that error.
    """,
)


def _fail(login: str, user: User | None, names: tuple[str, ...]) -> None:
    login_failed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        login=login,
        user_id=user.id if user is not None else None,
        remote_addr=request.remote_addr if has_request_context() else None,
        names=names,
    )


# Failed guesses use up the guessed names' budget (api.services.throttle).
login_failed.connect(throttle.charge)


def register_user(username: str, email: str, password: str, role: str = Role.USER.value) -> User:
    """Create a user (422 for a weak password, 409 if the username or email is taken,
    checked by the DB); queue the welcome email and the admins' notices."""
    passwords.check_strength(password, username, email)
    user = User(
        username=username, email=email, password_hash=passwords.hash_password(password), role=role
    )
    db.session.add(user)
    commit_account()
    notifications.user_registered(user)
    return user


def commit_account() -> None:
    """Commit a new or changed account; 409 when its username or email is taken. The
    unique constraints decide, so two requests racing for one name cannot both win."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ConflictError("That username or email is already registered.") from None


def authenticate(login: str, password: str) -> User | None:
    """The active user with this username or email and password, else None.

    Unknown user, wrong password and inactive user take the same time and give the
    same answer, so login cannot be used to find out which accounts exist.
    """
    login = lower(login.strip())  # as usernames and emails are stored
    throttle.check(login)  # before the lookup: the same for every name, account or not
    user = None
    if "\x00" not in login:  # no account has one, and PostgreSQL cannot compare with it
        user = db.session.scalar(
            select(User).where(or_(User.username == login, User.email == login))
        )
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        _fail(login, user, (login,))
        return None
    return user


def check_current_password(user: User, password: str) -> None:
    """403 unless `password` is `user`'s password (confirms a sensitive change); 429 while
    the account's names wait out failed guesses, which wrong answers here add to."""
    names = (user.username, user.email)
    throttle.check(*names)
    if not passwords.verify_password(user.password_hash, password):
        _fail(user.username, user, names)
        raise ForbiddenError("The current password is wrong.")


def issue_tokens(user: User, *, fresh: bool = True, family: str | None = None) -> dict[str, Any]:
    """A new access + refresh pair in `family` (a new family: a new login session)."""
    claims = {"fam": family or str(uuid.uuid4()), "gen": user.token_generation}
    identity = str(user.id)
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": create_access_token(identity, fresh=fresh, additional_claims=claims),
        "refresh_token": create_refresh_token(identity, additional_claims=claims),
        # The OAuth 2 token type, not a secret.
        "token_type": "Bearer",  # nosec B105
        "expires_in": int(lifetime.total_seconds()),
    }


def rotate_refresh_token(user: User, claims: Mapping[str, Any]) -> dict[str, Any]:
    """Exchange the presented refresh token (its verified `claims`) for a new pair in the
    same family.

    The presented token is revoked; presenting it again later is treated as theft
    (see `api.security`) and ends the whole family.
    """
    tokens.revoke(claims["jti"], tokens.Revocation.ROTATED, user.id, tokens.expiry(claims))
    db.session.commit()
    return issue_tokens(user, fresh=False, family=claims["fam"])


def logout(claims: Mapping[str, Any]) -> None:
    """End the login session of the access token with these `claims`: its access and
    refresh tokens, rotated or not."""
    tokens.revoke_family(claims)
    db.session.commit()
