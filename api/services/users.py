"""Accounts: your own (profile and password) and, for admins, everyone's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from api.errors import ConflictError, NotFoundError
from api.extensions import db
from api.models import MAX_ID, Role, User
from api.pagination import Page
from api.services import api_keys, passwords, tokens
from api.services.auth import check_current_password, commit_account, issue_tokens
from api.services.paging import LIKE_ESCAPE, Listing, fetch_page, like_escaped


def update_profile(user: User, changes: dict[str, Any]) -> User:
    """Change your username, email or preferences. A new email needs the current password
    (the schema requires it): whoever holds a stolen token must not be able to redirect
    password resets to their own address. A current password sent along must be right."""
    current_password = changes.pop("current_password", None)
    if current_password is not None:
        check_current_password(user, current_password)
    for name, value in changes.items():
        setattr(user, name, value)
    commit_account()
    return user


def change_password(user: User, password: str, current_password: str) -> dict[str, Any]:
    """Set a new password and revoke every token of the user; return a new pair, so the
    session that made the change goes on (in a new family) while every other ends.

    Needs the current password, always (OWASP ASVS V2.1.6): a fresh token alone is not
    enough. The new pair is not fresh, so it cannot stand in for a password later.
    """
    check_current_password(user, current_password)
    set_password(user, password)
    db.session.commit()
    return issue_tokens(user, fresh=False)


def set_password(user: User, password: str) -> None:
    """New password (422 if too weak); all the user's tokens are revoked with the old one.
    Not committed."""
    passwords.check_strength(password, user.username, user.email)
    user.password_hash = passwords.hash_password(password)
    tokens.revoke_user_tokens(user)


# --- admin -----------------------------------------------------------------------------


USERS = Listing(
    "users",
    User,
    filters={
        "role": lambda value: User.role == value("role"),
        "tier": lambda value: User.tier == value("tier"),
        "is_active": lambda value: User.is_active == value("is_active"),
        "q": lambda value: or_(
            User.username.contains(value("q"), escape=LIKE_ESCAPE),
            User.email.contains(value("q"), escape=LIKE_ESCAPE),
        ),
    },
)


def list_users(query: dict[str, Any]) -> Page:
    where: dict[str, Any] = {n: query[n] for n in ("role", "tier", "is_active") if n in query}
    if "q" in query:
        where["q"] = like_escaped(query["q"].lower())
    return fetch_page(USERS, query, (("id", False),), where)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return user


def _is_active_admin(user: User) -> bool:
    return user.is_active and user.is_admin


def update_user(user: User, changes: dict[str, Any]) -> User:
    """Change role, tier or is_active. Deactivating ends the user's sessions and deletes
    their API keys at once, for good: reactivating revives neither (a key someone may have
    copied while the account was trusted stays dead). 409 when it would leave no active
    admin."""
    was_admin = _is_active_admin(user)
    if was_admin:
        _lock_admins()
    deactivating = user.is_active and changes.get("is_active") is False
    for name, value in changes.items():
        setattr(user, name, value)
    if deactivating:
        tokens.revoke_user_tokens(user)
        api_keys.delete_user_keys(user)
    if was_admin and not _is_active_admin(user):
        _keep_an_admin()
    db.session.commit()
    return user


def delete_user(user: User) -> None:
    """Delete an account; the database deletes its tasks, keys and tokens with it."""
    was_admin = _is_active_admin(user)
    if was_admin:
        _lock_admins()
    db.session.delete(user)
    if was_admin:
        _keep_an_admin()
    db.session.commit()


def _admins() -> Any:
    return select(User.id).where(User.role == Role.ADMIN.value, User.is_active.is_(True))


def _lock_admins() -> None:
    """Lock the active admins' rows (PostgreSQL), so two admins demoting each other at
    once are served one after the other and the second sees the first's change. SQLite
    has no row locks, but it runs one write transaction at a time, to the same effect."""
    db.session.execute(_admins().order_by(User.id).with_for_update())


def _keep_an_admin() -> None:
    """After a change (not committed yet): roll it back if no active admin is left."""
    db.session.flush()
    remaining = db.session.scalar(select(func.count()).select_from(_admins().subquery()))
    if not remaining:
        db.session.rollback()
        raise ConflictError("This is the last active admin: make another admin first.")
